"""Lesson 6 exercises: temperature softmax, the KD loss with T^2, and the word-level target (the lesson's
first Check-yourself question: what the student sees at each answer position)."""

import math

import pytest
import torch
import torch.nn.functional as F


def test_ex14_values_by_hand(wb):
    z = torch.tensor([0.0, math.log(2.0)])
    assert wb.ex14_softmax_t(z, 1.0).tolist() == pytest.approx([1 / 3, 2 / 3], abs=1e-6)
    r = math.sqrt(2.0)  # at T = 2 the logits are halved: exp(log(2) / 2) = sqrt(2)
    assert wb.ex14_softmax_t(z, 2.0).tolist() == pytest.approx([1 / (1 + r), r / (1 + r)], abs=1e-6), \
        "softmax(z / T): DIVIDE the logits by the temperature"


def test_ex14_over_the_vocabulary_axis(wb):
    torch.manual_seed(0)
    z = torch.randn(2, 3, 5)  # (B, T, V)
    p = wb.ex14_softmax_t(z, 1.5)
    assert tuple(p.shape) == (2, 3, 5)
    assert torch.allclose(p.sum(dim=-1), torch.ones(2, 3), atol=1e-5), \
        "each position's distribution over the vocabulary (the LAST axis) must sum to 1"
    assert torch.allclose(p, F.softmax(z / 1.5, dim=-1), atol=1e-6)


def test_ex14_higher_temperature_is_flatter(wb):
    z = torch.tensor([3.0, 1.0, 0.0, -2.0])
    entropy = lambda p: float(-(p * p.log()).sum())  # noqa: E731
    h = [entropy(wb.ex14_softmax_t(z, t)) for t in (0.5, 1.0, 2.0, 8.0)]
    assert h == sorted(h), "a higher temperature must flatten the distribution (more 'dark knowledge' shows)"
    assert wb.ex14_softmax_t(z, 4.0).argmax() == 0, "the temperature never changes the order of the tokens"


def test_ex14_float32_for_half_logits(wb):
    p = wb.ex14_softmax_t(torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.bfloat16), 2.0)
    assert p.dtype == torch.float32, "compute in float32 (logits.float()) even when logits arrive in bf16/fp16"


def _kd_by_hand(s, t, y, T, alpha):
    """(1 - alpha) * CE + alpha * T^2 * KL(p_t^T || p_s^T), averaged over answer positions, written out."""
    keep = y != -100
    s, t, y = s[keep].double(), t[keep].double(), y[keep]
    hard = -F.log_softmax(s, -1).gather(1, y[:, None]).squeeze(1)
    log_pt, log_ps = F.log_softmax(t / T, -1), F.log_softmax(s / T, -1)
    kl = (log_pt.exp() * (log_pt - log_ps)).sum(-1)
    return float(((1 - alpha) * hard + alpha * T * T * kl).mean())


def _kd_case(seed=0):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(2, 4, 6, generator=g) * 2
    t = torch.randn(2, 4, 6, generator=g) * 3  # a sharper teacher: forward and reverse KL differ a lot
    y = torch.tensor([[-100, -100, 2, 5], [-100, 1, 0, -100]])
    return s, t, y


@pytest.mark.parametrize("T,alpha", [(1.0, 0.5), (2.0, 0.5), (4.0, 1.0), (1.0, 0.0)])
def test_ex15_kd_loss_by_hand(wb, T, alpha):
    s, t, y = _kd_case()
    got = float(wb.ex15_kd_loss(s, t, y, T, alpha))
    want = _kd_by_hand(s, t, y, T, alpha)
    assert got == pytest.approx(want, rel=1e-4), \
        f"T={T}, alpha={alpha}: want {want:.5f}, got {got:.5f}. Check: KL(teacher || student) (teacher first), " \
        "BOTH sides softened by T, the KL term times T^2, the mean over answer tokens only"


def test_ex15_kl_direction(wb):
    s, t, y = _kd_case(seed=1)
    got = float(wb.ex15_kd_loss(s, t, y, 1.0, 1.0))
    assert got == pytest.approx(_kd_by_hand(s, t, y, 1.0, 1.0), rel=1e-4), \
        "forward KL: sum_v p_teacher(v) * (log p_teacher(v) - log p_student(v)), not the other way round"


def test_ex15_t_squared(wb):
    s, t, y = _kd_case(seed=2)
    soft_1 = float(wb.ex15_kd_loss(s, t, y, 3.0, 1.0))
    want = _kd_by_hand(s, t, y, 3.0, 1.0)
    assert soft_1 == pytest.approx(want, rel=1e-4), \
        f"at T=3 with alpha=1 the loss is T^2 * KL = {want:.5f}, got {soft_1:.5f} (T^2 missing? {want / 9:.5f})"


def test_ex15_prompt_positions_do_not_count(wb):
    s, t, y = _kd_case(seed=3)
    base = float(wb.ex15_kd_loss(s, t, y, 2.0, 0.5))
    s2, t2 = s.clone(), t.clone()
    ignored = y == -100
    s2[ignored], t2[ignored] = 50.0 * torch.randn_like(s2[ignored]), -50.0 * torch.randn_like(t2[ignored])
    assert float(wb.ex15_kd_loss(s2, t2, y, 2.0, 0.5)) == pytest.approx(base, rel=1e-5), \
        "teacher and student disagreeing on PROMPT positions must not change the loss: select answer positions first"


def test_ex15_same_distribution_costs_nothing(wb):
    s, _, y = _kd_case(seed=4)
    assert float(wb.ex15_kd_loss(s, s.clone(), y, 2.0, 1.0)) == pytest.approx(0.0, abs=1e-5), \
        "a student that already matches the teacher has KL = 0"


def test_ex15_teacher_gets_no_gradient(wb):
    s, t, y = _kd_case(seed=5)
    s.requires_grad_(True)
    t.requires_grad_(True)  # as if the teacher's logits came from a forward pass with gradients on
    wb.ex15_kd_loss(s, t, y, 2.0, 0.5).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0, "the student must get a gradient"
    assert t.grad is None or t.grad.abs().sum() == 0, \
        "the teacher is a fixed target: detach its logits so no gradient flows into the teacher"


def test_ex16_a_distribution_per_answer_position(wb):
    """A word-level KD target is a whole distribution at EVERY answer position (a sequence-level one is
    one token id per position: lesson 8)."""
    torch.manual_seed(0)
    teacher_logits = torch.randn(6, 11)  # (T, V) for one sequence's inputs
    targets = torch.tensor([-100, -100, -100, 4, 7, 2])  # three answer positions
    target = wb.ex16_word_level_target(teacher_logits, targets, 2.0)
    assert tuple(target.shape) == (3, 11), "one row per answer position, one column per vocabulary token"
    assert target.is_floating_point(), "probabilities, not token ids"
    assert torch.allclose(target.sum(-1), torch.ones(3), atol=1e-5), "each row is a distribution: it sums to 1"
    assert torch.allclose(target, F.softmax(teacher_logits[3:] / 2.0, -1), atol=1e-6), \
        "the teacher's softened distribution softmax(z / T) at each answer position -- all of it, not its argmax"
    assert (target > 0).all(), "every token keeps some probability: that is the 'dark knowledge'"
