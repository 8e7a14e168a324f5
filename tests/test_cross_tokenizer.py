"""A student with its own tokenizer: the second shipped tokenizer, word-level KD refused by fingerprint (never
by vocabulary size), and the stored (s, u) file that trains such a student with the teacher checkpoint gone."""

import json

import pytest
import torch

from cli_run import run
from minikd.data import read_jsonl, read_meta
from minikd.machinery.labelling import filter_dataset, generate_dataset, teacher_fingerprint
from minikd.model import GPT, get_config
from minikd.machinery.stages import get_profile, train_model
from minikd.seqkd import as_examples
from minikd.tokenizer import ROOT, SECOND_PATH, SECOND_PATTERN, Tokenizer, corpus_from_jsonl
from minikd.train import load_model, save_checkpoint
from minikd.word_kd import TokenizerMismatch, check_same_tokenizer, word_kd_objective

TINY = ["--preset", "tiny", "--profile", "quick"]


# --- the second tokenizer ------------------------------------------------------------------------------


def test_second_tokenizer_is_shipped_and_rebuilds_the_same():
    """Deterministic: retrained from the corpus its sidecar records, the same fingerprint comes out."""
    info = json.loads(SECOND_PATH.with_suffix(".json").read_text())
    second, first = Tokenizer.second(), Tokenizer.default()
    assert info["pattern"] == SECOND_PATTERN and second.pattern != first.pattern
    text = corpus_from_jsonl([ROOT / f for f in info["corpus"]])
    assert Tokenizer.train(text, info["requested_ranks"], SECOND_PATTERN).fingerprint == second.fingerprint
    assert second.vocab_size != first.vocab_size and second.fingerprint != first.fingerprint
    answer = "Sorted: 1 2 3. Sum: 97."
    assert second.decode(second.encode(answer)) == answer
    assert second.encode(answer) != first.encode(answer)  # the same text, other ids


# --- word-level KD refused by fingerprint ---------------------------------------------------------------


def test_word_kd_refuses_two_tokenizers_naming_both():
    first, second = Tokenizer.default(), Tokenizer.second()
    with pytest.raises(TokenizerMismatch) as e:
        check_same_tokenizer(first, second)
    for t in (first, second):
        assert t.fingerprint in str(e.value) and t.name in str(e.value)
    check_same_tokenizer(first, Tokenizer.load(ROOT / "data" / "tokenizer.tiktoken"))  # same tokenizer: fine
    teacher = GPT(get_config("tiny", vocab_size=first.vocab_size))
    with pytest.raises(TokenizerMismatch, match="word-level KD needs one tokenizer"):
        word_kd_objective(teacher, tokenizers=(first, second))


def test_same_size_different_merges_is_refused():
    """Two tokenizers of the SAME vocabulary size, trained on different text: other merges, other ids for the
    same text. A check by size would let word-level KD compare unrelated tokens; the fingerprint refuses."""
    a = Tokenizer.train("the cat sat on the mat " * 20, 262)
    b = Tokenizer.train("a dog ran to a log " * 20, 262)
    assert a.vocab_size == b.vocab_size and a.fingerprint != b.fingerprint
    assert a.encode("the cat") != b.encode("the cat")
    with pytest.raises(TokenizerMismatch) as e:
        check_same_tokenizer(a, b)
    assert a.fingerprint in str(e.value) and b.fingerprint in str(e.value)
    with pytest.raises(TokenizerMismatch):
        check_same_tokenizer(a.fingerprint, b)  # a checkpoint records only the fingerprint


def test_cli_wordkd_with_a_teacher_of_another_tokenizer(tmp_path, capsys):
    first = Tokenizer.default()
    ckpt = tmp_path / "teacher.pt"
    save_checkpoint(ckpt, GPT(get_config("tiny", vocab_size=first.vocab_size)), step=1, fingerprint=first.fingerprint)
    status, _, err = run(["train", "--objective", "wordkd", "--tokenizer", str(SECOND_PATH), "--teacher", str(ckpt),
                          "--out", str(tmp_path / "s.pt"), "--steps", "1", "--limit", "8", *TINY], capsys)
    assert status == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "word-level KD needs one tokenizer" in err
    assert first.fingerprint in err and Tokenizer.second().fingerprint in err and "tokenizer2.tiktoken" in err
    assert not (tmp_path / "s.pt").exists()


