"""The offline pipeline's jobs (minikd.machinery.labelling) and its core (minikd.seqkd): generation (resume after a kill,
shards), filtering and regeneration, seq-inter.

Most tests use MixtureLM, a "teacher" whose answers are a fixed table of strings with probabilities, so
greedy, beam and sampling results and their log-probs are known exactly (log 0.6, not "some number").
"""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from minikd.data import DatasetError, collate, load_sft, read_jsonl, read_meta, write_jsonl
from minikd.machinery.labelling import (filter_dataset, generate_dataset, load_teacher_data, merge_shards, report_path,
                         seq_inter_dataset, shard_path, teacher_fingerprint)
from minikd.losses import masked_nll
from minikd.model import GPT, GPTConfig, get_config
from minikd.seqkd import answer_distance, edit_distance, seq_inter_choice, sequence_logprobs
from minikd.tokenizer import Tokenizer
from minikd.train import save_checkpoint

ROOT = Path(__file__).resolve().parent.parent


class _History:
    """The 'KV cache' of MixtureLM: simply every row's tokens so far."""

    def __init__(self, batch_size):
        self.rows = [[] for _ in range(batch_size)]
        self.length = 0

    def reorder(self, index):
        self.rows = [list(self.rows[i]) for i in index.tolist()]


class MixtureLM(nn.Module):
    """p(answer | prompt) is a table {prompt: {answer: probability}}; the next-token distribution is exact:
    the probability mass of the table's answers that continue what was written so far (end token included).
    Off the table (an unknown prompt or prefix) it writes the end token."""

    def __init__(self, tok, table: dict, block_size: int = 64):
        super().__init__()
        self.config = GPTConfig(vocab_size=tok.vocab_size, block_size=block_size, n_layer=1, n_head=1, n_embd=1)
        self.anchor = nn.Parameter(torch.zeros(1))  # generate() asks the parameters for the device
        self.response_id, self.end_id = tok.response_id, tok.end_id
        self.table = {tuple(tok.render_prompt(p)): [(tok.encode(a) + [tok.end_id], w) for a, w in answers.items()]
                      for p, answers in table.items()}

    def new_cache(self, batch_size):
        return _History(batch_size)

    def _next(self, history: list[int]) -> torch.Tensor:
        mass = torch.zeros(self.config.vocab_size, dtype=torch.float64)
        if self.response_id in history:
            cut = history.index(self.response_id) + 1
            prompt, written = tuple(history[:cut]), history[cut:]
            for ids, w in self.table.get(prompt, []):
                if len(ids) > len(written) and ids[:len(written)] == written:
                    mass[ids[len(written)]] += w
        if mass.sum() == 0:
            mass[self.end_id] = 1.0
        return torch.where(mass > 0, (mass / mass.sum()).log(), torch.tensor(-1e4, dtype=torch.float64)).float()

    def forward(self, idx, cache=None):
        rows = cache.rows if cache is not None else [[] for _ in range(idx.size(0))]
        out = torch.empty(idx.size(0), idx.size(1), self.config.vocab_size)
        for b, new in enumerate(idx.tolist()):
            for t, token in enumerate(new):
                rows[b].append(token)
                out[b, t] = self._next(rows[b])
        if cache is not None:
            cache.length += idx.size(1)
        return out


TABLE = {
    "Sort 3 1 2.": {"2 1 3": 0.6, "1 2 3": 0.4},  # greedy is wrong; sampling finds the right one
    "Sort 5 4 6.": {"4 5 6": 0.7, "Sorted: 4 5 6.": 0.3},  # greedy right
    "Sort 9 7 8.": {"9 8 7": 1.0},  # always wrong: regeneration must fail
    "What is 2 + 3?": {"The answer is 5.": 1.0},  # right
    "What is 4 + 4?": {"1 1 1 1 1 1 1 1 1 1 1 1": 1.0},  # wrong and too long for max_new_tokens=12: cut off
}
PROMPTS = [{"id": f"p{i}", "task": "sort" if p.startswith("Sort") else "add", "prompt": p, "answer": "?"}
           for i, p in enumerate(TABLE)]


