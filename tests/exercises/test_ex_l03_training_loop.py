"""Lesson 3 exercises: the learning-rate schedule and exact gradient accumulation."""

import math

import pytest
import torch
import torch.nn.functional as F

LR, WARMUP, STEPS, MIN = 1e-3, 10, 110, 0.1


def test_ex07_warmup(wb):
    assert wb.ex07_lr_at(0, LR, WARMUP, STEPS, MIN) == pytest.approx(LR / WARMUP), \
        "step 0 already trains: the warmup goes lr * (step + 1) / warmup, so it is never 0"
    assert wb.ex07_lr_at(4, LR, WARMUP, STEPS, MIN) == pytest.approx(LR * 5 / WARMUP)
    assert wb.ex07_lr_at(WARMUP - 1, LR, WARMUP, STEPS, MIN) == pytest.approx(LR), "warmup ends at the peak"


def test_ex07_cosine_decay(wb):
    assert wb.ex07_lr_at(WARMUP, LR, WARMUP, STEPS, MIN) == pytest.approx(LR), "the cosine starts at the peak"
    half = WARMUP + (STEPS - WARMUP) // 2
    assert wb.ex07_lr_at(half, LR, WARMUP, STEPS, MIN) == pytest.approx(LR * (MIN + (1 - MIN) * 0.5))
    quarter = WARMUP + (STEPS - WARMUP) // 4
    want = LR * (MIN + (1 - MIN) * 0.5 * (1 + math.cos(math.pi * 0.25)))
    assert wb.ex07_lr_at(quarter, LR, WARMUP, STEPS, MIN) == pytest.approx(want)
    assert wb.ex07_lr_at(STEPS, LR, WARMUP, STEPS, MIN) == pytest.approx(LR * MIN), "it ends at lr * min_lr_ratio"
    assert wb.ex07_lr_at(STEPS + 50, LR, WARMUP, STEPS, MIN) == pytest.approx(LR * MIN), "and stays there"


def test_ex08_micro_batches_equal_one_big_batch(wb):
    torch.manual_seed(0)
    V = 5
    logits = torch.randn(2, 4, V)
    targets = torch.tensor([[-100, -100, -100, 3],  # micro-batch 1: one answer token
                            [-100, 1, 2, 4]])  # micro-batch 2: three answer tokens
    keep = targets != -100
    by_hand = -F.log_softmax(logits[keep], dim=-1).gather(1, targets[keep][:, None]).mean()  # 4 tokens
    got = wb.ex08_accumulated_loss([logits[:1], logits[1:]], [targets[:1], targets[1:]])
    assert float(got) == pytest.approx(float(by_hand), abs=1e-5), \
        "divide the SUMMED loss of all micro-batches by the answer tokens of the whole step; the mean of " \
        "micro-batch means weights a 1-token micro-batch like a 3-token one"


def test_ex08_one_micro_batch(wb):
    torch.manual_seed(1)
    logits, targets = torch.randn(3, 5, 7), torch.randint(0, 7, (3, 5))
    targets[:, :2] = -100
    want = F.cross_entropy(logits.reshape(-1, 7), targets.reshape(-1), ignore_index=-100)
    got = wb.ex08_accumulated_loss([logits], [targets])
    assert float(got) == pytest.approx(float(want), abs=1e-5)


def test_ex09_a_batch_depends_on_seed_and_step_only(wb):
    first = [list(wb.ex09_batch_indices(1000, 8, 7, step)) for step in range(6)]
    again = [list(wb.ex09_batch_indices(1000, 8, 7, step)) for step in (5, 2, 0, 4, 1, 3)]
    assert [first[s] for s in (5, 2, 0, 4, 1, 3)] == again, \
        "batch `step` must be the same whatever was drawn before: a resumed run starts at step 600 with no history"
    assert all(len(b) == 8 and all(0 <= i < 1000 for i in b) for b in first)


def test_ex09_different_steps_and_seeds_differ(wb):
    batches = [tuple(wb.ex09_batch_indices(1000, 8, 0, step)) for step in range(20)]
    assert len(set(batches)) == 20, "every step draws a new batch"
    assert list(wb.ex09_batch_indices(1000, 8, 1, 0)) != list(wb.ex09_batch_indices(1000, 8, 0, 0)), \
        "another seed, another batch"
    assert list(wb.ex09_batch_indices(1000, 8, 1, 0)) != list(wb.ex09_batch_indices(1000, 8, 0, 1)), \
        "(seed=1, step=0) and (seed=0, step=1) must differ: seeding with seed + step makes two runs share batches"
