"""Sequence-level KD, the core: the teacher writes the answers, a filter curates them, a student copies them.

Kim & Rush (2016), "Sequence-Level Knowledge Distillation": instead of matching the teacher's distribution at
every position (word-level KD, Hinton, Vinyals & Dean 2015), let the teacher write a whole answer
u = teacher(s) for every prompt s, store the pairs (s, u), and train the student on them with the plain
sequence loss -log p(u | s) — supervised fine-tuning on teacher text. The teacher is never needed while the
student trains, and the stored data is only text.

    label_prompts      u = teacher(s) for a list of prompt records -> teacher-written records
    drop_reason        why one record must not be trained on (cut off, empty, too long, wrong), or None
    filter_records     keep what passes, count what was dropped and why (sort_out, drop_counts)
    rejection_sample   sample again for the dropped prompts; keep the first answer that passes (new_answer_passes)
                       (how DeepSeek-AI (2025) built the distillation data of DeepSeek-R1)
    seq_inter_choice   Kim & Rush's seq-inter: of the teacher's beam candidates, the one closest to the reference
    beam_best_record   the beam's own best answer (Kim & Rush's seq-KD with beam search)
    as_examples        (s, u) records rendered for the student: -log p(u | s) on the answer tokens only
    sequence_logprobs  log p(u + <|end|> | s) per example: the quantity sequence-level KD raises

Every function here works on records in memory. Writing them to disk so that a killed run resumes, splitting
the prompts over processes, sidecars and caches: that is the machinery, minikd.machinery.labelling.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Callable

import torch
import torch.nn.functional as F

from minikd.runtime import mix_seed
from minikd.data import IGNORE_INDEX, batches
from minikd.generate import generate
from minikd.world import extract_answer, task_of
from minikd.world import verify as verify_answer

# Fields that describe a prompt record's OLD completion; a teacher-written record replaces them.
REPLACED = ("completion", "source", "label_noisy", "form", "verified", "teacher_logprob", "teacher_tokens",
            "ended", "prompt_index", "regenerated", "inter_rank", "inter_distance", "beam_candidates",
            "beam_completion", "beam_logprob", "beam_ended", "beam_tokens")
# Why a record is dropped, in the order drop_reason checks (the first reason that applies is counted).
DROP_REASONS = ("truncated", "empty", "too_long", "incorrect", "duplicate")


def decoding_settings(method: str, beam_size: int = 1, temperature: float = 1.0, top_k: int | None = None,
                      length_penalty: float = 0.0) -> dict:
    """The settings generate() takes for `method` (it refuses settings that do not apply)."""
    if method == "greedy":
        return {"method": "greedy"}
    if method == "sample":
        return {"method": "sample", "temperature": temperature, "top_k": top_k}
    if method == "beam":
        return {"method": "beam", "beam_size": beam_size, "length_penalty": length_penalty}
    raise ValueError(f"unknown decoding method {method!r}; choose greedy, sample or beam")


def teacher_record(record: dict, tok, g) -> dict:
    """A prompt record + the teacher's answer `g` (a generate.Generation)."""
    return with_answer(record, {
        "completion": tok.decode(g.tokens),  # u, without the end token
        "teacher_logprob": g.logprob,  # log p_teacher(u + <|end|> | s)
        "teacher_tokens": len(g.tokens),
        "ended": bool(g.ended),  # False: the length limit cut the answer off
    })


def with_answer(record: dict, answer: dict) -> dict:
    """A prompt record + a teacher's answer fields (completion, teacher_logprob, teacher_tokens, ended), from
    this process or from a server (minikd.machinery.client). The old completion, if the record had one from the ground
    truth, is kept as "ground_truth" (seq-inter and the analysis read it)."""
    out = {k: v for k, v in record.items() if k not in REPLACED}
    if "completion" in record and record.get("source", "ground_truth") == "ground_truth":
        out["ground_truth"] = record["completion"]
    out.update(answer)
    out["source"] = "teacher"
    return out


def label_prompts(teacher, tok, records: list[dict], decoding: dict, max_new_tokens: int,
                  seed: int | None = None, batch_size: int = 256) -> list[dict]:
    """u = teacher(s) for every prompt record s: the records the student will be trained on."""
    prompts = [tok.render_prompt(r["prompt"]) for r in records]
    gens = generate(teacher, prompts, max_new_tokens=max_new_tokens, end_id=tok.end_id, batch_size=batch_size,
                    seed=seed if decoding["method"] == "sample" else None, **decoding)
    return [teacher_record(r, tok, g) for r, g in zip(records, gens)]