@pytest.fixture(scope="module")
def tok():
    return Tokenizer.default()


@pytest.fixture(scope="module")
def mix(tok):
    return MixtureLM(tok, TABLE)


def tiny_gpt(tok, seed=0):
    torch.manual_seed(seed)
    return GPT(get_config("tiny", vocab_size=tok.vocab_size)).eval()


def unlabelled(n):
    return list(read_jsonl(ROOT / "data" / "unlabelled.jsonl"))[:n]


# ---------------------------------------------------------------------------------------------------
# generate_dataset: the records, the sidecar
# ---------------------------------------------------------------------------------------------------


def test_generate_records_hold_the_teachers_answers_exactly(tmp_path, tok, mix):
    path = generate_dataset(mix, tok, PROMPTS, tmp_path / "g.jsonl", max_new_tokens=12)
    out = list(read_jsonl(path))
    assert [r["id"] for r in out] == [p["id"] for p in PROMPTS], "one record per prompt, in prompt order"
    assert [r["prompt_index"] for r in out] == list(range(len(PROMPTS)))
    assert [r["completion"] for r in out] == ["2 1 3", "4 5 6", "9 8 7", "The answer is 5.",
                                              "1 1 1 1 1 1 "], "greedy = the most likely answer, 12 tokens max"
    assert [r["ended"] for r in out] == [True, True, True, True, False], "the cut-off answer is flagged"
    assert out[0]["teacher_logprob"] == pytest.approx(math.log(0.6), abs=1e-5)
    assert out[1]["teacher_logprob"] == pytest.approx(math.log(0.7), abs=1e-5)
    assert out[4]["teacher_tokens"] == 12 and out[0]["teacher_tokens"] == 5
    assert all(r["source"] == "teacher" and r["task"] in ("sort", "add") and r["answer"] == "?" for r in out), \
        "the prompt record's fields are kept; source says who wrote the completion"


def test_generate_sidecar_records_settings_and_teacher_checkpoint(tmp_path, tok):
    model = tiny_gpt(tok)
    ckpt = tmp_path / "teacher.pt"
    save_checkpoint(ckpt, model, step=123, fingerprint=tok.fingerprint)
    path = generate_dataset(model, tok, unlabelled(6), tmp_path / "g.jsonl", max_new_tokens=4, teacher_ckpt=ckpt)
    meta = read_meta(path)
    assert meta["complete"] and meta["n_prompts"] == 6 and meta["n_records"] == 6
    assert meta["teacher_checkpoint"] == {"path": str(ckpt), "step": 123}
    assert meta["settings"]["method"] == "greedy" and meta["settings"]["max_new_tokens"] == 4
    assert meta["settings"]["teacher"] == teacher_fingerprint(model)
    assert meta["teacher_tokenizer"] == tok.fingerprint
    assert "tokenizer" not in meta, "text data: a student with another tokenizer may train on it"
    assert meta["teacher_config"]["n_embd"] == model.config.n_embd


def test_ground_truth_completion_is_kept_aside(tmp_path, tok, mix):
    labelled = [{**PROMPTS[0], "completion": "1 2 3", "source": "ground_truth", "label_noisy": False,
                 "form": "bare"}]
    rec = next(read_jsonl(generate_dataset(mix, tok, labelled, tmp_path / "g.jsonl", max_new_tokens=12)))
    assert rec["completion"] == "2 1 3" and rec["ground_truth"] == "1 2 3"
    assert "label_noisy" not in rec and "form" not in rec, "fields about the old completion do not describe u"


def test_bad_prompt_sets_are_clear_errors(tmp_path, tok, mix):
    with pytest.raises(ValueError, match="share the id 'p0'"):
        generate_dataset(mix, tok, [PROMPTS[0], PROMPTS[0]], tmp_path / "g.jsonl")
    with pytest.raises(ValueError, match="field 'prompt'"):
        generate_dataset(mix, tok, [{"id": "x"}], tmp_path / "g.jsonl")
    with pytest.raises(ValueError, match="rank"):
        generate_dataset(mix, tok, PROMPTS, tmp_path / "g.jsonl", rank=2, world_size=2)


