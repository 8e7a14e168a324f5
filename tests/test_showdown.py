"""The main job on its quick profile, through lesson 10: every stage runs, results.json holds per-seed,
per-family, per-step numbers, the verdicts are printed, the second run reuses every cached stage, the
repository is never written to, and `minikd readme` replaces the README block only between its markers."""

import json
import re

import pytest

from lesson_checks import run_lesson
from minikd.machinery import rendering
from minikd.machinery import stages
from minikd.machinery import pipeline
from minikd.machinery import students
from minikd.runtime import ROOT
from minikd.machinery.stages import Profile, get_profile


@pytest.mark.slow
def test_showdown_quick_runs_end_to_end_caches_and_leaves_the_repo_alone(runs_tmp, tmp_path, capsys):
    readme_before = (ROOT / "README.md").read_bytes()
    run = run_lesson("l10_showdown", tmp_path)  # lesson 10 as a notebook: the main job, --quick
    out = run.text
    assert any("sequence-level KD beats the ground-truth student" in c.text for c in run["said"])
    assert all(c.sentence() in out and c.fast for c in run["said"])
    assert "[" in out and "95 % CI" in out  # the verdict sentences were printed with their intervals
    results = json.loads((runs_tmp / "quick" / "results.json").read_text())
    assert results["seeds"] == [0, 1, 2]  # three seeds by default
    assert results["methods"] == pipeline.DEFAULT_METHODS  # the default run: no beam-based methods
    for method in pipeline.DEFAULT_METHODS:
        for seed in results["seeds"]:
            m = results["students"][f"{method}-seed{seed}"]["metrics"]
            assert set(m["acc_by_task"]) == set(results["teacher"]["acc_by_task"])  # per family
            steps = [p["step"] for p in m["curve"]]  # per step
            assert steps[-1] == results["steps"] and len(steps) == get_profile("quick").curve_points
            assert m["curve"][-1]["acc"] == m["greedy_acc"]  # the last curve point is the final accuracy
    table = (runs_tmp / "quick" / "results.md").read_text()
    for method in pipeline.DEFAULT_METHODS + ["teacher (reference)"]:
        assert f"| {method} |" in table
    assert "| ground truth labels (train) |" in table and "95 % CI" in table

    pipeline.main(["--quick", "--device", "cpu"])  # everything is cached now
    again = capsys.readouterr().out
    assert "loaded cached" in again and not re.search(r"training [1-9]\d* student", again)
    assert (ROOT / "README.md").read_bytes() == readme_before  # the main job writes under runs/ only


def test_readme_block_is_replaced_between_markers_only(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{rendering.README_START}\nold\n{rendering.README_END}\noutro\n")
    assert rendering.update_readme("| new |", readme)
    assert readme.read_text() == f"intro\n{rendering.README_START}\n| new |\n{rendering.README_END}\noutro\n"
    plain = tmp_path / "other.md"
    plain.write_text("no markers")
    assert not rendering.update_readme("x", plain)


@pytest.mark.slow
def test_minikd_readme_writes_the_last_runs_results(runs_tmp, tmp_path, capsys):
    pipeline.main(["--quick", "--device", "cpu"])  # the quick run, or its cache
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{rendering.README_START}\nOLD BLOCK\n{rendering.README_END}\n"
                      f"{rendering.LESSONS_START}\nOLD LESSONS\n{rendering.LESSONS_END}\n")
    rendering.main(["--profile", "quick", "--readme", str(readme)])
    text = readme.read_text()
    results = rendering.load_results("quick")
    assert rendering.render(results) in text and "OLD BLOCK" not in text
    assert rendering.render_lessons("quick") in text and "OLD LESSONS" not in text
    (tmp_path / "none.md").write_text("no markers here")
    with pytest.raises(ValueError, match="markers"):
        rendering.main(["--profile", "quick", "--readme", str(tmp_path / "none.md")])


# A smaller profile than --quick for the 2-rank test, which runs the whole job twice: a teacher just good
# enough that some of its answers end (the filter keeps some), students of 4 steps, 8 test prompts.
MICRO = Profile(name="micro", teacher_preset="tiny", student_preset="tiny", teacher_overrides=(("n_embd", 32),),
                teacher_steps=40, student_steps=4, batch_size=16, teacher_lr=1e-2, n_train=48, n_unlabelled=8,
                n_test=8, n_heldout=4, n_val=8, curve_points=1)


def without_how_it_ran(x):
    """results.json minus what depends on how the job was spread: times, world size, what each rank did, the command."""
    if isinstance(x, dict):
        return {k: without_how_it_ran(v) for k, v in x.items()
                if k not in ("times", "jobs", "world_size", "ranks", "command") and "seconds" not in k}
    return [without_how_it_ran(v) for v in x] if isinstance(x, list) else x


