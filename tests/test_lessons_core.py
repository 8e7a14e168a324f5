"""Lessons 2-5 run end to end in their --fast mode and show what their text claims."""

import pytest

from lessons import l02_model, l03_training_loop, l04_response_masking, l05_train_teacher


def test_lesson2_model(capsys):
    out = l02_model.main(["--fast"])
    assert out["cache_equal"]
    assert out["params"]["teacher"] > 3 * out["params"]["student"]
    assert "Check yourself" in capsys.readouterr().out


def test_lesson3_training_loop():
    out = l03_training_loop.main(["--fast"])
    assert out["last_loss"] < out["first_loss"]
    assert out["resume_equal"]


@pytest.mark.slow
def test_lesson4_response_masking(capsys):
    out = l04_response_masking.main(["--fast"])
    assert out["masked_equals_by_hand"]
    assert 0.0 < out["prompt_share"] < 1.0
    assert "loss is computed here" in capsys.readouterr().out


@pytest.mark.slow
def test_lesson5_train_teacher_caches_the_teacher(capsys, runs_tmp):
    l05_train_teacher.main(["--fast"])
    assert (runs_tmp / "quick" / "teacher.pt").exists()
    l05_train_teacher.main(["--fast"])  # the second run reuses the cached teacher
    assert "loaded cached" in capsys.readouterr().out