# ---------------------------------------------------------------------------------------------------
# Resuming: a run stopped part-way ends exactly like a run that never stopped
# ---------------------------------------------------------------------------------------------------


def test_resume_after_stop_and_torn_line(tmp_path, tok, capsys):
    model, prompts = tiny_gpt(tok), unlabelled(20)
    kw = dict(max_new_tokens=5, chunk=4)
    want = list(read_jsonl(generate_dataset(model, tok, prompts, tmp_path / "full.jsonl", **kw)))

    out = tmp_path / "resumed.jsonl"
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(model, tok, prompts, out, stop_after=6, **kw)
    lines = out.read_text().splitlines()
    assert len(lines) == 8, "stopped after the chunk holding the 6th record (chunks of 4)"
    with open(out, "a") as f:
        f.write('{"id": "unlabelled-000')  # a kill in the middle of writing a line
    generate_dataset(model, tok, prompts, out, **kw)
    assert "last line is incomplete" in capsys.readouterr().out
    got = list(read_jsonl(out))
    assert sorted(r["id"] for r in got) == sorted(p["id"] for p in prompts), "every prompt exactly once"
    assert got == want, "the resumed file equals the uninterrupted one, record for record"


def test_half_written_chunk_is_decoded_again_whole_so_sampling_resumes_exactly(tmp_path, tok):
    model, prompts = tiny_gpt(tok, seed=1), unlabelled(12)
    kw = dict(method="sample", temperature=1.5, seed=7, max_new_tokens=5, chunk=5)
    want = list(read_jsonl(generate_dataset(model, tok, prompts, tmp_path / "full.jsonl", **kw)))
    out = tmp_path / "resumed.jsonl"
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(model, tok, prompts, out, stop_after=1, **kw)
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:2]))  # as if killed after 2 of the first chunk's 5 records
    generate_dataset(model, tok, prompts, out, **kw)
    assert list(read_jsonl(out)) == want


def test_other_settings_are_refused_not_mixed(tmp_path, tok, mix):
    out = tmp_path / "g.jsonl"
    generate_dataset(mix, tok, PROMPTS, out, max_new_tokens=12)
    with pytest.raises(ValueError, match="max_new_tokens: file 12 vs now 10"):
        generate_dataset(mix, tok, PROMPTS, out, max_new_tokens=10)
    with pytest.raises(ValueError, match="prompts"):
        generate_dataset(mix, tok, PROMPTS[:3], out, max_new_tokens=12)
    generate_dataset(mix, tok, PROMPTS[:3], out, max_new_tokens=12, overwrite=True)
    assert len(list(read_jsonl(out))) == 3
    generate_dataset(mix, tok, PROMPTS, out, max_new_tokens=12, stale="restart")  # a cache: made again
    assert len(list(read_jsonl(out))) == len(PROMPTS)


KILL_SCRIPT = """
import sys, torch
from minikd.data import read_jsonl
from minikd.machinery.labelling import generate_dataset
from minikd.model import GPT, get_config
from minikd.tokenizer import Tokenizer
torch.set_num_threads(1)  # as the tests run (conftest): float sums depend on the thread count
tok = Tokenizer.default()
torch.manual_seed(0)
model = GPT(get_config("tiny", vocab_size=tok.vocab_size)).eval()
prompts = list(read_jsonl(sys.argv[2]))[:int(sys.argv[3])]
generate_dataset(model, tok, prompts, sys.argv[1], max_new_tokens=24, chunk=4)
"""