@pytest.mark.slow
def test_the_main_job_on_two_ranks_writes_the_results_of_one_process(tmp_path, monkeypatch):
    """`minikd --jobs 2` starts 2 ranks of torch.distributed itself (gloo; the rank code torchrun runs):
    rank 0 trains the teacher, each rank labels a shard, the students are spread over the ranks. With one
    thread per process (as the tests run) that changes where the work runs, not one number of results.json."""
    monkeypatch.setitem(stages.PROFILES, "micro", MICRO)
    results = {}
    for jobs in (1, 2):
        monkeypatch.setenv("MINIKD_RUNS", str(tmp_path / f"runs{jobs}"))
        results[jobs] = pipeline.main(["--profile", "micro", "--jobs", str(jobs), "--device", "cpu"])
    one, two = results[1], results[2]
    assert (one["world_size"], two["world_size"]) == (1, 2) and set(two["ranks"]) == {"0", "1"}
    assert two["ranks"]["0"][0] == "teacher" and any(d.startswith("generate: prompts 1,") for d in two["ranks"]["1"])
    assert any(d.startswith("students: ") for d in two["ranks"]["1"])  # rank 1 trained some students
    assert without_how_it_ran(two) == without_how_it_ran(one)
    assert (tmp_path / "runs1" / "micro" / "teacher_greedy.jsonl").read_bytes() == \
        (tmp_path / "runs2" / "micro" / "teacher_greedy.jsonl").read_bytes()  # the merged shards: the same file


def test_bad_options_are_clear_errors():
    for bad in (["--jobs", "0"], ["--seeds", "0"], ["--plateau", "1"]):
        with pytest.raises(SystemExit):
            pipeline.main(["--quick"] + bad)


@pytest.mark.slow
def test_a_cached_student_is_retrained_when_the_teacher_changes(runs_tmp, monkeypatch):
    """The student cache is keyed on the teacher too: a retrained teacher means new teacher data and a new
    NLL-on-teacher-data column, so no old student result may be reused."""
    from minikd.machinery.stages import get_profile, get_teacher, load_split
    from minikd.tokenizer import Tokenizer

    pipeline.main(["--quick", "--device", "cpu"])  # every quick student cached for this teacher
    profile, tok = get_profile("quick"), Tokenizer.default()
    teacher, _ = get_teacher(profile)
    kept = pipeline.teacher_data(profile, teacher, tok, {})
    teacher_id = pipeline.teacher_fingerprint(teacher)
    pools = students.pool_fingerprints(kept, load_split("train", profile, tok))
    ctx = students.Context(profile=profile, kept=kept, pools=pools, teacher_id=teacher_id, device="cpu/fp32",
                           stores=students.build_stores(profile, teacher, tok, kept, teacher_id, {}))
    results = json.loads((runs_tmp / "quick" / "results.json").read_text())
    trained = []
    monkeypatch.setattr(students, "student_job", lambda profile, job, device="cpu": trained.append(job["name"])
                        or {"settings": job["settings"], "metrics": {"val_acc": 0.0}})
    core = pipeline.DEFAULT_METHODS
    same, _, word_kd, _ = pipeline.run_students(ctx, [0], "cpu", {}, methods=core)
    assert trained == [] and len(same) == len(core) and word_kd == results["word_kd"]
    pipeline.run_students(students.Context(ctx, teacher_id="another teacher"), [0], "cpu", {}, methods=core)
    sweep = [f"word_kd-seed0-{profile.student_steps}steps-T{w['temperature']}-a{w['alpha']}" for w in students.WORD_KD_GRID]
    assert sorted(trained) == sorted([f"{m}-seed0-{profile.student_steps}steps" for m in core] + sweep)


@pytest.mark.slow
def test_full_mode_adds_the_beam_methods_and_the_plateau_runs(runs_tmp, capsys, monkeypatch):
    monkeypatch.setitem(stages.PROFILES, "micro", MICRO)  # every stage of --full, on the smallest settings
    results = pipeline.main(["--profile", "micro", "--seeds", "2", "--plateau", "2", "--jobs", "1"])  # --seeds: --full
    assert results["methods"] == pipeline.METHODS and results["plateau"] == {"factor": 2, "seeds": [0, 1]}
    for method in pipeline.METHODS:
        long = results["long"][f"{method}-seed1"]["metrics"]
        assert long["curve"][-1]["step"] == 2 * results["steps"]
    assert "teacher beam (train prompts)" in results["data"] and "seq-inter choice (train prompts)" in results["data"]
    texts = [c.text for c in rendering.claims(results)]
    assert any("seq-inter beats seq-KD" in t for t in texts) and any("with 2x the steps" in t for t in texts)
