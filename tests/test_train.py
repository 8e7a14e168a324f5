"""The one training loop: it learns, resumes exactly, accumulates exactly, stops on NaN, and its
checkpoints fail loudly when they do not fit."""

import math

import pytest
import torch
import torch.nn.functional as F

from minikd.data import IGNORE_INDEX, SFTData
from minikd.model import GPT, get_config
from minikd.train import (CheckpointError, TrainConfig, TrainingError, accumulate_gradients, get_lr,
                          load_checkpoint, load_model, micro_batches, save_checkpoint, sft_objective, train)
from minikd.word_kd import build_topk_store, topk_objective, word_kd_objective

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


def run_interrupted_then_resumed(ckpt, model_fn):
    """A 20-step run that dies while fetching batch 10 (checkpoints every 5 steps); then a new process
    builds a new model and resumes it. Returns the resumed model."""
    def interrupted(step):
        if step == 10:
            raise KeyboardInterrupt
        return toy_batch(step)
    with pytest.raises(KeyboardInterrupt):
        train(model_fn(), interrupted, cfg=cfg(steps=20, ckpt_path=str(ckpt), ckpt_every=5))
    assert load_checkpoint(ckpt)["step"] == 10
    resumed = model_fn(seed=123)
    train(resumed, toy_batch, cfg=cfg(steps=20, ckpt_path=str(ckpt), resume=True))
    return resumed


def test_resume_gives_exactly_the_weights_of_an_uninterrupted_run(tmp_path):
    straight = fresh_model()
    train(straight, toy_batch, cfg=cfg(steps=20))

    ckpt = tmp_path / "run.pt"
    resumed = run_interrupted_then_resumed(ckpt, fresh_model)
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert load_checkpoint(ckpt)["step"] == 20


def test_resume_with_dropout_restores_the_random_state(tmp_path):
    """Bug class: a checkpoint without the RNG state. With dropout > 0 every step draws random masks; a
    resumed run that does not restore torch's RNG draws other masks from step 11 on, so its weights differ."""
    def dropout_model(seed=0):
        torch.manual_seed(seed)
        return GPT(get_config("tiny", vocab_size=V, n_embd=32, dropout=0.2))
    straight = dropout_model()
    train(straight, toy_batch, cfg=cfg(steps=20))
    resumed = run_interrupted_then_resumed(tmp_path / "run.pt", dropout_model)
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), f"{name}: the resumed run drew other dropout masks"


def test_resume_refuses_a_checkpoint_of_other_settings(tmp_path, capsys):
    """A checkpoint made with another lr / step count / objective would continue another run: refused,
    naming the file and each difference. Where and how often to print or save may change."""
    ckpt = tmp_path / "run.pt"
    train(fresh_model(), toy_batch, cfg=cfg(steps=4, ckpt_path=str(ckpt)), meta={"objective": "gt"})
    with pytest.raises(CheckpointError, match=r"run.pt: made by a run with other settings \(steps: checkpoint 4 "
                                              r"vs now 6; lr: checkpoint 0.01 vs now 0.02; objective: checkpoint "
                                              r"'gt' vs now 'seqkd'\)"):
        train(fresh_model(), toy_batch, cfg=cfg(steps=6, lr=2e-2, ckpt_path=str(ckpt), resume=True),
              meta={"objective": "seqkd"})
    capsys.readouterr()
    history = train(fresh_model(), toy_batch, meta={"objective": "gt"},
                    cfg=cfg(steps=4, ckpt_path=str(ckpt), resume=True, log_every=1, ckpt_every=2))
    assert capsys.readouterr().out == f"resumed from {ckpt} at step 4 of 4\n"  # finished: nothing left to do
    assert [r["step"] for r in history] == [1, 2, 3, 4]


def test_grad_accumulation_equals_one_big_batch():
    batch = toy_batch(0)
    batch["targets"][:4, -2:] = IGNORE_INDEX  # micro-batches with different numbers of answer tokens
    a, b = fresh_model(), fresh_model()
    loss_a = accumulate_gradients(a, batch, sft_objective, grad_accum=1)
    loss_b = accumulate_gradients(b, batch, sft_objective, grad_accum=4)
    assert loss_a == pytest.approx(loss_b, rel=1e-5)
    for x, y in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(x.grad, y.grad, rtol=1e-4, atol=1e-7)


PAD = 0


