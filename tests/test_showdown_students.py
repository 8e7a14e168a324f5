"""One set of students for the whole course: a lesson that compares the showdown's methods reads the main job's
own students (the settings-keyed cache), so its numbers are the showdown's; a lesson run first leaves them for
the main job."""

import json

import pytest

from lessons import kit
from minikd.machinery import pipeline, students
from minikd.machinery.stages import get_profile


@pytest.mark.slow
def test_a_lesson_reads_the_showdowns_own_students_and_leaves_new_ones_for_it(runs_tmp, monkeypatch, capsys):
    profile = get_profile("quick")
    pipeline.main(["--quick", "--device", "cpu"])  # the main job (cached when another test ran it)
    results = json.loads((runs_tmp / "quick" / "results.json").read_text())
    trained = []
    real_job = students.student_job
    monkeypatch.setattr(students, "student_job", lambda profile, job, device="cpu": trained.append(job["name"])
                        or real_job(profile, job, device))
    got = kit.showdown_students(profile, pipeline.DEFAULT_METHODS, results["seeds"], device="cpu")
    assert trained == []  # every one is the main job's, read back by its settings key
    for (method, seed), got_one in got.items():
        assert got_one["metrics"] == results["students"][f"{method}-seed{seed}"]["metrics"]  # the showdown's numbers
        assert got_one["model"] is None  # not asked for
    # a lesson before the main job: a student the main job has not trained is trained once, then the main job's
    # own stage reads it (the same settings key) instead of training it again
    fresh = kit.showdown_students(profile, ["gt"], [7], device="cpu")
    assert trained == [f"gt-seed7-{profile.student_steps}steps"]
    tok = pipeline.Tokenizer.default()
    teacher, _ = pipeline.get_teacher(profile)
    kept = pipeline.teacher_data(profile, teacher, tok, {})
    ctx = students.Context(profile=profile, kept=kept, pools=students.pool_fingerprints(
        kept, pipeline.load_split("train", profile, tok)), teacher_id=pipeline.teacher_fingerprint(teacher),
        device="cpu/fp32", stores={})
    runs, _, _, _ = pipeline.run_students(ctx, [7], "cpu", {}, methods=["gt"])
    assert trained == [f"gt-seed7-{profile.student_steps}steps"]  # not trained again
    assert runs[("gt", 7)]["metrics"] == fresh[("gt", 7)]["metrics"]
    # the model itself (lesson 6 reads its KL per prompt): saved with the result, the same student
    model = kit.showdown_students(profile, ["gt"], [7], device="cpu", models=True)[("gt", 7)]["model"]
    assert trained == [f"gt-seed7-{profile.student_steps}steps"] and model is not None
    assert pipeline.accuracy(model, tok, pipeline.load_split("test", profile, tok))["acc"] == \
        pytest.approx(fresh[("gt", 7)]["metrics"]["greedy_acc"])
    # a result cached without its weights (before they were kept) is trained again when the model is asked for
    (runs_tmp / "quick" / "students" / f"gt-seed7-{profile.student_steps}steps.pt").unlink()
    assert kit.showdown_students(profile, ["gt"], [7], device="cpu", models=True)[("gt", 7)]["model"] is not None
    assert trained == [f"gt-seed7-{profile.student_steps}steps"] * 2
    with pytest.raises(ValueError, match="not among the main job's methods"):
        kit.showdown_students(profile, ["seq_inter"], [0], device="cpu")
