"""`minikd bench` runs on a tiny setting and reports consistent figures (the speeds themselves are
measurements for the README, never asserted); the reference GPT it times minikd's against is the same model."""

import pytest
import torch

from minikd.machinery import bench
from minikd.runtime import DATA_DIR
from minikd.data import load_sft
from minikd.model import GPT, get_config
from minikd.machinery.reference_gpt import RefGPT, copy_weights
from minikd.tokenizer import Tokenizer

TINY = ["--presets", "tiny", "--steps", "1", "--repeats", "2", "--batch-size", "4", "--seq-len", "8",
        "--matmul-size", "128", "--real-steps", "2", "--examples", "32", "--length-groups", "1", "4"]


def test_the_reference_gpt_is_minikds_model_written_plainly():
    cfg = get_config("tiny", vocab_size=50, block_size=16)
    torch.manual_seed(0)
    mine, ref = GPT(cfg), RefGPT(cfg)
    assert ref.num_params() == mine.num_params()
    copy_weights(ref, mine)
    x = torch.randint(0, 50, (3, 16))
    with torch.no_grad():
        a, b = mine(x), ref(x)
    assert a.shape == b.shape == (3, 16, 50)
    assert torch.allclose(a, b, atol=1e-6)


def test_copy_weights_refuses_another_shape():
    small, wide = get_config("tiny", vocab_size=50), get_config("tiny", vocab_size=50, n_embd=32)
    with pytest.raises(ValueError, match="does not match"):
        copy_weights(RefGPT(wide), GPT(small))


def test_useful_tokens_are_the_rows_real_positions():
    tok = Tokenizer.default()
    examples, _ = load_sft(DATA_DIR / "train.jsonl", tok, 128, limit=32)
    batches, useful = bench.real_batches(examples, tok.pad_id, batch_size=8, steps=3)
    assert useful == sum(int((b["inputs"] != tok.pad_id).sum()) for b in batches)
    assert useful < sum(b["inputs"].numel() for b in batches)  # rows of 20-46 tokens: some padding


def test_bench_reports_useful_and_padded_speed_and_minikd_against_the_reference(capsys):
    out = bench.main(TINY + ["--decode-preset", "tiny"])
    model = GPT(get_config("tiny", vocab_size=Tokenizer.default().vocab_size))  # bench uses the shipped tokenizer
    (r,) = out["train"]
    assert r["preset"] == "tiny" and r["params"] == r["ref_params"] == model.num_params()
    # achieved FLOP/s is 6 N x tokens/s, and the ratio is against the same run's matmul rate
    assert abs(r["flops"] - r["tokens_per_s"] * 6 * model.num_params(non_embedding=True)) < 1e-6 * r["flops"]
    assert abs(r["of_matmul"] - r["flops"] / out["matmul_flops"]) < 1e-12
    assert r["gemm_flops"] > 0 and r["speedup"]["min"] <= r["speedup"]["median"] <= r["speedup"]["max"]
    one, four = out["real"]
    assert one["useful_tokens"] == four["useful_tokens"] <= four["padded_tokens"] <= one["padded_tokens"]
    assert four["useful_tokens"] == four["padded_tokens"]  # 4 micro-batches of 4 rows: each row alone, unpadded
    assert one["useful_tokens_per_s"] <= one["padded_tokens_per_s"]
    d = out["decode"]
    assert d["same_tokens"] and abs(d["flops"] - 2 * model.num_params(non_embedding=True) * d["cache_tokens_per_s"]) \
        < 1e-6 * d["flops"]
    assert r["peak_mib"] is None and out["peak_rss_mib"] > 0  # CPU: no per-step counter, the process's peak instead
    text = capsys.readouterr().out
    for field in ("minikd speed", "reference ms/step", "useful tok/s", "padded tok/s", "GEMMs alone", "GFLOP/s",
                  "peak MiB", "process peak resident memory"):
        assert field in text
    assert "trains as fast as the plain GPT-2 reference — reference − minikd ms/step, per interleaved repeat" in text
    assert len(r["ms"]["minikd"]) == len(r["ms"]["reference"])  # paired by repeat
