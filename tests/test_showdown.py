"""The main job on its quick profile, through lesson 9: every stage runs, the table is written, the
second run reuses every cached stage, and the README block is replaced only between its markers."""

import pytest

from lessons import l09_showdown
from minikd import showdown


@pytest.mark.slow
def test_showdown_quick_runs_end_to_end_and_caches(runs_tmp, capsys):
    verdicts = l09_showdown.main(["--fast"])
    assert set(verdicts) == {"greedy_close_to_beam", "seq_beats_word", "teacher_data_likely", "combination_best"}
    out = capsys.readouterr().out
    table = (runs_tmp / "quick" / "results.md").read_text()
    for method in showdown.METHODS + ["teacher (reference)"]:
        assert f"| {method} |" in table
    l09_showdown.main(["--fast"])  # everything is cached now
    again = capsys.readouterr().out
    assert "loaded cached" in again and "cached (" in again
    assert "training 6 student(s)" in out and "student(s)" not in again


def test_readme_block_is_replaced_between_markers_only(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{showdown.README_START}\nold\n{showdown.README_END}\noutro\n")
    assert showdown.update_readme("| new |", readme)
    assert readme.read_text() == f"intro\n{showdown.README_START}\n| new |\n{showdown.README_END}\noutro\n"
    plain = tmp_path / "other.md"
    plain.write_text("no markers")
    assert not showdown.update_readme("x", plain)


@pytest.mark.slow
def test_parallel_stages_give_the_same_results_as_one_process(runs_tmp):
    """--jobs 2 splits generation into shards and trains students in worker processes; with the same
    thread count (1, as the tests run) that changes where the work runs, not its numbers."""
    from minikd.data import read_jsonl
    from minikd.pipeline import get_profile, get_teacher, load_split
    from minikd.tokenizer import Tokenizer

    l09_showdown.main(["--fast"])  # the quick run (default jobs), or its cache
    profile, tok = get_profile("quick"), Tokenizer.default()
    teacher, _ = get_teacher(profile)
    kept = showdown.teacher_data(profile, teacher, tok, load_split("train", profile, tok), {}, jobs=1)
    merged = list(read_jsonl(showdown.data_paths(profile)["greedy"]))
    assert [r["prompt_index"] for r in merged] == list(range(len(merged)))

    settings = {"what": "a test run"}
    in_process = showdown.train_student(profile, "seq_kd", 0, kept, settings)
    with showdown.worker_pool(1) as pool:
        in_worker = pool.submit(showdown.train_student, profile, "seq_kd", 0, kept, settings).result()
    for key in ("greedy_acc", "beam_acc", "own_logprob", "nll_gt", "nll_teacher_data"):
        assert in_worker["metrics"][key] == in_process["metrics"][key], key


def test_jobs_must_be_positive():
    with pytest.raises(SystemExit):
        showdown.main(["--quick", "--jobs", "0"])


@pytest.mark.slow
def test_a_cached_student_is_retrained_when_the_teacher_changes(runs_tmp, monkeypatch):
    """The student cache is keyed on the teacher too: a retrained teacher means new teacher data and a new
    NLL-on-teacher-data column, so no old student result may be reused."""
    from minikd.pipeline import get_profile, get_teacher, load_split
    from minikd.tokenizer import Tokenizer

    l09_showdown.main(["--fast"])  # every quick student cached for this teacher
    profile, tok = get_profile("quick"), Tokenizer.default()
    teacher, _ = get_teacher(profile)
    train_set = load_split("train", profile, tok)
    kept = showdown.teacher_data(profile, teacher, tok, train_set, {}, jobs=1)
    n_train = len(train_set)
    trained = []
    monkeypatch.setattr(showdown, "train_student", lambda profile, method, seed, *rest: trained.append(method) or {})
    same = showdown.run_students(profile, kept, n_train, showdown.teacher_fingerprint(teacher), [0], "cpu", {})
    assert trained == [] and len(same) == len(showdown.METHODS)
    showdown.run_students(profile, kept, n_train, "another teacher", [0], "cpu", {})
    assert sorted(trained) == sorted(showdown.METHODS)