def ragged_examples(n=12, seed=0):
    """(ids, mask) pairs of very different lengths: prompts of 2-8 tokens, answers of 1-10."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        p, a = int(torch.randint(2, 9, (1,), generator=g)), int(torch.randint(1, 11, (1,), generator=g))
        ids = torch.randint(1, V, (p + a,), generator=g).tolist()  # never PAD
        out.append((ids, [0] * p + [1] * a))
    return out


def ragged_batch(batch_size=8):
    """A collated batch (inputs, targets, index) whose rows differ in length and in answer tokens."""
    batch = SFTData(ragged_examples(), PAD, batch_size, seed=0).get_batch(0)
    answer = batch["targets"] != IGNORE_INDEX  # (B, T)
    assert len(set(answer.sum(1).tolist())) >= 4 and (~answer[:, -1]).sum() >= 4  # really ragged
    return batch


def test_padding_columns_change_neither_the_loss_nor_the_gradient():
    """Bug class: a loss divided by every position (or counting padding) instead of the answer tokens.
    The same examples collated with 7 extra padding columns (inputs PAD, targets IGNORE_INDEX) must give
    the same loss, the mean -log p over answer tokens, and the same gradients. float32: atol 1e-7 /
    rtol 1e-6 is rounding; dividing by positions instead is off by a factor T'/T (here 17/10, or more)."""
    batch = SFTData(ragged_examples(), PAD, 8, seed=0).get_batch(0)
    B, T = batch["targets"].shape
    padded = dict(batch, inputs=torch.cat([batch["inputs"], torch.full((B, 7), PAD)], dim=1),
                  targets=torch.cat([batch["targets"], torch.full((B, 7), IGNORE_INDEX)], dim=1))
    a, b = fresh_model(), fresh_model()
    loss_a = accumulate_gradients(a, batch, sft_objective)
    loss_b = accumulate_gradients(b, padded, sft_objective)
    with torch.no_grad():  # the mean over answer tokens, by hand (cross_entropy skips IGNORE_INDEX = -100)
        want = F.cross_entropy(a(batch["inputs"]).flatten(0, 1), batch["targets"].flatten()).item()
    assert loss_a == pytest.approx(want, rel=1e-6)
    assert loss_b == pytest.approx(loss_a, rel=1e-6), "padding columns changed the loss"
    for (name, x), y in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(y.grad, x.grad, atol=1e-7, rtol=1e-6, msg=lambda m: f"{name}: {m}")


def row_lengths(targets):
    """1 + position of each row's last answer target, written out row by row."""
    return [1 + max(i for i, t in enumerate(row) if t != IGNORE_INDEX) for row in targets.tolist()]


def padded_reference_grads(model, batch, loss_sum_fn):
    """The gradient of the ONE padded batch: one forward, summed loss / answer tokens, backward."""
    model.zero_grad(set_to_none=True)
    loss = loss_sum_fn(model, batch) / (batch["targets"] != IGNORE_INDEX).sum()
    loss.backward()
    return float(loss.detach()), [p.grad.clone() for p in model.parameters()]


def assert_grouped_equals_padded(objective, reference_fn):
    """length_groups 4 and grad_accum 3 (uneven: 3 + 3 + 2 rows) give the padded batch's loss and gradient.

    float32: the micro-batches add the same terms in another order and run matmuls of other shapes, so
    results agree to rounding (~1e-7 relative), not bit for bit; atol 1e-6 / rtol 1e-5 leaves room for
    that and still fails loudly on any real difference (a wrong normalisation is off by whole percents).
    """
    batch, model = ragged_batch(), fresh_model()
    want_loss, want = padded_reference_grads(model, batch, reference_fn)
    for grad_accum, length_groups in ((1, 4), (3, 1)):
        n_micro = max(grad_accum, length_groups)  # as train() passes it
        model.zero_grad(set_to_none=True)
        loss = accumulate_gradients(model, batch, objective, n_micro)
        assert loss == pytest.approx(want_loss, rel=1e-5)
        for (name, p), g in zip(model.named_parameters(), want):
            torch.testing.assert_close(p.grad, g, atol=1e-6, rtol=1e-5,
                                       msg=lambda m: f"{name}, {n_micro} micro-batches: {m}")


def test_length_grouped_micro_batches_give_the_padded_batchs_gradient():
    def padded_nll(model, batch):  # no trimming, no minikd.losses: cross-entropy on every position
        logits = model(batch["inputs"])  # (B, T, V)
        return F.cross_entropy(logits.flatten(0, 1), batch["targets"].flatten(), reduction="sum")
    assert_grouped_equals_padded(sft_objective, padded_nll)