def drop_reason(record: dict, tok, block_size: int, verify: bool = True, drop_truncated: bool = True) -> str | None:
    """Why a record must not be trained on (the first of DROP_REASONS that applies), or None to keep it."""
    if drop_truncated and record.get("ended") is False:
        return "truncated"  # no end token: the student would learn to never stop
    if record["completion"] == "":
        return "empty"
    if len(tok.render(record["prompt"], record["completion"])[0]) > block_size + 1:
        return "too_long"  # the student's context holds block_size + 1 ids (inputs and shifted targets)
    if verify and not verify_answer(record["prompt"], record["completion"]):
        return "incorrect"
    return None


def sort_out(records: list[dict], reason_of: Callable[[dict], str | None], dedupe: bool = True) -> list[str | None]:
    """One drop reason (or None = keep) per record; a second copy of a kept (prompt, completion) is a duplicate."""
    seen, reasons = set(), []
    for r in records:
        reason = reason_of(r)
        if reason is None and dedupe and (r["prompt"], r["completion"]) in seen:
            reason = "duplicate"
        if reason is None:
            seen.add((r["prompt"], r["completion"]))
        reasons.append(reason)
    return reasons


def new_answer_passes(reason_of: Callable[[dict], str | None], seen: set,
                      dedupe: bool = True) -> Callable[[dict], bool]:
    """rejection_sample's test for a regenerated answer, by the filter's own rule: no drop reason and, with
    dedupe, not a copy of a (prompt, completion) kept already (sort_out's rule); one that passes joins `seen`."""
    def passes(record: dict) -> bool:
        ok = reason_of(record) is None and not (dedupe and (record["prompt"], record["completion"]) in seen)
        if ok:
            seen.add((record["prompt"], record["completion"]))
        return ok
    return passes


def filter_records(records: list[dict], reason_of: Callable[[dict], str | None],
                   dedupe: bool = True) -> tuple[list[dict], Counter]:
    """The records that pass every check, in order, and the counts: "kept" and one per drop reason."""
    reasons = sort_out(records, reason_of, dedupe)
    return [r for r, why in zip(records, reasons) if why is None], drop_counts(reasons)


def drop_counts(reasons: list[str | None]) -> Counter:
    """sort_out's reasons counted: "input", "kept" (None) and one count per drop reason (0 when none)."""
    counts = Counter({"input": len(reasons), "kept": reasons.count(None), **{why: 0 for why in DROP_REASONS}})
    counts.update(why for why in reasons if why is not None)
    return counts


def rejection_sample(teacher, tok, records: list[dict], passes: Callable[[dict], bool], tries: int,
                     decoding: dict, seed: int, max_new_tokens: int) -> list[dict | None]:
    """For every record, sample the teacher again, up to `tries` times, and keep its first answer that
    `passes`; None where no try passed. decoding: decoding_settings("sample", temperature=...). Try t samples every prompt still without an answer, seeded by
    (seed, t). A prompt the teacher never gets right stays without one: resampling cannot create skill."""
    found: list[dict | None] = [None] * len(records)
    for attempt in range(1, tries + 1):
        pending = [i for i, f in enumerate(found) if f is None]
        if not pending:
            break
        fresh = label_prompts(teacher, tok, [records[i] for i in pending], decoding, max_new_tokens,
                              seed=mix_seed(seed, attempt))
        for i, new in zip(pending, fresh):
            new["regenerated"] = attempt
            if passes(new):
                found[i] = new
    return found


