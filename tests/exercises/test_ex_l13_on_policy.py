"""Lesson 13 exercises: on-policy distillation's per-token reverse KL, and equal-compute accounting."""

import pytest
import torch
import torch.nn.functional as F

IGNORE_INDEX = -100


def sample_batch():
    """Two rows (B=2, T=5, V=7): prompt positions, 3 and 2 sampled tokens, padding; fixed random logits."""
    g = torch.Generator().manual_seed(13)
    student = torch.randn(2, 5, 7, generator=g) * 2
    teacher = torch.randn(2, 5, 7, generator=g) * 2
    targets = torch.tensor([[IGNORE_INDEX, 3, 1, 4, IGNORE_INDEX],
                            [IGNORE_INDEX, IGNORE_INDEX, 2, 6, IGNORE_INDEX]])
    return student, teacher, targets


def by_hand(student, teacher, targets):
    rows = []
    for b in range(targets.shape[0]):
        for t in range(targets.shape[1]):
            if targets[b, t] != IGNORE_INDEX:
                ps, pt = F.softmax(student[b, t], -1), F.softmax(teacher[b, t], -1)
                rows.append(float((ps * (ps.log() - pt.log())).sum()))
    return sum(rows) / len(rows)


def test_ex28_reverse_kl_by_hand(wb):
    student, teacher, targets = sample_batch()
    got = float(wb.ex28_reverse_kl_loss(student, teacher, targets))
    ps, pt = F.softmax(student, -1), F.softmax(teacher, -1)
    forward = float((pt * (pt.log() - ps.log())).sum(-1)[targets != IGNORE_INDEX].mean())
    assert got != pytest.approx(forward, rel=1e-3), \
        "that is the FORWARD KL, KL(p_t || p_s): on-policy distillation uses KL(p_s || p_t) (weights p_s)"
    assert got == pytest.approx(by_hand(student, teacher, targets), rel=1e-5), \
        "mean over the sampled positions of sum_v p_s(v) * (log p_s(v) - log p_t(v))"


def test_ex28_only_sampled_tokens_count(wb):
    student, teacher, targets = sample_batch()
    noisy_s, noisy_t = student.clone(), teacher.clone()
    off = targets == IGNORE_INDEX
    noisy_s[off], noisy_t[off] = 40.0, -40.0  # prompt and padding positions: any logits at all
    got = float(wb.ex28_reverse_kl_loss(noisy_s, noisy_t, targets))
    assert got == pytest.approx(by_hand(student, teacher, targets), rel=1e-5), \
        "positions without a target (prompt, padding) must not count, neither in the sum nor in the mean's N"


def test_ex28_zero_when_student_equals_teacher(wb):
    student, _, targets = sample_batch()
    assert float(wb.ex28_reverse_kl_loss(student, student.clone(), targets)) == pytest.approx(0.0, abs=1e-6)


def test_ex28_gradient_by_hand_and_none_into_the_teacher(wb):
    student, teacher, targets = sample_batch()
    s = student.clone().requires_grad_(True)
    t = teacher.clone().requires_grad_(True)
    wb.ex28_reverse_kl_loss(s, t, targets).backward()
    assert t.grad is None or float(t.grad.abs().max()) == 0.0, "the teacher is a fixed target: detach its logits"
    log_ps, log_pt = F.log_softmax(student, -1), F.log_softmax(teacher, -1)
    kl = (log_ps.exp() * (log_ps - log_pt)).sum(-1, keepdim=True)
    keep = (targets != IGNORE_INDEX)[..., None]
    want = log_ps.exp() * (log_ps - log_pt - kl) * keep / int(keep.sum())  # d KL(p_s||p_t) / d z_s, averaged
    torch.testing.assert_close(s.grad, want, rtol=1e-4, atol=1e-7)


COUNTS = {"student_forward": 1000, "student_backward": 600, "teacher_forward": 600}


def test_ex29_by_hand(wb):
    # budget = 2*10*1000 + 4*10*600 + 2*50*600 = 20,000 + 24,000 + 60,000 = 104,000 FLOPs;
    # a seq-KD step of 400 tokens costs 6*10*400 = 24,000: 4 steps = 96,000 < budget, 5 = 120,000 >= budget
    assert wb.ex29_matched_seq_kd_steps(COUNTS, [400] * 10, 10, 50) == 5, \
        "the teacher's forward passes count at the teacher's size (2 * n_teacher per token)"


def test_ex29_steps_of_different_sizes_and_an_exact_hit(wb):
    # budget 104,000: steps of 1000, 500, 200 tokens cost 60,000, 30,000, 12,000 (102,000), then 1,200 each:
    # 103,200 after 4 steps, 104,400 after 5
    assert wb.ex29_matched_seq_kd_steps(COUNTS, [1000, 500, 200, 20, 20, 20], 10, 50) == 5
    # an exact hit stops there: budget 6*10*100 = 6,000 when only the student read 100 tokens both ways
    exact = {"student_forward": 100, "student_backward": 100, "teacher_forward": 0}
    assert wb.ex29_matched_seq_kd_steps(exact, [50, 50, 50], 10, 50) == 2


def test_ex29_a_run_that_cost_nothing(wb):
    zero = {"student_forward": 0, "student_backward": 0, "teacher_forward": 0}
    assert wb.ex29_matched_seq_kd_steps(zero, [10, 10], 10, 50) == 0


def test_ex29_a_bigger_teacher_buys_seq_kd_more_steps(wb):
    # budget 2*10*1000 + 4*10*600 + 2*N_t*600; a step of 100 tokens costs 6,000:
    # N_t = 10 -> 56,000 -> 10 steps; N_t = 1000 -> 1,244,000 -> 208 steps
    assert wb.ex29_matched_seq_kd_steps(COUNTS, [100] * 300, 10, 10) == 10
    assert wb.ex29_matched_seq_kd_steps(COUNTS, [100] * 300, 10, 1000) == 208