def test_micro_batches_are_trimmed_to_their_longest_row_and_hold_every_row_once():
    batch = ragged_batch()
    B, T = batch["inputs"].shape
    batch["row"] = torch.arange(B)  # which row of the batch each micro-batch row is
    for n in (1, 3, 4, 8):
        micros = micro_batches(batch, n)
        assert len(micros) == n
        for m in micros:
            width = m["inputs"].shape[1]
            assert m["targets"].shape == m["inputs"].shape and m["index"].shape == m["row"].shape
            assert width == max(row_lengths(m["targets"]))  # padded to its own longest row, no further
            whole = batch["inputs"][m["row"]]  # (b, T) the same rows untrimmed
            assert torch.equal(m["inputs"], whole[:, :width]) and (whole[:, width:] == PAD).all()
            assert torch.equal(m["targets"], batch["targets"][m["row"], :width])
            assert torch.equal(m["index"], batch["index"][m["row"]])
        assert sorted(torch.cat([m["row"] for m in micros]).tolist()) == list(range(B))  # a permutation
        cells = sum(m["inputs"].numel() for m in micros)
        assert cells == B * T if n == 1 else cells < B * T  # one group: the batch's own longest row is T
    with pytest.raises(ValueError, match="cannot split a batch of 8 rows into 9 micro-batches"):
        micro_batches(batch, 9)


def test_train_uses_the_larger_of_grad_accum_and_length_groups():
    widths = []

    def objective(model, batch):  # record each micro-batch's shape
        widths.append(tuple(batch["inputs"].shape))
        return sft_objective(model, batch)
    train(fresh_model(), lambda step: ragged_batch(), objective, cfg(steps=1, grad_accum=2, length_groups=4))
    assert len(widths) == 4 and sum(b for b, _ in widths) == 8
    assert [w for _, w in widths] == sorted(w for _, w in widths)  # shortest rows first


def test_length_groups_keep_the_online_word_kd_gradient():
    torch.manual_seed(7)
    teacher = GPT(get_config("tiny", vocab_size=V, n_embd=16))
    obj = word_kd_objective(teacher, temperature=2.0, alpha=0.5)
    assert_grouped_equals_padded(obj, obj)  # the reference is the objective on the untrimmed batch


def test_length_groups_keep_the_offline_topk_gradient(tmp_path):
    """Rows are reordered and trimmed: "index" moves with its row, and the stored top-k still lands on
    the row's answer positions (gather_topk lays them out by the targets, which only lose IGNORE columns)."""
    torch.manual_seed(7)
    teacher = GPT(get_config("tiny", vocab_size=V, n_embd=16))
    store = build_topk_store(teacher, ragged_examples(), PAD, k=4, temperature=2.0, path=tmp_path / "s.pt",
                             fingerprint="toy")
    obj = topk_objective(store, alpha=0.5)
    assert_grouped_equals_padded(obj, obj)


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


class RunsCode:
    """Unpickling this calls open(marker, "w"): a stand-in for any code a malicious checkpoint could run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_checkpoint_that_would_run_code_is_refused_and_the_code_never_runs(tmp_path):
    """Bug class: a torch.load that unpickles freely (weights_only off), which runs whatever the pickle calls. The file is
    refused by name, and differently from a truncated file, so the user knows it is not just damaged."""
    marker, path = tmp_path / "code_ran", tmp_path / "evil.pt"
    torch.save({"model": RunsCode(marker), "config": {}, "step": 0}, path)
    with pytest.raises(CheckpointError, match=r"evil.pt: refused: not plain tensors") as info:
        load_checkpoint(path)
    assert "truncated or corrupted" not in str(info.value)
    assert not marker.exists(), "loading the checkpoint ran code"
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"cut.pt: not a readable checkpoint \(truncated or corrupted\?\)"):
        load_checkpoint(truncated)


def test_history_csv_is_written(tmp_path):
    out = tmp_path / "h.csv"
    train(fresh_model(), toy_batch, cfg=cfg(steps=4, log_every=2, csv_path=str(out)))
    lines = out.read_text().splitlines()
    assert lines[0].startswith("step,") and len(lines) == 1 + 4  # a row for every step, whatever log_every says


def test_history_holds_every_step_and_the_evaluations_on_their_steps():
    """A curve needs every point: the history has one row per step (printing or not), and eval_fn's
    numbers join the rows of the steps it ran on (every eval_every steps and the last)."""
    calls = []
    history = train(fresh_model(), toy_batch, eval_fn=lambda m: calls.append(1) or {"acc": float(len(calls))},
                    cfg=cfg(steps=7, log_every=0, eval_every=3))
    assert [r["step"] for r in history] == list(range(1, 8))
    assert [(r["step"], r["acc"]) for r in history if "acc" in r] == [(3, 1.0), (6, 2.0), (7, 3.0)]
    assert all(r["loss"] > 0 for r in history)
    assert [r["lr"] for r in history] == [get_lr(s, cfg(steps=7)) for s in range(7)]  # the lr of that very step
