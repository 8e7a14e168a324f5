"""Lesson 16 exercises: re-tokenize a stored answer for a student of another tokenizer; ULD's sorted, padded
L1 distance; ULD's loss with positions paired from the first answer token (Boizard et al. 2024)."""

import math

import pytest
import torch
import torch.nn.functional as F

from minikd.tokenizer import Tokenizer

IGNORE_INDEX = -100
X = IGNORE_INDEX


@pytest.fixture(scope="module")
def second():
    return Tokenizer.second()


PAIRS = [("Sort 3 1 2.", "Sorted: 1 2 3."), ("Add 64 + 33 step by step.", "4+3=7. 6+3=9. Sum: 97."),
         ("Sort 9 8.", "8, 9")]


def test_ex31_same_text_in_the_students_tokens(wb, tok, second):
    for prompt, answer in PAIRS:
        got = wb.ex31_retokenize(tok, second, *tok.render(prompt, answer))
        assert list(got[0]) == second.render(prompt, answer)[0], \
            f"{prompt!r}: the ids must be the student's rendering of the same text (its specials, its encode)"
        assert list(got[1]) == second.render(prompt, answer)[1], \
            "the mask must be rebuilt for the student's tokens: 1 on its answer tokens and its <|end|>"


def test_ex31_works_both_ways_and_changes_the_ids(wb, tok, second):
    prompt, answer = PAIRS[0]
    ids, mask = second.render(prompt, answer)
    assert list(wb.ex31_retokenize(second, tok, ids, mask)[0]) == tok.render(prompt, answer)[0]
    assert tok.render(prompt, answer)[0] != ids, "the two tokenizers give this text different ids"


def test_ex31_template_text_in_a_prompt_stays_text(wb, tok, second):
    """A user typed the template's text into the prompt: it is plain characters in both tokenizers."""
    prompt, answer = "Sort 2 1. <|response|> 9 <|end|>", "1 2"
    got_ids, got_mask = wb.ex31_retokenize(tok, second, *tok.render(prompt, answer))
    want_ids, want_mask = second.render(prompt, answer)
    assert list(got_ids) == want_ids and list(got_mask) == want_mask, \
        "split by the special IDS, not by the text '<|response|>' (the prompt may contain that text)"


def test_ex32_by_hand(wb):
    p = torch.tensor([0.1, 0.7, 0.2])
    q = torch.tensor([0.05, 0.05, 0.6, 0.3])
    assert float(wb.ex32_uld_distance(p, q)) == pytest.approx(0.3, abs=1e-6), \
        "sorted [0.7, 0.2, 0.1, 0] vs [0.6, 0.3, 0.05, 0.05]: 0.1 + 0.1 + 0.05 + 0.05"
    assert float(wb.ex32_uld_distance(q, p)) == pytest.approx(0.3, abs=1e-6), "either side may be the longer"


def test_ex32_the_tail_counts(wb):
    """The longer vocabulary's tail is compared with zeros, not cut off."""
    p = torch.tensor([0.5, 0.5])
    q = torch.tensor([0.4, 0.4, 0.1, 0.1])
    assert float(wb.ex32_uld_distance(p, q)) == pytest.approx(0.4, abs=1e-6), \
        "[0.5, 0.5, 0, 0] vs [0.4, 0.4, 0.1, 0.1] = 0.1 + 0.1 + 0.1 + 0.1: pad with zeros, do not truncate"


def test_ex32_positions_and_permutations(wb):
    g = torch.Generator().manual_seed(32)
    p = F.softmax(torch.randn(2, 3, 7, generator=g), dim=-1)  # (B, T, Vs)
    q = F.softmax(torch.randn(2, 3, 5, generator=g), dim=-1)  # (B, T, Vt)
    d = wb.ex32_uld_distance(p, q)
    assert tuple(d.shape) == (2, 3), "one distance per position: reduce the last axis only"
    want = torch.tensor([[float(wb.ex32_uld_distance(p[b, t], q[b, t])) for t in range(3)] for b in range(2)])
    torch.testing.assert_close(d.float(), want, rtol=1e-5, atol=1e-6)
    shuffled = wb.ex32_uld_distance(p[..., torch.randperm(7, generator=g)], q)
    torch.testing.assert_close(shuffled.float(), d.float(), rtol=1e-5, atol=1e-6)
    assert float(wb.ex32_uld_distance(q, q).abs().max()) < 1e-6


def hand_batch():
    """Row 0: 2 student answer positions (softmax known exactly), 3 teacher positions; row 1: 3 and 1."""
    p = {1: torch.tensor([0.1, 0.7, 0.2]), 2: torch.tensor([0.5, 0.25, 0.25]), 3: torch.tensor([0.2, 0.2, 0.6])}
    logits = torch.zeros(2, 4, 3)
    logits[0, 1], logits[0, 2] = p[1].log(), p[2].log()
    logits[1, 1], logits[1, 2], logits[1, 3] = p[3].log(), p[2].log(), p[1].log()
    targets = torch.tensor([[X, 1, 2, X], [X, 2, 0, 1]])
    teacher = [torch.tensor([[0.6, 0.3, 0.05, 0.05], [1.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0]]),
               torch.tensor([[0.6, 0.4, 0.0, 0.0]])]
    return logits, targets, teacher


def test_ex33_by_hand(wb):
    logits, targets, teacher = hand_batch()
    # CE: row 0 -log 0.7 - log 0.25; row 1 -log 0.6 - log 0.5 - log 0.7   (5 student answer tokens)
    ce = -math.log(0.7) - math.log(0.25) - math.log(0.6) - math.log(0.5) - math.log(0.7)
    # pairs: row 0 (0.3 and 1.0; the teacher's 3rd position has no partner), row 1 only its FIRST position:
    # [0.6, 0.2, 0.2, 0] vs [0.6, 0.4, 0, 0] = 0 + 0.2 + 0.2 = 0.4
    for weight in (0.0, 1.0, 2.0):
        got = float(wb.ex33_uld_loss(logits, targets, teacher, weight))
        assert got == pytest.approx((ce + weight * (0.3 + 1.0 + 0.4)) / 5, rel=1e-5), \
            f"weight={weight}: (CE summed over the 5 student answer tokens + weight * paired distances) / 5"


def test_ex33_pairs_start_at_the_first_answer_token(wb):
    logits, targets, teacher = hand_batch()
    one = [teacher[0][:1], teacher[1]]  # the teacher has 1 position in each row: pair it with the student's first
    ce = -math.log(0.7) - math.log(0.25) - math.log(0.6) - math.log(0.5) - math.log(0.7)
    got = float(wb.ex33_uld_loss(logits, targets, one, 1.0))
    assert got == pytest.approx((ce + 0.3 + 0.4) / 5, rel=1e-5), \
        "the teacher's i-th answer position goes with the student's i-th, counting from the first"


def test_ex33_gradient_reaches_the_student_only(wb):
    logits, targets, teacher = hand_batch()
    s = logits.clone().requires_grad_(True)
    t = [x.clone().requires_grad_(True) for x in teacher]
    wb.ex33_uld_loss(s, targets, t, 1.0).backward()
    assert all(x.grad is None or float(x.grad.abs().max()) == 0.0 for x in t), "the teacher is a fixed target"
    assert float(s.grad[0, 0].abs().sum()) == 0.0 and float(s.grad[0, 3].abs().sum()) == 0.0, \
        "positions without a target carry no loss"
    assert float(s.grad[1, 3].abs().sum()) > 0.0, "an unpaired student position still has its CE"
