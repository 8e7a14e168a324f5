"""Lesson 14 exercise: a worked solution is right only if every step is right, not only its final answer."""

import random

import pytest

from minikd.world import check_trace, make_record

RIGHT = "8+5=13 carry 1. 7+6+1=14 carry 1. The answer is 143."  # 78 + 65
SUM = "Add 78 + 65 step by step."


def test_ex30_right_solutions_have_no_wrong_step(wb):
    assert wb.ex30_first_wrong_step(SUM, RIGHT) is None
    assert wb.ex30_first_wrong_step(SUM, RIGHT.replace("The answer is 143.", "Sum: 143.")) is None
    assert wb.ex30_first_wrong_step("Add 7 + 45 step by step.", "7+5=12 carry 1. 0+4+1=5. The answer is 52.") is None, \
        "a shorter operand's missing digit is 0, and the carry goes into the next column"
    assert wb.ex30_first_wrong_step("Add 31 + 24 step by step.", "1+4=5. 3+2=5. Sum: 55.") is None


def test_ex30_a_wrong_step_with_a_right_answer_is_wrong(wb):
    got = wb.ex30_first_wrong_step(SUM, "8+5=13 carry 1. 7+6+1=15 carry 1. The answer is 143.")
    assert got == 2, f"step 2 says 7+6+1=15: the solution is wrong there even though 143 is right (got {got})"


def test_ex30_the_carry_in_must_be_used(wb):
    got = wb.ex30_first_wrong_step(SUM, "8+5=13 carry 1. 7+6=13 carry 1. The answer is 143.")
    assert got == 2, f"step 2 forgets the carry from step 1 (7+6, not 7+6+1), though its own sum is right (got {got})"
    got = wb.ex30_first_wrong_step(SUM, "8+5=13. 7+6+1=14 carry 1. The answer is 143.")
    assert got == 1, f"8+5=13 must say ' carry 1' (got {got})"


@pytest.mark.parametrize("response, k", [
    ("5+8=13 carry 1. 7+6+1=14 carry 1. The answer is 143.", 1),  # a's digit first, then b's
    ("8+5=13 carry 1. The answer is 143.", 2),  # a missing step
    ("8+5=13 carry 1. 7+6+1=14 carry 1. The answer is 142.", 3),  # right steps, wrong sum
    ("8+5=13 carry 1. 7+6+1=14 carry 1.", 3),  # no closing sentence
    ("8+5=13 carry 1. 7+6+1=14 carry 1. 1+0=1. The answer is 143.", 3),  # an extra step
    ("", 1),
])
def test_ex30_first_wrong_step_by_hand(wb, response, k):
    got = wb.ex30_first_wrong_step(SUM, response)
    assert got == k, f"{response!r}: the first wrong step is {k}, got {got}"


def test_ex30_agrees_with_the_trace_checker_on_noisy_records(wb):
    rng = random.Random(14)
    for i in range(200):
        rec = make_record("add_steps", rng, rng.choice((1, 2, 3)), 0.5, i)
        got = wb.ex30_first_wrong_step(rec["prompt"], rec["completion"])
        assert (got is None) == check_trace(rec["prompt"], rec["completion"]), \
            f"{rec['prompt']!r} -> {rec['completion']!r}: got {got}"
        if rec["label_noisy"]:  # one column's sum is off by one (the slip), every column before it is right
            steps = rec["completion"].split(". ")
            wrong = next(k for k, s in enumerate(steps, start=1) if not _step_is_right(s))
            assert got == wrong, f"{rec['completion']!r}: the slip is in step {wrong}, got {got}"


def _step_is_right(sentence: str) -> bool:
    """The arithmetic of one step sentence, on its own (a slip writes x+y+c as one more or one less)."""
    lhs, rhs = sentence.rstrip(".").split(" carry")[0].split("=")
    return sum(int(t) for t in lhs.split("+")) == int(rhs)
