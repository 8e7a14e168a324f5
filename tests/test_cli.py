"""`minikd` on the command line: --help everywhere, one-line errors, and the offline pipeline by hand
(generate -> filter -> train -> eval), where the student step never reads the teacher."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import minikd.generate
from minikd.machinery.cli import main
from cli_run import run
from minikd.data import SFTData, read_jsonl, read_meta, write_jsonl
from minikd.machinery.labelling import filter_dataset, generate_dataset
from minikd.model import GPT, get_config
from minikd.tokenizer import Tokenizer
from minikd.train import load_checkpoint, load_model, save_checkpoint
from test_jobs import PROMPTS, TABLE, MixtureLM

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--preset", "tiny", "--profile", "quick"]


@pytest.fixture(scope="module")
def tok():
    return Tokenizer.default()


@pytest.fixture
def teacher_ckpt(tmp_path, tok):
    torch.manual_seed(0)
    path = tmp_path / "teacher.pt"
    save_checkpoint(path, GPT(get_config("tiny", vocab_size=tok.vocab_size)), step=5, fingerprint=tok.fingerprint)
    return path


@pytest.mark.parametrize("command", [None, "generate", "filter", "train", "eval", "run", "bench"])
def test_every_command_has_help(command, capsys):
    status, out, _ = run(([command] if command else []) + ["--help"], capsys)
    assert status == 0 and "usage: minikd" in out
    if command is None:
        assert all(c in out for c in ("generate", "filter", "train", "eval", "run", "bench"))


def test_python_dash_m_minikd_help():
    proc = subprocess.run([sys.executable, "-m", "minikd", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and "generate" in proc.stdout


def test_no_command_means_run(monkeypatch):
    import minikd.machinery.pipeline
    seen = []
    monkeypatch.setattr(minikd.machinery.pipeline, "main", lambda argv: seen.append(argv))
    main([])
    main(["--quick"])
    assert seen == [[], ["--quick"]]


@pytest.mark.parametrize("argv, message", [
    (["train", "--objective", "gt", "--data", "nowhere.jsonl", "--out", "x.pt"], "dataset nowhere.jsonl: no such file"),
    (["train", "--objective", "seqkd", "--out", "x.pt"], "pass --data"),
    (["eval", "--model", "nowhere.pt"], "checkpoint nowhere.pt: no such file"),
    (["generate", "--teacher", "nowhere.pt", "--out", "x.jsonl"], "lessons.l05_train_teacher"),
    (["filter", "--data", "nowhere.jsonl", "--out", "x.jsonl"], "no such file"),
    (["eval", "--model", "nowhere.pt", "--threads", "0"], "--threads must be >= 1"),
])
def test_errors_are_one_line_with_exit_status_2(argv, message, capsys):
    status, _, err = run(argv, capsys)
    assert status == 2
    assert err.startswith(f"minikd {argv[0]}: error: ") and message in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_dataset_and_checkpoint_errors_name_the_problem(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "What is 1 + 1?", "completion": "2"}\n{"prompt": oops}\n')
    status, _, err = run(["train", "--objective", "gt", "--data", str(bad), "--out", str(tmp_path / "s.pt")] + TINY,
                         capsys)
    assert status == 2 and "bad.jsonl:2: invalid JSON" in err
    notackpt = tmp_path / "model.pt"
    notackpt.write_text("not a checkpoint")
    status, _, err = run(["eval", "--model", str(notackpt)], capsys)
    assert status == 2 and "not a readable checkpoint" in err


def test_generate_flags_cut_off_answers_and_training_refuses_them(tmp_path, teacher_ckpt, capsys):
    raw = tmp_path / "raw.jsonl"
    status, out, _ = run(["generate", "--teacher", str(teacher_ckpt), "--out", str(raw), "--limit", "6",
                          "--max-new-tokens", "4", "--device", "cpu", "--threads", "1"], capsys)
    assert status == 0 and "generate (greedy) done: 6 prompts" in out, "a progress line"
    records = list(read_jsonl(raw))
    assert len(records) == 6 and not any(r["ended"] for r in records), "an untrained tiny teacher never stops"
    assert read_meta(raw)["teacher_checkpoint"] == {"path": str(teacher_ckpt), "step": 5}

    status, _, err = run(["train", "--objective", "seqkd", "--data", str(raw), "--out", str(tmp_path / "s.pt")] + TINY,
                         capsys)
    assert status == 2 and "raw.jsonl:1: field 'ended'" in err and "Filter" in err

    kept = tmp_path / "kept.jsonl"
    status, out, _ = run(["filter", "--data", str(raw), "--out", str(kept), "--no-verify"], capsys)
    assert status == 0 and "dropped: truncated" in out
    status, _, err = run(["train", "--objective", "seqkd", "--data", str(kept), "--out", str(tmp_path / "s.pt")] + TINY,
                         capsys)
    assert status == 2 and "holds no records" in err


def test_generate_shards_then_merge(tmp_path, teacher_ckpt, capsys):
    out = tmp_path / "g.jsonl"
    common = ["generate", "--teacher", str(teacher_ckpt), "--out", str(out), "--limit", "5", "--max-new-tokens", "3",
              "--device", "cpu", "--world-size", "2"]
    for rank in ("0", "1"):
        status, text, _ = run(common + ["--rank", rank], capsys)
        assert status == 0 and "minikd generate --merge" in text
    status, _, _ = run(common + ["--merge"], capsys)
    assert status == 0
    assert [r["prompt_index"] for r in read_jsonl(out)] == [0, 1, 2, 3, 4]


def _no_teacher(*args, **kwargs):
    raise AssertionError("student SFT on stored data must not load a checkpoint or run a teacher")


def test_seqkd_training_reads_the_file_only(tmp_path, tok, monkeypatch, capsys):
    """Offline sequence-level KD, step 4: the teacher is never constructed or read while the student trains."""
    raw = generate_dataset(MixtureLM(tok, TABLE), tok, PROMPTS, tmp_path / "teacher_greedy.jsonl", max_new_tokens=12)
    data = tmp_path / "seq.jsonl"
    filter_dataset(raw, data, tok, 128, verify=False)
    monkeypatch.setenv("MINIKD_RUNS", str(tmp_path / "empty_runs"))  # no cached teacher anywhere
    monkeypatch.setattr(torch, "load", _no_teacher)
    monkeypatch.setattr(minikd.generate, "generate", _no_teacher)
    student = tmp_path / "student.pt"
    status, out, err = run(["train", "--objective", "seqkd", "--data", str(data), "--out", str(student),
                            "--steps", "3", "--device", "cpu"] + TINY, capsys)
    assert status == 0, err
    assert "step     3/3" in out and "saved" in out
    monkeypatch.undo()
    model, ckpt = load_model(student, tok)
    assert ckpt["step"] == 3 and ckpt["meta"]["objective"] == "seqkd"
    assert not (tmp_path / "empty_runs" / "default" / "teacher.pt").exists()


def test_train_gt_then_eval(tmp_path, capsys):
    data = tmp_path / "gt.jsonl"
    write_jsonl(data, list(read_jsonl(ROOT / "data" / "train.jsonl"))[:32])
    student = tmp_path / "student.pt"
    status, out, _ = run(["train", "--objective", "gt", "--data", str(data), "--out", str(student), "--steps", "2",
                          "--device", "cpu"] + TINY, capsys)
    assert status == 0 and student.exists()
    preds = tmp_path / "preds.jsonl"
    status, out, _ = run(["eval", "--model", str(student), "--data", str(ROOT / "data" / "test.jsonl"), "--limit",
                          "4", "--chunk", "2", "--out", str(preds), "--device", "cpu"], capsys)
    assert status == 0 and "accuracy" in out and "eval (greedy) done: 4 prompts" in out
    rows = list(read_jsonl(preds))
    assert len(rows) == 4 and all(set(r) >= {"prompt", "completion", "correct", "ended"} for r in rows)


def test_train_wordkd_needs_and_uses_the_teacher(tmp_path, teacher_ckpt, capsys):
    status, _, err = run(["train", "--objective", "gt", "--teacher", str(teacher_ckpt), "--out", "x.pt"], capsys)
    assert status == 2 and "only used by --objective wordkd" in err
    student = tmp_path / "s.pt"
    status, out, err = run(["train", "--objective", "wordkd", "--teacher", str(teacher_ckpt), "--out", str(student),
                            "--steps", "2", "--limit", "16", "--device", "cpu"] + TINY, capsys)
    assert status == 0, err
    meta = torch.load(student, weights_only=True)["meta"]
    assert meta["objective"] == "wordkd" and meta["teacher"] == str(teacher_ckpt)


def test_train_resumes_its_checkpoint_and_refuses_one_of_other_settings(tmp_path, monkeypatch, capsys):
    """`minikd train` killed part-way and started again with the same arguments continues from its last
    checkpoint and ends with the weights of a run that never stopped. The same --out with other settings
    is one line naming the file and what differs; --overwrite starts over."""
    data = tmp_path / "gt.jsonl"
    write_jsonl(data, list(read_jsonl(ROOT / "data" / "train.jsonl"))[:32])
    argv = ["train", "--objective", "gt", "--data", str(data), "--steps", "4", "--device", "cpu"] + TINY
    straight, student = tmp_path / "straight.pt", tmp_path / "student.pt"
    assert run(argv + ["--out", str(straight)], capsys)[0] == 0

    get_batch = SFTData.get_batch

    def killed_at_step_3(self, step):  # the process dies while fetching the 4th batch
        if step == 3:
            raise KeyboardInterrupt
        return get_batch(self, step)
    monkeypatch.setattr(SFTData, "get_batch", killed_at_step_3)
    assert run(argv + ["--out", str(student)], capsys)[0] == 130
    assert load_checkpoint(student)["step"] == 3
    monkeypatch.undo()

    status, out, err = run(argv + ["--out", str(student)], capsys)
    assert status == 0, err
    assert f"resumed from {student} at step 3 of 4" in out and "step     4/4" in out
    want, got = load_model(straight)[0].state_dict(), load_model(student)[0].state_dict()
    assert all(torch.equal(want[k], got[k]) for k in want), "resumed weights differ from the uninterrupted run's"

    status, _, err = run(argv + ["--out", str(student), "--seed", "1"], capsys)
    assert status == 2 and err.count("\n") == 1
    assert f"{student}: made by a run with other settings (seed: checkpoint 0 vs now 1); pass --overwrite" in err
    status, out, err = run(argv + ["--out", str(student), "--seed", "1", "--overwrite"], capsys)
    assert status == 0 and "resumed" not in out, err
    assert load_checkpoint(student)["meta"]["train_config"]["seed"] == 1
