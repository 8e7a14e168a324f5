"""The one training loop: it learns, resumes exactly, accumulates exactly, stops on NaN, and its
checkpoints fail loudly when they do not fit."""

import math

import pytest
import torch

from minikd.data import IGNORE_INDEX
from minikd.model import GPT, get_config
from minikd.train import (CheckpointError, TrainConfig, TrainingError, accumulate_gradients, get_lr,
                          load_checkpoint, load_model, save_checkpoint, sft_objective, train)

V = 12


def toy_batch(step, batch_size=8, T=10, seed=0):
    """Copy task: the second half repeats the first; only the second half is the 'answer'."""
    g = torch.Generator().manual_seed(seed * 100_003 + step)
    half = torch.randint(1, V, (batch_size, T // 2), generator=g)
    ids = torch.cat([half, half], dim=1)
    targets = ids[:, 1:].clone()
    targets[:, : T // 2 - 1] = IGNORE_INDEX  # loss only where the copy is predictable
    return {"inputs": ids[:, :-1], "targets": targets}


def fresh_model(seed=0):
    torch.manual_seed(seed)
    return GPT(get_config("tiny", vocab_size=V, n_embd=32))


def cfg(**kw):
    base = dict(steps=20, lr=1e-2, warmup=2, log_every=0, device="cpu", seed=0)
    return TrainConfig(**{**base, **kw})


def test_loss_falls_on_a_toy_copy_task():
    hist = train(fresh_model(), toy_batch, cfg=cfg(steps=150, log_every=10))
    assert hist[-1]["loss"] < 0.5 * hist[0]["loss"]


def test_resume_gives_exactly_the_weights_of_an_uninterrupted_run(tmp_path):
    straight = fresh_model()
    train(straight, toy_batch, cfg=cfg(steps=20))

    ckpt = tmp_path / "run.pt"

    def interrupted(step):  # the process dies while fetching step 10's batch
        if step == 10:
            raise KeyboardInterrupt
        return toy_batch(step)
    with pytest.raises(KeyboardInterrupt):
        train(fresh_model(), interrupted, cfg=cfg(steps=20, ckpt_path=str(ckpt), ckpt_every=5))
    assert load_checkpoint(ckpt)["step"] == 10
    resumed = fresh_model(seed=123)  # a new process builds a new model and resumes
    train(resumed, toy_batch, cfg=cfg(steps=20, ckpt_path=str(ckpt), resume=True))
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert load_checkpoint(ckpt)["step"] == 20


def test_grad_accumulation_equals_one_big_batch():
    batch = toy_batch(0)
    batch["targets"][:4, -2:] = IGNORE_INDEX  # micro-batches with different numbers of answer tokens
    a, b = fresh_model(), fresh_model()
    loss_a = accumulate_gradients(a, batch, sft_objective, grad_accum=1)
    loss_b = accumulate_gradients(b, batch, sft_objective, grad_accum=4)
    assert loss_a == pytest.approx(loss_b, rel=1e-5)
    for x, y in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(x.grad, y.grad, rtol=1e-4, atol=1e-7)


def test_nan_loss_stops_the_run_naming_the_step():
    calls = {"n": 0}

    def objective(model, batch):  # a healthy loss for three steps, then NaN
        calls["n"] += 1
        loss = model(batch["inputs"]).sum() * 0
        return loss + (float("nan") if calls["n"] > 3 else 0.0)
    with pytest.raises(TrainingError, match="at step 3"):
        train(fresh_model(), toy_batch, objective=objective, cfg=cfg(steps=10))


def test_lr_schedule_warmup_then_cosine():
    c = TrainConfig(steps=110, lr=1.0, warmup=10, min_lr_ratio=0.1)
    assert get_lr(0, c) == pytest.approx(0.1)
    assert get_lr(9, c) == pytest.approx(1.0)
    assert get_lr(60, c) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert get_lr(110, c) == pytest.approx(0.1)


def test_checkpoint_errors_are_clear(tmp_path):
    model = fresh_model()
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, step=5, fingerprint="abc")
    assert not list(tmp_path.glob("*.tmp"))  # written atomically
    loaded, ckpt = load_model(path)
    assert ckpt["step"] == 5
    with pytest.raises(CheckpointError, match="made with tokenizer abc"):
        load_checkpoint(path, expect_fingerprint="xyz")
    other = get_config("tiny", vocab_size=V, n_embd=64)
    with pytest.raises(CheckpointError, match="n_embd: checkpoint 32 vs model 64"):
        load_checkpoint(path, expect_config=other)
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        load_checkpoint(truncated)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_history_csv_is_written(tmp_path):
    out = tmp_path / "h.csv"
    train(fresh_model(), toy_batch, cfg=cfg(steps=4, log_every=2, csv_path=str(out)))
    lines = out.read_text().splitlines()
    assert lines[0].startswith("step,") and len(lines) == 3
