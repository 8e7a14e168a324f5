"""Lessons 15 (the teacher over HTTP) and 16 (another tokenizer, and ULD), each run once as a notebook in fast mode;
and lesson 16's step 6 moves every batch from `collate` to the model's device (issue 23: a GPU student)."""

import ast
import re
from pathlib import Path

import pytest
import torch

from lesson_checks import ROOT, check_claims, check_units, run_lesson


@pytest.mark.slow
def test_lesson15_teacher_over_http(tmp_path):
    run = run_lesson("l15_teacher_over_http", tmp_path)
    assert "OpenAI-style completions" in run.text and "Check yourself" in run.text
    check_claims(run["claims"], run.text)
    assert [c.verdict for c in run["claims"]] == ["holds"]  # byte for byte, even in fast mode


@pytest.mark.slow
def test_lesson16_another_tokenizer(tmp_path):
    run = run_lesson("l16_another_tokenizer", tmp_path)
    text, table = run.text, run["table"]
    assert len(run["seeds"]) == 2 and len(run["kept"]) > 0
    assert set(table) == set(run["METHODS"])
    assert all(0.0 <= v <= 1.0 for row in table.values() for v in row.values())
    # both tokenizations drawn, the refusal printed
    assert text.count("loss is computed here") >= 2 and "word-level KD needs one tokenizer" in text
    assert "teacher's sorted top 3" in text and "Check yourself" in text
    # every conclusion is a verdict, printed as it was decided; the exact facts hold even in --fast
    check_claims(run["claims"], text)
    check_units(run["claims"])  # methods over training seeds: 2 seeds in --fast decide none of them
    assert all(c.over == "seeds" and c.verdict == "needs the default run" for c in run["claims"] if c.diff is not None)
    facts = [c for c in run["claims"] if c.diff is None]
    assert len(facts) == 3 and all(c.verdict == "holds" for c in facts), [c.sentence() for c in facts]


def which_token():
    """Lesson 16's which_token, compiled from its source alone (the lesson's other cells are not run)."""
    tree = ast.parse((ROOT / "lessons" / "l16_another_tokenizer.py").read_text())
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "which_token")
    from minikd.data import collate
    from minikd.losses import masked_nll
    from minikd.uld import aligned_rows, teacher_rows, uld_distance
    from minikd.verdict import check
    ns = {"torch": torch, "collate": collate, "masked_nll": masked_nll, "aligned_rows": aligned_rows,
          "teacher_rows": teacher_rows, "uld_distance": uld_distance, "check": check}
    exec(compile(ast.Module([fn], []), "l16_another_tokenizer.py", "exec"), ns)
    return ns["which_token"]


class OnDevice(torch.nn.Module):
    """A CPU model that says it lives on the 'meta' device and refuses any input that is not there: a stand-in
    for a GPU student, so a CPU batch fed to it fails here as it would on CUDA or MPS."""

    def __init__(self, vocab: int):
        super().__init__()
        self.vocab = vocab
        self.anchor = torch.nn.Parameter(torch.zeros(1, device="meta"))

    def forward(self, ids):
        assert ids.device.type == "meta", f"a batch on {ids.device} reached a model on meta"
        return torch.zeros(*ids.shape, self.vocab, device="meta")


class Reached(Exception):
    """Raised by the stub pairing: the batch got past the model; the test stops there (meta tensors hold no values)."""


def test_lesson16_moves_every_batch_to_the_models_device(monkeypatch):
    """Issue 23's break: step 6 fed `collate`'s CPU batch to a student that may be on a GPU."""
    from minikd.tokenizer import Tokenizer
    tok = Tokenizer.second()
    ids, mask = tok.render("What is 1 + 2?", "3")
    fn, seen = which_token(), []

    def pairing(logits, targets, rows):
        seen.extend([logits.device, targets.device])
        raise Reached

    monkeypatch.setitem(fn.__globals__, "aligned_rows", pairing)
    with pytest.raises(Reached):
        fn(OnDevice(tok.vocab_size), [{"ids": ids, "mask": mask}], {"offsets": [0, 2], "logprobs": torch.zeros(2, 4)},
           tok.pad_id, True)
    assert seen and all(d.type == "meta" for d in seen), "every tensor of the batch must be on the model's device"


def test_no_lesson_feeds_a_collate_batch_to_a_model_without_moving_it():
    """Grep level: in lessons/, the inputs of a batch from `collate(` (on the CPU) are used only through `.to(`
    (or for their size): `batch = collate(...)` then `model(batch["inputs"])` is the bug, on any GPU."""
    bad = []
    for path in sorted((ROOT / "lessons").glob("l*.py")):
        lines = path.read_text().splitlines()
        batches = {m.group(1) for line in lines for m in [re.match(r"\s*(\w+)\s*=\s*collate\(", line)] if m}
        for i, line in enumerate(lines, 1):
            for b in batches:
                if re.search(rf"\b{b}\[\"inputs\"\](?!\.to\(|\.size\(|\.shape)", line):
                    bad.append(f"{path.name}:{i}: {line.strip()}")
    assert not bad, "a CPU batch reaches a model:\n" + "\n".join(bad)