def test_cli_missing_tokenizer_file(tmp_path, capsys):
    status, _, err = run(["train", "--objective", "gt", "--tokenizer", str(tmp_path / "nope.tiktoken"),
                          "--out", str(tmp_path / "s.pt"), *TINY], capsys)
    assert status == 2 and "nope.tiktoken" in err and "Traceback" not in err


# --- the dataset stands alone ---------------------------------------------------------------------------


PROMPTS = [{"id": f"p{i}", "task": "sort", "prompt": f"Sort {a} {b} {c}.", "answer": " ".join(sorted(f"{a}{b}{c}"))}
           for i, (a, b, c) in enumerate([(3, 1, 2), (5, 4, 6), (9, 7, 8), (2, 8, 1), (6, 3, 5), (4, 9, 7)])]


def test_the_stored_file_trains_a_student_of_another_tokenizer_without_the_teacher(tmp_path, capsys):
    """u = teacher(s) stored as text (prompt, completion, source; the sidecar: decoding settings and the
    teacher's fingerprints); the teacher checkpoint is deleted; `minikd train --tokenizer` trains from it."""
    tok, second = Tokenizer.default(), Tokenizer.second()
    labelled = [{**r, "completion": r["answer"]} for r in PROMPTS]
    ckpt = tmp_path / "teacher.pt"
    teacher, _ = train_model(get_config("tiny", vocab_size=tok.vocab_size), as_examples(labelled, tok), 60,
                             get_profile("quick"), lr=1e-2, seed=0, tok=tok, log_every=0)
    save_checkpoint(ckpt, teacher, step=60, fingerprint=tok.fingerprint)
    raw = generate_dataset(teacher, tok, PROMPTS, tmp_path / "seq.jsonl", max_new_tokens=12, teacher_ckpt=ckpt)
    data = tmp_path / "seq.filtered.jsonl"
    filter_dataset(raw, data, tok, block_size=128, verify=False)  # drops a cut-off answer, if any
    weights = teacher_fingerprint(teacher)
    ckpt.unlink()
    del teacher

    records, meta = list(read_jsonl(data)), read_meta(data)
    assert records and all(r["ended"] for r in records)
    for r in records:  # the prompt/completion convention (TRL's SFTTrainer reads these two fields): plain text
        assert isinstance(r["prompt"], str) and isinstance(r["completion"], str) and r["source"] == "teacher"
        assert "<|" not in r["prompt"] + r["completion"]
        assert all(not isinstance(v, list) for v in r.values()), "no token ids: text only"
        # every record says how it was made: the decoding settings and the teacher's fingerprint
        assert r["decoding"] == {"method": "greedy", "seed": None, "max_new_tokens": 12} and r["teacher"] == weights
    assert meta["settings"]["method"] == "greedy" and meta["settings"]["max_new_tokens"] == 12
    assert meta["settings"]["teacher"] == weights and meta["teacher_tokenizer"] == tok.fingerprint
    assert "tokenizer" not in meta  # so a student of ANOTHER tokenizer may read it

    out = tmp_path / "student.pt"
    status, text, err = run(["train", "--objective", "seqkd", "--tokenizer", str(SECOND_PATH), "--data", str(data),
                             "--out", str(out), "--steps", "3", *TINY], capsys)
    assert status == 0, err
    student, saved = load_model(out, second)  # refuses a checkpoint of another tokenizer
    assert saved["tokenizer"] == second.fingerprint and student.config.vocab_size == second.vocab_size
    assert torch.isfinite(torch.tensor([h["loss"] for h in saved["history"]])).all()
    status, text, err = run(["eval", "--model", str(out), "--tokenizer", str(SECOND_PATH), "--data", str(data),
                             "--limit", "2", "--device", "cpu"], capsys)
    assert status == 0 and "accuracy" in text, err
    status, text, err = run(["eval", "--model", str(out), "--data", str(data), "--limit", "2"], capsys)
    assert status == 2 and "tokenizer" in err  # the shipped tokenizer is not this student's: a clear error
