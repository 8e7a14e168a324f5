"""Lessons 1-5 run end to end in their --fast mode; every sentence they print about their results is a
computed verdict (minikd.verdict), and each verdict printed is the one its numbers give."""

import contextlib
import io

import pytest

from lessons import l01_tokenizer, l02_model, l03_training_loop, l04_response_masking, l05_train_teacher


def assert_claims_printed(out: dict, stdout: str) -> None:
    """At least one verdict was made, and each was printed as it reads."""
    assert out["claims"], "the lesson made no claim"
    for c in out["claims"]:
        assert c.sentence() in stdout


def by_text(out: dict, start: str):
    """The one claim of this run whose text starts with `start`."""
    found = [c for c in out["claims"] if c.text.startswith(start)]
    assert len(found) == 1, f"{len(found)} claims start with {start!r}"
    return found[0]


def test_lesson1_tokenizer(capsys):
    out = l01_tokenizer.main(["--fast"])
    assert_claims_printed(out, capsys.readouterr().out)
    assert all(c.holds for c in out["claims"])  # facts of the encoding: all must hold
    assert out["number_tokens"] == 10 < out["gpt_number_tokens"]


def test_lesson2_model(capsys):
    out = l02_model.main(["--fast"])
    stdout = capsys.readouterr().out
    assert_claims_printed(out, stdout)
    assert out["cache_equal"]
    assert by_text(out, "the same tokens with and without the cache").holds
    assert by_text(out, "the written-out attention equals").holds
    assert by_text(out, "the KV cache decodes faster").diff.n == 5  # paired by repeat
    assert out["params"]["teacher"] > 3 * out["params"]["student"]
    assert "Check yourself" in stdout


def test_lesson3_training_loop(capsys):
    out = l03_training_loop.main(["--fast"])
    stdout = capsys.readouterr().out
    assert_claims_printed(out, stdout)
    assert [r["step"] for r in out["history"]] == list(range(1, 21))  # one row per step: a full curve
    assert "lr × 1000: a = learning rate" in stdout and "loss: a = training loss" in stdout  # both drawn
    assert out["last_loss"] < out["first_loss"]
    assert out["resume_equal"]
    assert by_text(out, "the resumed run ends with exactly the weights").holds


@pytest.fixture(scope="module")
def lesson4():
    """One --fast run of lesson 4 (tens of seconds) shared by its tests: (out, stdout)."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        out = l04_response_masking.main(["--fast"])
    return out, buf.getvalue()


@pytest.mark.slow
def test_lesson4_response_masking(lesson4):
    out, stdout = lesson4
    assert_claims_printed(out, stdout)
    assert out["masked_equals_by_hand"]
    assert 0.0 < out["prompt_share"] < 1.0
    assert "loss is computed here" in stdout
    assert "nats: a = naive, b = masked" in stdout  # both students' curves on one chart


@pytest.mark.slow
def test_lesson4_masked_verdict_follows_its_interval(lesson4):
    """A tiny run where both students score ~0 % must not print that masking won: the masked-beats-naive
    verdict reads [holds] exactly when its interval lies above 0."""
    out, stdout = lesson4
    c = out["masked_beats_naive"]
    assert c in out["claims"] and c.diff.n == len(l04_response_masking.load_split(
        "test", l04_response_masking.get_profile("quick")))  # paired by test prompt
    supported = c.diff.lo > 0
    assert (f"[holds] {c.text}" in stdout) == supported
    if max(out["results"].values()) == 0.0:  # both at 0 %: nothing to separate
        assert not supported and c.verdict == "needs the default run"


@pytest.mark.slow
def test_lesson5_train_teacher_caches_the_teacher(capsys, runs_tmp):
    out = l05_train_teacher.main(["--fast"])
    assert_claims_printed(out, capsys.readouterr().out)
    assert (runs_tmp / "quick" / "teacher.pt").exists()
    out = l05_train_teacher.main(["--fast"])  # the second run reuses the cached teacher
    stdout = capsys.readouterr().out
    assert "loaded cached" in stdout
    assert_claims_printed(out, stdout)
    assert "nats: a = teacher, b = student" in stdout  # both loss curves on one chart