@pytest.mark.slow
def test_a_real_run_killed_part_way_resumes_without_loss_or_duplicates(tmp_path, tok):
    n, out = 96, tmp_path / "killed.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(out), str(ROOT / "data" / "unlabelled.jsonl"),
                             str(n)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        if out.exists() and out.read_bytes().count(b"\n") >= 10:
            break
        time.sleep(0.005)
    assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()[-500:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    written = out.read_bytes().count(b"\n")
    assert 10 <= written < n, "killed part-way"

    torch.manual_seed(0)
    model = GPT(get_config("tiny", vocab_size=tok.vocab_size)).eval()
    prompts = unlabelled(n)
    generate_dataset(model, tok, prompts, out, max_new_tokens=24, chunk=4)
    want = generate_dataset(model, tok, prompts, tmp_path / "straight.jsonl", max_new_tokens=24, chunk=4)
    got = list(read_jsonl(out))
    assert [r["id"] for r in got] == [p["id"] for p in prompts], "every prompt exactly once, in order"
    assert got == list(read_jsonl(want))
    assert read_meta(out)["complete"]


# ---------------------------------------------------------------------------------------------------
# Shards
# ---------------------------------------------------------------------------------------------------


def test_shards_merge_into_the_single_process_result(tmp_path, tok, mix):
    prompts = PROMPTS * 1
    single = list(read_jsonl(generate_dataset(mix, tok, prompts, tmp_path / "one.jsonl", max_new_tokens=12)))
    out = tmp_path / "many.jsonl"
    paths = [generate_dataset(mix, tok, prompts, out, rank=r, world_size=3, max_new_tokens=12) for r in range(3)]
    assert paths == [shard_path(out, r, 3) for r in range(3)] and paths[1].name == "many.jsonl.rank1"
    assert [r["prompt_index"] for r in read_jsonl(paths[1])] == [1, 4], "rank 1 of 3 takes prompts 1, 4, ..."
    with pytest.raises(ValueError, match="one shard for every rank"):
        merge_shards(paths[:2], out)
    merge_shards(paths[::-1], out)  # the order the shards are given in does not matter
    assert list(read_jsonl(out)) == single
    assert read_meta(out)["shard"] is None and read_meta(out)["n_records"] == len(prompts)
    generate_dataset(mix, tok, prompts, out, max_new_tokens=12)  # the merged file counts as a finished run


def test_a_shard_of_a_real_model_equals_its_part_of_the_single_run(tmp_path, tok):
    model, prompts = tiny_gpt(tok), unlabelled(10)
    single = list(read_jsonl(generate_dataset(model, tok, prompts, tmp_path / "one.jsonl", max_new_tokens=4)))
    paths = [generate_dataset(model, tok, prompts, tmp_path / "two.jsonl", rank=r, world_size=2, max_new_tokens=4)
             for r in range(2)]
    merged = list(read_jsonl(merge_shards(paths, tmp_path / "two.jsonl")))
    assert [r["completion"] for r in merged] == [r["completion"] for r in single]
    for a, b in zip(merged, single):
        assert a["teacher_logprob"] == pytest.approx(b["teacher_logprob"], abs=1e-4)


# ---------------------------------------------------------------------------------------------------
# Filtering and regeneration
# ---------------------------------------------------------------------------------------------------


FILTER_IN = [
    {"id": "a", "task": "add", "prompt": "What is 2 + 3?", "completion": "The answer is 5.", "ended": True},
    {"id": "b", "task": "add", "prompt": "What is 4 + 4?", "completion": "The answer is 9.", "ended": True},
    {"id": "c", "task": "add", "prompt": "What is 6 + 1?", "completion": "The answer is 7", "ended": False},
    {"id": "d", "task": "add", "prompt": "What is 2 + 3?", "completion": "The answer is 5.", "ended": True},
    {"id": "e", "task": "sort", "prompt": "Sort 3 1 2.", "completion": "", "ended": True},
    {"id": "f", "task": "add", "prompt": "What is 1 + 1?", "completion": " ".join(["2"] * 20), "ended": True},
    {"id": "g", "task": "sort", "prompt": "Sort 3 1 2.", "completion": "1 2 3", "ended": True},
]


def test_filter_counts_every_reason_and_keeps_order(tmp_path, tok, capsys):
    src = tmp_path / "raw.jsonl"
    write_jsonl(src, FILTER_IN)
    out = tmp_path / "kept.jsonl"
    report = filter_dataset(src, out, tok, block_size=24)
    kept = list(read_jsonl(out))
    assert [r["id"] for r in kept] == ["a", "g"]
    assert all(r["verified"] is True for r in kept)
    assert {k: v for k, v in report.items() if v} == {"input": 7, "kept": 2, "incorrect": 1, "truncated": 1,
                                                      "duplicate": 1, "empty": 1, "too_long": 1, "output": 2}
    saved = json.loads(report_path(out).read_text())
    assert saved["counts"] == dict(report) and saved["by_task"]["add"]["incorrect"] == 1
    assert read_meta(out)["filter"]["counts"]["output"] == 2
    table = capsys.readouterr().out
    assert "dropped: truncated" in table and "output" in table

    report = filter_dataset(src, out, tok, block_size=24, verify=False, dedupe=False, drop_truncated=False)
    assert report["kept"] == 5 and report["empty"] == 1 and report["too_long"] == 1
    assert "verified" not in next(read_jsonl(out)), "nothing is marked verified when the verifier did not run"


def test_filter_errors_name_the_file_and_line(tmp_path, tok):
    src = tmp_path / "bad.jsonl"
    src.write_text(json.dumps(FILTER_IN[0]) + "\n" + '{"prompt": "What is 1 + 1?"}\n')
    with pytest.raises(DatasetError, match=r"bad.jsonl:2: field 'completion'"):
        filter_dataset(src, tmp_path / "o.jsonl", tok, 128)
    src.write_text(json.dumps({"prompt": "Translate: hello", "completion": "bonjour"}) + "\n")
    with pytest.raises(DatasetError, match=r"bad.jsonl:1: field 'prompt'.*--no-verify"):
        filter_dataset(src, tmp_path / "o.jsonl", tok, 128)
    filter_dataset(src, tmp_path / "o.jsonl", tok, 128, verify=False)  # any text data without the verifier


def test_regeneration_is_rejection_sampling(tmp_path, tok, mix):
    raw = generate_dataset(mix, tok, PROMPTS, tmp_path / "raw.jsonl", max_new_tokens=12)
    out = tmp_path / "regen.jsonl"
    report = filter_dataset(raw, out, tok, 64, regenerate=mix, tries=12, seed=0, max_new_tokens=12)
    # greedy: p0 wrong (2 1 3), p1 right, p2 wrong (the only answer), p3 right, p4 cut off
    assert (report["kept"], report["incorrect"], report["truncated"]) == (2, 2, 1)
    assert (report["regenerated_ok"], report["regenerate_failed"]) == (1, 2), \
        "p0 is resampled until '1 2 3' comes out (p=0.4 per try); p2 and p4 can never pass"
    got = {r["id"]: r for r in read_jsonl(out)}
    assert list(got) == ["p0", "p1", "p3"], "output keeps prompt order"
    assert got["p0"]["completion"] == "1 2 3" and got["p0"]["verified"] and got["p0"]["ended"]
    assert 1 <= got["p0"]["regenerated"] <= 12
    assert got["p0"]["teacher_logprob"] == pytest.approx(math.log(0.4), abs=1e-5), \
        "the log-prob is the teacher's, at temperature 1, even though it was sampled"
    assert report["output"] == report["kept"] + report["regenerated_ok"]


def test_load_teacher_data_refuses_cut_off_answers(tmp_path, tok, mix):
    raw = generate_dataset(mix, tok, PROMPTS, tmp_path / "raw.jsonl", max_new_tokens=12)
    with pytest.raises(DatasetError, match=r"raw.jsonl:5: field 'ended'.*truncated.*Filter"):
        load_teacher_data(raw, tok, 128)
    assert len(load_teacher_data(raw, tok, 128, allow_truncated=True)) == 5
    filter_dataset(raw, tmp_path / "ok.jsonl", tok, 128, verify=False)
    assert [e["id"] for e in load_teacher_data(tmp_path / "ok.jsonl", tok, 128)] == ["p0", "p1", "p2", "p3"]


# ---------------------------------------------------------------------------------------------------
# seq-inter and scoring
# ---------------------------------------------------------------------------------------------------


def test_edit_distance():
    assert edit_distance(list("kitten"), list("sitting")) == 3
    assert edit_distance([], [1, 2]) == 2 and edit_distance([1, 2], [1, 2]) == 0
    assert edit_distance("1 2 3", "1 3 3") == 1  # strings: character by character


STEPS = "7+6=13 carry 1. 4+2+1=7."


def test_answer_distance_compares_the_final_answers_not_the_forms():
    assert answer_distance("sort", "1 2 3", "Sorted: 1 2 3.") == 0
    assert answer_distance("sort", "1, 2, 3", "1 2 3") == 0
    assert answer_distance("add", "168", "The answer is 168.") == 0
    assert answer_distance("add_steps", f"{STEPS} The answer is 73.", f"{STEPS} Sum: 73.") == 0
    assert answer_distance("sort", "1 2 3 9", "1 2 3 8") == 1
    assert answer_distance("sort", "1, 2, 3, 9", "Sorted: 1 2 3 8.") == 1  # canonical spacing, then characters
    assert answer_distance("add", "The answer is 1680.", "168") == 1
    assert answer_distance("sort", "banana", "1 2 3") == math.inf  # no readable answer: infinitely far
    assert answer_distance("sort", "Sorted: 1 2", "1 2 3") == math.inf  # cut off before the closing "."
    with pytest.raises(ValueError, match=r"reference 'banana'"):
        answer_distance("sort", "1 2 3", "banana")


def test_inter_choice_keeps_the_teachers_form_when_the_answers_agree():
    """The teacher's best (rank 0) and a lower-ranked copy of the reference's form have the same answer:
    a tie, so the better beam rank wins and the teacher's form is kept. (A distance on the whole text picks
    rank 1 here: it copies the reference's form.)"""
    candidates = [("1 2 3", True), ("Sorted: 1 2 3.", True)]
    assert seq_inter_choice("sort", candidates, "Sorted: 1 2 3.") == 0
    candidates = [(f"{STEPS} The answer is 73.", True), (f"{STEPS} Sum: 73.", True)]
    assert seq_inter_choice("add_steps", candidates, f"{STEPS} Sum: 73.") == 0


def test_inter_choice_follows_the_references_answer_even_a_noisy_one():
    """The reference's answer beats the beam rank: a lower-ranked candidate with the reference's answer wins,
    whatever its form. With a wrong (noisy) reference this keeps the wrong answer: the reference is trusted."""
    noisy = "Sorted: 1 3 2."  # a wrong label for "Sort 3 1 2."
    assert seq_inter_choice("sort", [("1 2 3", True), ("1, 3, 2", True)], noisy) == 1
    assert seq_inter_choice("sort", [("9 8 7", True), ("1 2 4", True), ("1 2 3", True)], "1 2 3") == 2
    assert seq_inter_choice("sort", [("9 8 7", True), ("1 2 4", True)], "1 2 3") == 1  # closer answer wins
    assert seq_inter_choice("sort", [("Sorted: 1", True), ("7 8 9", True)], "1 2 3") == 1  # unreadable: last


def test_inter_choice_puts_candidates_that_ended_first():
    assert seq_inter_choice("sort", [("1 2 3", False), ("3 2 1", True)], "1 2 3") == 1
    assert seq_inter_choice("sort", [("1 2 3", False), ("banana", True)], "1 2 3") == 1
    assert seq_inter_choice("sort", [("1 2 3", False), ("1 2 3", False)], "1 2 3") == 0  # none ended: rank
    with pytest.raises(ValueError, match="at least one candidate"):
        seq_inter_choice("sort", [], "1 2 3")


def test_seq_inter_keeps_the_beam_candidate_whose_answer_is_closest_to_the_ground_truth(tmp_path, tok, mix):
    labelled = [{**PROMPTS[0], "completion": "1 2 3"}, {**PROMPTS[1], "completion": "Sorted: 4 5 6."},
                {**PROMPTS[2], "completion": "7 8 9"}]
    del labelled[2]["task"]  # no "task" field: read from the prompt
    out = list(read_jsonl(seq_inter_dataset(mix, tok, labelled, tmp_path / "inter.jsonl", beam_size=2,
                                            max_new_tokens=12)))
    # p0: the right answer is the beam's second; p1: both candidates have the ground truth's answer, so
    # the teacher's best form stays; p2: the beam's best is the only candidate with a readable answer
    # (the other is the table's off-prefix junk).
    assert [r["completion"] for r in out] == ["1 2 3", "4 5 6", "9 8 7"]
    assert [r["inter_rank"] for r in out] == [1, 0, 0], "rank 1 = the beam's second-best answer"
    assert [r["inter_distance"] for r in out] == [0, 0, 2]
    assert out[0]["teacher_logprob"] == pytest.approx(math.log(0.4), abs=1e-5)
    assert out[0]["ground_truth"] == "1 2 3"
    assert "ended, then answer distance" in read_meta(tmp_path / "inter.jsonl")["settings"]["select"]
    with pytest.raises(ValueError, match="ground-truth completions"):
        seq_inter_dataset(mix, tok, PROMPTS, tmp_path / "x.jsonl")
    with pytest.raises(ValueError, match=r"record 1 \(id 'p1'\): 'four five six'"):
        seq_inter_dataset(mix, tok, [labelled[0], {**labelled[1], "completion": "four five six"}],
                          tmp_path / "y.jsonl")


def test_seq_inter_writes_null_when_no_candidate_has_a_readable_answer(tmp_path, tok):
    model = MixtureLM(tok, {"Sort 3 1 2.": {"banana": 1.0}})
    labelled = [{"id": "b", "task": "sort", "prompt": "Sort 3 1 2.", "completion": "1 2 3"}]
    [rec] = read_jsonl(seq_inter_dataset(model, tok, labelled, tmp_path / "n.jsonl", beam_size=2, max_new_tokens=8))
    assert rec["inter_distance"] is None and '"inter_distance": null' in (tmp_path / "n.jsonl").read_text()


def test_sequence_logprobs_is_minus_the_masked_nll(tok, mix):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=1, n_head=2, n_embd=16))
    examples, _ = load_sft(ROOT / "data" / "train.jsonl", tok, 64, drop_bad=True)
    examples = examples[:7]
    lps, counts = sequence_logprobs(model, examples, tok.pad_id, batch_size=3)
    batch = collate(examples, tok.pad_id)
    with torch.no_grad():
        total = float(masked_nll(model(batch["inputs"]), batch["targets"], reduction="sum"))
    assert sum(lps) == pytest.approx(-total, rel=1e-5)
    assert counts == [sum(e["mask"]) for e in examples]


