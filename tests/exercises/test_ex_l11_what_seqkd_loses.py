"""Lesson 11 exercises: what sequence-level KD loses, measured per answer position and per answer."""

import math

import pytest
import torch

IGNORE = -100


def _log(p):
    return torch.log(torch.tensor(p))


def test_ex25_entropy_and_kl_by_hand(wb):
    student = _log([[[0.5, 0.5], [0.9, 0.1], [0.2, 0.8]]])  # (1, 3, 2)
    teacher = _log([[[0.8, 0.2], [0.9, 0.1], [0.6, 0.4]]])
    targets = torch.tensor([[IGNORE, 1, 0]])  # the first position is prompt: not graded
    entropy, kl = wb.ex25_entropy_and_kl(student, teacher, targets)
    h = [-(0.9 * math.log(0.9) + 0.1 * math.log(0.1)), -(0.2 * math.log(0.2) + 0.8 * math.log(0.8))]
    assert list(entropy.shape) == [2] and list(kl.shape) == [2], "one value per ANSWER position (2 here)"
    assert entropy.tolist() == pytest.approx(h, abs=1e-5), "the entropy of the STUDENT's distribution, in nats"
    assert kl.tolist() == pytest.approx([0.0, 0.6 * math.log(0.6 / 0.2) + 0.4 * math.log(0.4 / 0.8)], abs=1e-5), \
        "KL(teacher || student): weighted by the teacher's probabilities"


def test_ex25_only_answer_positions_in_row_major_order(wb):
    torch.manual_seed(0)
    s, t = torch.randn(2, 4, 6), torch.randn(2, 4, 6)
    targets = torch.tensor([[IGNORE, 1, IGNORE, IGNORE], [IGNORE, IGNORE, 2, 3]])
    entropy, kl = wb.ex25_entropy_and_kl(s, t, targets)
    log_s, log_t = torch.log_softmax(s, -1), torch.log_softmax(t, -1)
    want_h = -(log_s.exp() * log_s).sum(-1)
    want_kl = (log_t.exp() * (log_t - log_s)).sum(-1)
    rows = [(0, 1), (1, 2), (1, 3)]
    assert entropy.tolist() == pytest.approx([want_h[b, i].item() for b, i in rows], abs=1e-5), \
        "prompt and padding positions are not graded; keep row 0's positions before row 1's"
    assert kl.tolist() == pytest.approx([want_kl[b, i].item() for b, i in rows], abs=1e-5)


def test_ex25_a_student_equal_to_its_teacher(wb):
    logits = torch.randn(1, 3, 5)
    entropy, kl = wb.ex25_entropy_and_kl(torch.zeros(1, 3, 5), torch.zeros(1, 3, 5), torch.tensor([[0, 1, 2]]))
    assert entropy.tolist() == pytest.approx([math.log(5)] * 3, abs=1e-5), "a uniform student: entropy log V"
    _, kl = wb.ex25_entropy_and_kl(logits, logits.clone(), torch.tensor([[0, 1, 2]]))
    assert kl.tolist() == pytest.approx([0.0] * 3, abs=1e-5), "a student equal to its teacher is at KL 0"


def test_ex25_a_sure_student_is_not_nan(wb):
    student = torch.tensor([[[200.0, 0.0, 0.0]]])  # all but certain of token 0
    teacher = torch.tensor([[[0.0, 0.0, 0.0]]])
    entropy, kl = wb.ex25_entropy_and_kl(student, teacher, torch.tensor([[0]]))
    assert not torch.isnan(entropy).any() and not torch.isnan(kl).any(), \
        "0 * log 0 must be 0: work with log_softmax, not softmax(...).log()"
    assert entropy.item() == pytest.approx(0.0, abs=1e-5)
    assert kl.item() == pytest.approx((2 * 200.0) / 3 - math.log(3), rel=1e-4)


def test_ex26_equal_answers_never_part(wb):
    assert wb.ex26_first_divergence([5, 6, 7], [5, 6, 7]) is None
    assert wb.ex26_first_divergence([], []) is None


def test_ex26_the_first_differing_position(wb):
    assert wb.ex26_first_divergence([5, 6, 7, 8], [5, 6, 9, 8]) == 2, "positions count from 0"
    assert wb.ex26_first_divergence([1, 2], [3, 2]) == 0


def test_ex26_stopping_early_or_running_on_is_leaving(wb):
    assert wb.ex26_first_divergence([5, 6], [5, 6, 7]) == 2, "the shorter answer stopped where the other goes on"
    assert wb.ex26_first_divergence([5, 6, 7], [5, 6]) == 2
    assert wb.ex26_first_divergence([], [4]) == 0
