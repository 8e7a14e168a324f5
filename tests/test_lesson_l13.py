"""Lesson 13 (on-policy distillation) runs end to end in its --fast mode and prints what it decided."""

import pytest

from lessons import l13_on_policy
from lesson_checks import check_claims


@pytest.mark.slow
def test_lesson13_on_policy(capsys, runs_tmp):
    out = l13_on_policy.main(["--fast"])
    text = capsys.readouterr().out
    arms = set(l13_on_policy.ARMS)
    assert set(out["mean"]) == {"base", *arms} and len(out["seeds"]) == 2
    assert all(0.0 <= v <= 1.0 for row in out["mean"].values() for v in row.values())
    assert set(out["steps"]) == arms and all(n >= 1 for steps in out["steps"].values() for n in steps)
    # the compute table: every counted quantity, for every arm
    for word in ("student fwd", "student bwd", "teacher fwd", "generated", "GFLOPs", "loss is computed here"):
        assert word in text
    assert "reverse KL(student || teacher) at each sampled token" in text and "Check yourself" in text
    # every conclusion is a verdict, printed as it was decided
    check_claims(out["claims"], text)  # every conclusion a verdict, printed as decided, saved for the README
