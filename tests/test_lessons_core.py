"""Lessons 1-5, each run once as a notebook in fast mode (tests/lesson_checks.py); every sentence they print
about their results is a computed verdict (minikd.verdict), and each verdict printed is the one its numbers give."""

import pytest

from lesson_checks import run_lesson


def assert_claims_printed(run) -> None:
    """At least one verdict was made, and each was printed as it reads."""
    assert run["claims"], "the lesson made no claim"
    for c in run["claims"]:
        assert c.sentence() in run.text


def by_text(run, start: str):
    """The one claim of this run whose text starts with `start`."""
    found = [c for c in run["claims"] if c.text.startswith(start)]
    assert len(found) == 1, f"{len(found)} claims start with {start!r}"
    return found[0]


def test_lesson1_tokenizer(tmp_path):
    run = run_lesson("l01_tokenizer", tmp_path)
    assert_claims_printed(run)
    assert all(c.holds for c in run["claims"])  # facts of the encoding: all must hold
    assert len(run["number_tokens"]["ours"]) == 10 < len(run["number_tokens"]["gpt"])
    assert "loss is computed here" in run.text and "Check yourself" in run.text


def test_lesson2_model(tmp_path):
    run = run_lesson("l02_model", tmp_path)
    assert_claims_printed(run)
    assert all(run["same"])
    assert by_text(run, "the same tokens with and without the cache").holds
    assert by_text(run, "the written-out attention equals").holds
    assert by_text(run, "the KV cache decodes faster").diff.n == 5  # paired by repeat
    assert run["params"]["teacher"] > 3 * run["params"]["student"]
    assert "Check yourself" in run.text


def test_lesson3_training_loop(tmp_path):
    run = run_lesson("l03_training_loop", tmp_path)
    assert_claims_printed(run)
    history = run["history"]
    assert [r["step"] for r in history] == list(range(1, 21))  # one row per step: a full curve
    assert "lr × 1000: a = learning rate" in run.text and "loss: a = training loss" in run.text  # both drawn
    assert history[-1]["loss"] < history[0]["loss"]
    assert run["resume_equal"]
    assert by_text(run, "the resumed run ends with exactly the weights").holds


@pytest.mark.slow
def test_lesson4_response_masking(tmp_path):
    run = run_lesson("l04_response_masking", tmp_path)
    assert_claims_printed(run)
    assert run["masked_equals_by_hand"]
    assert 0.0 < run["prompt_share"] < 1.0
    assert "loss is computed here" in run.text
    assert "nats: a = naive, b = masked" in run.text  # both students' curves on one chart


@pytest.mark.slow
def test_lesson4_masked_verdict_follows_its_interval(tmp_path):
    """A tiny run where both students score ~0 % must not print that masking won: the masked-beats-naive
    verdict reads [holds] exactly when its interval lies above 0."""
    run = run_lesson("l04_response_masking", tmp_path)
    c = by_text(run, "the masked student answers more test prompts")
    assert c.diff.n == len(run["test_set"])  # paired by test prompt
    supported = c.diff.lo > 0
    assert (f"[holds] {c.text}" in run.text) == supported
    if max(run["results"].values()) == 0.0:  # both at 0 %: nothing to separate
        assert not supported and c.verdict == "needs the default run"


@pytest.mark.slow
def test_lesson5_train_teacher_caches_the_teacher(tmp_path, runs_tmp, capsys):
    run = run_lesson("l05_train_teacher", tmp_path)
    assert_claims_printed(run)
    assert (runs_tmp / "quick" / "teacher.pt").exists()
    assert "nats: a = teacher, b = student" in run.text  # both loss curves on one chart
    from lessons.kit import get_profile, get_teacher  # a later lesson reuses the cached teacher
    get_teacher(get_profile("quick"), device="cpu")
    assert "loaded cached" in capsys.readouterr().out
