"""`minikd bench` runs on a tiny setting and reports consistent figures (the speeds themselves are
measurements for the README, never asserted)."""

from minikd import bench
from minikd.model import GPT, get_config
from minikd.tokenizer import Tokenizer


def test_bench_reports_training_flops_against_the_matmul_rate(capsys):
    out = bench.main(["--presets", "tiny", "--steps", "1", "--batch-size", "4", "--seq-len", "8",
                      "--matmul-size", "128", "--no-generate"])
    (r,) = out["train"]
    model = GPT(get_config("tiny", vocab_size=Tokenizer.default().vocab_size))  # bench uses the shipped tokenizer
    assert r["preset"] == "tiny" and r["params"] == model.num_params()
    # achieved FLOP/s is 6 N x tokens/s, and the ratio is against the same run's matmul rate
    assert abs(r["flops"] - r["tokens_per_s"] * 6 * model.num_params(non_embedding=True)) < 1e-6 * r["flops"]
    assert abs(r["of_matmul"] - r["flops"] / out["matmul_flops"]) < 1e-12
    assert r["gemm_flops"] > 0
    assert "its GEMMs alone" in capsys.readouterr().out
