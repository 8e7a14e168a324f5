"""The GPU check: what minikd does differently on CUDA, checked on a real device. Every test is marked `cuda`
and skipped without one; `python -m minikd.gpucheck` runs them (`pytest -m cuda`) with every lesson, the quick
job and the throughput table, and prints a block for the README. No GPU has run them yet.

- train() on CUDA trains under the device policy's autocast (minikd.device: bf16 where native, fp16 with a
  GradScaler on a T4 / V100); float32 is train() on the CPU. From the same weights on the same batches, the
  autocast loss curve must stay within 5 % of the float32 one at every step, and its last 10 steps' mean
  within 3 %; under forced fp16 + GradScaler (a T4's path) too. (A CPU simulation of the same run, seed 0,
  with the float32 head: bf16 autocast within 0.86 % at every step and 0.37 % over the last 10; fp16 + GradScaler
  0.95 % and 0.56 %. bf16 keeps 8 bits of mantissa, fp16 11; matrix products accumulate in float32.)
- resume on CUDA is exact under deterministic algorithms (torch.use_deterministic_algorithms, cuBLAS's
  CUBLAS_WORKSPACE_CONFIG, the written-out attention) with dropout on: the GPU's RNG state is checkpointed.
- the KV cache changes nothing but speed on CUDA either: greedy decoding writes the same tokens.
- the main job's --quick profile runs end to end on CUDA and writes results.json.
"""

import copy
import json
import os
import subprocess
import sys

import pytest
import torch

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS: read when CUDA starts

from minikd.runtime import DATA_DIR, ROOT
from minikd.data import SFTData, load_sft
from minikd.generate import generate
from minikd.model import GPT, get_config
from minikd.tokenizer import Tokenizer
from minikd.device import device_policy
from minikd.train import TrainConfig, setup, train

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device (torch.cuda.is_available())")]

STEP_TOL, END_TOL = 0.05, 0.03  # autocast vs float32: relative loss difference at any step, of the last 10 steps' mean


def loss_curve(model, data: SFTData, device: str, precision: str = "auto") -> list[float]:
    cfg = TrainConfig(steps=60, lr=1e-2, warmup=5, device=device, precision=precision, log_every=0, length_groups=2)
    return [row["loss"] for row in train(model, data.get_batch, cfg=cfg)]


@pytest.mark.parametrize("precision", ["auto", "fp16"])  # the GPU's own choice; fp16 + GradScaler (a T4's) on any
def test_autocast_training_tracks_float32(precision):
    tok = Tokenizer.default()
    examples, _ = load_sft(DATA_DIR / "train.jsonl", tok, 128, limit=256)
    data = SFTData(examples, tok.pad_id, batch_size=16, seed=0)
    torch.manual_seed(0)
    model = GPT(get_config("tiny", vocab_size=tok.vocab_size, n_embd=32))
    policy = device_policy("cuda", precision)
    _, _, autocast, _, scaler = setup(copy.deepcopy(model), TrainConfig(device="cuda", precision=precision))
    assert isinstance(autocast, torch.autocast) and autocast.fast_dtype == policy.autocast_dtype  # the path compared
    assert scaler.is_enabled() == (policy.precision == "fp16")
    fp32 = loss_curve(copy.deepcopy(model), data, "cpu")
    mixed = loss_curve(copy.deepcopy(model), data, "cuda", precision)
    worst = max(abs(a - b) / b for a, b in zip(mixed, fp32))
    end = abs(sum(mixed[-10:]) - sum(fp32[-10:])) / sum(fp32[-10:])
    name = policy.precision
    assert mixed[-1] < 0.5 * mixed[0], f"{name} training did not learn: loss {mixed[0]:.3f} -> {mixed[-1]:.3f}"
    assert worst <= STEP_TOL, f"{name} loss is {100 * worst:.1f} % off float32's at some step (tolerance 5 %)"
    assert end <= END_TOL, f"{name}'s last 10 steps are {100 * end:.1f} % off float32's (tolerance 3 %)"


