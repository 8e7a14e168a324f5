"""Lesson 14 (reasoning traces), run once as a notebook in fast mode, states only computed verdicts."""

from lesson_checks import check_claims, check_units, run_lesson


def test_lesson14_reasoning_traces(tmp_path, runs_tmp):
    run = run_lesson("l14_reasoning_traces", tmp_path)
    text = run.text
    assert len(run["traces"]) == 64
    seen = run["tokens"]
    assert seen["traces"]["answer_tokens"] > seen["answers"]["answer_tokens"], "a worked solution is longer"
    assert set(run["test"]) == {"answers", "traces"} and len(run["test"]["traces"]) == 3
    assert all(0 <= t <= a <= 1 for t, a in zip(run["trace"], run["answer"]))
    assert (runs_tmp / "plots" / "l14_learning_curves.png").exists() or "also drawn" not in text
    assert "Step 5: rejection sampling" in text and "Check yourself" in text
    check_claims(run["claims"], text)  # every conclusion a verdict, printed as decided, saved for the README
    check_units(run["claims"])  # the arms over training seeds; the one-seed comparisons about their two students