def test_teacher_logprob_equals_the_teacher_forced_score(tmp_path, tok, mix):
    """log p(u | s) written while generating = log p(u | s) computed again by reading (s, u)."""
    path = generate_dataset(mix, tok, PROMPTS[:4], tmp_path / "g.jsonl", max_new_tokens=12)
    examples = load_teacher_data(path, tok, 64)
    lps, _ = sequence_logprobs(mix, examples, tok.pad_id)
    assert lps == pytest.approx([e["teacher_logprob"] for e in examples], abs=1e-5)


def test_the_beam_record_is_the_beams_own_best_answer_without_the_seq_inter_fields():
    """A seq-inter record holds the chosen candidate AND the beam's best answer; plain seq-KD on beam output
    must train on the latter, with its own log-prob and length, and carry none of the choice's metadata."""
    from minikd.seqkd import beam_best_record
    inter = {"id": "p1", "prompt": "Sort 3 1.", "task": "sort", "completion": "1 3", "teacher_logprob": -2.5,
             "teacher_tokens": 3, "ended": True, "inter_rank": 2, "inter_distance": 0, "beam_candidates": 5,
             "beam_completion": "Sorted: 1 3.", "beam_logprob": -0.5, "beam_ended": True, "beam_tokens": 6,
             "ground_truth": "1 3", "source": "teacher", "prompt_index": 0}
    best = beam_best_record(inter)
    assert best["completion"] == "Sorted: 1 3." and best["teacher_logprob"] == -0.5
    assert best["teacher_tokens"] == 6 and best["ended"] is True
    assert not [k for k in best if k.startswith(("inter_", "beam_"))]
    assert {k: best[k] for k in ("id", "prompt", "task", "ground_truth", "source", "prompt_index")} == \
        {k: inter[k] for k in ("id", "prompt", "task", "ground_truth", "source", "prompt_index")}