def test_online_and_offline_word_kd_agree_on_cuda(tmp_path):
    """The teacher's targets are float32 on the GPU too: in the loop (under the student's autocast) and from
    a float32 store gathered on the device, the same loss."""
    from minikd.word_kd import build_topk_store, topk_objective, word_kd_objective
    tok = Tokenizer.default()
    examples, _ = load_sft(DATA_DIR / "train.jsonl", tok, 128, limit=32)
    batch = {k: v.cuda() for k, v in SFTData(examples, tok.pad_id, batch_size=8, seed=0).get_batch(0).items()}
    torch.manual_seed(0)
    teacher = GPT(get_config("tiny", vocab_size=tok.vocab_size, n_embd=48)).cuda().eval()
    student = GPT(get_config("tiny", vocab_size=tok.vocab_size, n_embd=32)).cuda().eval()
    store = build_topk_store(teacher, examples, tok.pad_id, k=tok.vocab_size, temperature=2.0,
                             path=tmp_path / "s.pt", fingerprint=tok.fingerprint, logprob_dtype=torch.float32)
    with device_policy("cuda").autocast(), torch.no_grad():
        online = word_kd_objective(teacher, temperature=2.0, alpha=1.0)(student, batch)
        offline = topk_objective(store, alpha=1.0)(student, batch)
    torch.testing.assert_close(online, offline, rtol=1e-4, atol=1e-4)


def test_kv_cache_decoding_equals_recomputing_on_cuda():
    torch.manual_seed(0)
    model = GPT(get_config("tiny", vocab_size=12, block_size=48)).cuda().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 1.0)  # peaked, varied distributions: no near-ties for rounding to flip
    prompts = [torch.randint(0, 11, (n,)).tolist() for n in (3, 3, 5, 5, 5, 8)]  # three length buckets
    kw = dict(max_new_tokens=30, end_id=11, method="greedy")
    cached = generate(model, prompts, use_cache=True, **kw)
    full = generate(model, prompts, use_cache=False, **kw)
    assert [g.tokens for g in cached] == [g.tokens for g in full]
    for a, b in zip(cached, full):
        assert a.token_logprobs == pytest.approx(b.token_logprobs, abs=1e-4)


def test_the_quick_main_job_runs_on_cuda(tmp_path):
    env = {**os.environ, "MINIKD_RUNS": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "minikd", "run", "--quick", "--device", "cuda"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((tmp_path / "quick" / "results.json").read_text())
    assert results["device"].startswith("cuda") and results["students"]


def test_resume_on_cuda_is_exact_under_deterministic_algorithms(tmp_path):
    tok = Tokenizer.default()
    examples, _ = load_sft(DATA_DIR / "train.jsonl", tok, 128, limit=128)
    data = SFTData(examples, tok.pad_id, batch_size=8, seed=0)
    config = get_config("tiny", vocab_size=tok.vocab_size, n_embd=32, dropout=0.1, sdpa=False)
    ckpt = str(tmp_path / "run.pt")

    def run(get_batch, resume=False, path=None, seed=0):
        torch.manual_seed(seed)
        model = GPT(config)
        cfg = TrainConfig(steps=8, lr=1e-2, warmup=2, device="cuda", log_every=0, ckpt_path=path, ckpt_every=2,
                          resume=resume)
        return model, train(model, get_batch, cfg=cfg)

    def dies_at_step_4(step):
        if step == 4:
            raise KeyboardInterrupt
        return data.get_batch(step)

    torch.use_deterministic_algorithms(True)
    try:
        straight, hist = run(data.get_batch)
        with pytest.raises(KeyboardInterrupt):
            run(dies_at_step_4, path=ckpt)
        assert "cuda_rng_ranks" in torch.load(ckpt, weights_only=True)
        resumed, hist2 = run(data.get_batch, resume=True, path=ckpt, seed=123)
    finally:
        torch.use_deterministic_algorithms(False)
    assert [r["loss"] for r in hist] == [r["loss"] for r in hist2]
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
