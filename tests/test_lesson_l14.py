"""Lesson 14 (reasoning traces) runs end to end in its --fast mode and states only computed verdicts."""

from lessons import l14_reasoning_traces
from minikd import lesson_findings


def test_lesson14_reasoning_traces(capsys, runs_tmp):
    out = l14_reasoning_traces.main(["--fast"])
    text = capsys.readouterr().out
    assert out["n_train"] == 64
    seen = out["tokens"]
    assert seen["traces"]["answer_tokens"] > seen["answers"]["answer_tokens"], "a worked solution is longer"
    assert set(out["acc"]["test"]) == {"answers", "traces"} and len(out["acc"]["test"]["traces"]) == 3
    assert all(0 <= t <= a <= 1 for t, a in zip(out["traces"]["trace"], out["traces"]["answer"]))
    assert (runs_tmp / "plots" / "l14_learning_curves.png").exists() or "also drawn" not in text
    assert "Step 5: rejection sampling" in text and "Check yourself" in text
    assert out["claims"], "the lesson states no computed conclusion"
    for c in out["claims"]:
        assert c.sentence() in text
        assert c.fast and c.verdict in ("holds", "consistent (not separable)", "needs the default run")
    # the results the README shows: the same verdicts, decided again from the saved numbers
    saved = lesson_findings.render("quick")
    assert all(c.sentence() in saved for c in out["claims"])