def edit_distance(a, b) -> int:
    """Levenshtein distance: the fewest insertions, deletions and substitutions turning a into b
    (any two sequences: token lists, or strings compared character by character)."""
    prev = list(range(len(b) + 1))  # distance from a[:0] to every prefix of b
    for i, x in enumerate(a, start=1):
        cur = [i]
        for j, y in enumerate(b, start=1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def answer_distance(task: str, candidate: str, reference: str) -> float:
    """The character edit distance between the FINAL ANSWERS of a candidate and of the reference, as
    world.extract_answer reads them: 0 when the answers agree, whatever the surface forms.

    Why not the whole text: the surface form ("1 2 3" or "Sorted: 1 2 3.") is a free choice that the
    reference made at random; the answer is what the reference knows. A candidate with no readable
    answer is infinitely far (math.inf); a reference with none is an error (nothing to compare with).
    """
    truth = extract_answer(task, reference)
    if truth is None:
        raise ValueError(f"no final answer can be read from the reference {reference!r} (task {task!r})")
    answer = extract_answer(task, candidate)
    return math.inf if answer is None else float(edit_distance(answer, truth))


def seq_inter_choice(task: str, candidates: list[tuple[str, bool]], reference: str) -> int:
    """Which of the beam's (text, ended) candidates Kim & Rush's seq-inter keeps, given best-first.

    Kim & Rush pick, among the K beam candidates, the one most similar to the reference (sentence BLEU for
    translation): likely under the teacher AND near the truth. Here similarity is answer_distance.
    Candidates that ended come first (a cut-off answer is never a target); then the smallest distance;
    a tie goes to the better beam rank, so a candidate that merely copies the reference's surface form
    never beats the teacher's better-ranked one with the same answer.
    """
    if not candidates:
        raise ValueError("seq_inter_choice needs at least one candidate")
    dist = [answer_distance(task, text, reference) for text, _ in candidates]
    return min(range(len(candidates)), key=lambda k: (not candidates[k][1], dist[k], k))


def record_task(record: dict) -> str:
    """A record's task family: its "task" field, else read from its prompt."""
    return record.get("task") or task_of(record["prompt"])


def seq_inter_record(record: dict, tok, pool: list) -> dict:
    """The seq-inter target of one prompt record, from the teacher's beam `pool` (best first). The record
    says which rank was kept ("inter_rank", 0 = the beam's best), its answer distance, and the beam's own
    best answer ("beam_completion"): plain seq-KD on beam output needs no second search."""
    task = record_task(record)
    candidates = [(tok.decode(g.tokens), bool(g.ended)) for g in pool]
    k = seq_inter_choice(task, candidates, record["completion"])
    dist = answer_distance(task, candidates[k][0], record["completion"])
    out = teacher_record(record, tok, pool[k])
    out["inter_rank"] = k
    out["inter_distance"] = None if math.isinf(dist) else int(dist)  # JSON holds no infinity
    out["beam_candidates"] = len(pool)
    out["beam_completion"] = candidates[0][0]
    out["beam_logprob"] = pool[0].logprob
    out["beam_ended"] = bool(pool[0].ended)
    out["beam_tokens"] = len(pool[0].tokens)
    return out


def beam_best_record(record: dict) -> dict:
    """The beam's own best answer of a seq-inter record, as a plain seq-KD record (Kim & Rush's seq-KD with
    beam search): the seq-inter candidate's fields are dropped, not carried over."""
    out = {k: v for k, v in record.items() if not k.startswith(("inter_", "beam_"))}
    out["completion"] = record["beam_completion"]
    out["teacher_logprob"] = record["beam_logprob"]
    out["teacher_tokens"] = record["beam_tokens"]
    out["ended"] = record["beam_ended"]
    return out


def seq_inter_labels(teacher, tok, records: list[dict], beam: dict, max_new_tokens: int,
                     batch_size: int = 256) -> list[dict]:
    """Beam search keeps the teacher's K best answers per prompt; seq_inter_record keeps one of them."""
    prompts = [tok.render_prompt(r["prompt"]) for r in records]
    pools = generate(teacher, prompts, max_new_tokens=max_new_tokens, end_id=tok.end_id, batch_size=batch_size,
                     num_return=beam["beam_size"], **beam)
    pools = [p if isinstance(p, list) else [p] for p in pools]  # beam_size 1 returns one answer
    return [seq_inter_record(r, tok, pool) for r, pool in zip(records, pools)]


def as_examples(records: list[dict], tok) -> list[dict]:
    """(s, u) records rendered for the student's SFT: ids, and the mask that keeps the answer tokens only."""
    out = []
    for r in records:
        ids, mask = tok.render(r["prompt"], r["completion"])
        out.append({**r, "ids": ids, "mask": mask})
    return out


@torch.no_grad()
def sequence_logprobs(model, examples: list[dict], pad_id: int, batch_size: int = 128) -> tuple[list[float], list[int]]:
    """log p_model(u + <|end|> | s) of every rendered example, and its number of answer tokens.

    Kim & Rush's observation is measured with this: a teacher gives its own outputs a far higher
    log-probability than the ground-truth answers — distilled data is easier to fit.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    logprobs, counts = [], []
    for batch in batches(examples, batch_size, pad_id):
        targets = batch["targets"].to(device)  # (B, T)
        logits = model(batch["inputs"].to(device)).float()  # (B, T, V)
        keep = targets != IGNORE_INDEX  # (B, T) answer tokens only
        lp = F.log_softmax(logits, dim=-1).gather(-1, targets.clamp(min=0)[..., None]).squeeze(-1)  # (B, T)
        logprobs += (lp * keep).sum(dim=1).tolist()
        counts += keep.sum(dim=1).tolist()
    model.train(was_training)
    return logprobs, counts
