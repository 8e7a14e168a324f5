"""Teacher labelling as jobs over files (the machinery around minikd.seqkd): resumable, shardable, cached on disk.

minikd.seqkd holds the ideas — label_prompts, filter_records, rejection_sample, seq_inter_labels — as short
functions on records in memory. This module runs them as jobs over files, the way a real distillation
pipeline must: a labelling run of thousands of prompts survives being killed, splits over processes, and
records how every file was made. A learner need not read it.

    1. generate the teacher's answers in advance     generate_dataset    u = teacher(s), stored as JSONL
    2. filter out low-quality answers, or regenerate filter_dataset      verifier, truncation, length, duplicates;
                                                                         rejection sampling for the dropped prompts
    3. train the student on the stored dataset       load_teacher_data   + stages.train_student / `minikd train`
    4. never run the teacher again while the student trains (step 3 reads a file, nothing else)

plus Kim & Rush's seq-inter (seq_inter_dataset, the choice itself is seqkd.seq_inter_choice).

A generated record keeps every field of its prompt record (id, task, prompt, answer, ...) and adds

    completion       u, the teacher's answer (decoded text, without the end token)
    source           "teacher"
    teacher_logprob  log p_teacher(u + <|end|> | s): the quantity sequence-level KD copies
    teacher_tokens   len(u) in tokens
    ended            False when the length limit cut the answer off. Such a record stays in the raw file,
                     flagged; filter_dataset drops it and load_teacher_data refuses it: never silently trained on
    prompt_index     the prompt's position in the prompt set (shards merge back in this order)
    ground_truth     the prompt record's own completion, if it had one (kept for seq-inter and analysis;
                     the student reads only prompt and completion)

and the file gets a sidecar `<file>.meta.json`: decoding settings, the teacher's checkpoint, step and weight
fingerprint, the teacher's tokenizer, the number of prompts. The tokenizer goes under "teacher_tokenizer",
not "tokenizer": the stored answers are plain text, and a student with another tokenizer may train on them
(a gain of sequence-level KD: the data is only text), so data.load_sft must not refuse the file.

Long runs survive being killed. Records are appended one line at a time and flushed. A rerun with the
same settings reads the ids already written, cuts off a torn last line, and generates only what is
missing. Prompts go in fixed chunks (sorted by length, so each chunk decodes in few equal-length buckets);
a chunk that was half-written is decoded again as a whole and only its missing records are written, so
the result equals that of a run that never stopped, for sampling too (each chunk has its own fixed seed).
When every prompt is done the file is rewritten in prompt order.

Several processes can split the work: rank r of world_size W takes prompts r, r + W, r + 2W, ... and
writes `<out>.rank<r>`; merge_shards puts the shards back together in prompt order.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Callable

import torch

from minikd.runtime import Progress, atomic_write_text, mix_seed, what_differs
from minikd.data import DatasetError, append_jsonl, load_sft, read_jsonl, read_meta, write_jsonl, write_meta
from minikd.evaluate import max_new_tokens_for
from minikd.model import check_vocab
from minikd.seqkd import (DROP_REASONS, decoding_settings, drop_counts, drop_reason, label_prompts, new_answer_passes,
                          record_task, rejection_sample, seq_inter_labels, sort_out)
from minikd.world import extract_answer
from minikd.world import verify as verify_answer

# Dropped prompts that regeneration may retry (a duplicate's prompt already has an answer in the output).
RETRY_REASONS = ("truncated", "empty", "too_long", "incorrect")


# ---------------------------------------------------------------------------------------------------
# Small helpers: fingerprints, seeds, paths, prompt sets
# ---------------------------------------------------------------------------------------------------


def teacher_fingerprint(model) -> str:
    """A short hash of a model's weights: a retrained teacher (same path, same step) gets a new one."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def shard_path(out_path, rank: int, world_size: int) -> Path:
    """Where rank `rank` writes: `out_path` itself for one process, `<out_path>.rank<r>` for several."""
    out_path = Path(out_path)
    return out_path if world_size == 1 else out_path.with_name(f"{out_path.name}.rank{rank}")


def _prompt_set(records) -> list[dict]:
    """Check a prompt set: dicts with a non-empty string 'prompt' and a unique 'id' (missing ids are numbered).

    Ids are how a resumed run knows what is done, so two prompts must never share one.
    """
    out, seen = [], {}
    for i, r in enumerate(records):
        if not isinstance(r, dict):
            raise ValueError(f"prompt record {i}: expected a dict, got {type(r).__name__}")
        if not isinstance(r.get("prompt"), str) or not r["prompt"]:
            raise ValueError(f"prompt record {i} (id {r.get('id')!r}): field 'prompt' must be a non-empty string")
        r = r if "id" in r else {"id": f"prompt-{i:06d}", **r}
        if r["id"] in seen:
            raise ValueError(f"prompt records {seen[r['id']]} and {i} share the id {r['id']!r}; ids must be unique")
        seen[r["id"]] = i
        out.append(r)
    if not out:
        raise ValueError("the prompt set is empty")
    return out


def _digest(records: list[dict]) -> str:
    """A hash of the prompt set (ids and prompts, in order): resuming on another prompt set is refused."""
    text = json.dumps([[r["id"], r["prompt"]] for r in records], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _recover(path: Path) -> list[dict]:
    """The records already in an output file. A torn last line (a run killed mid-write) is cut off.

    append_jsonl writes a whole line and its newline at once, so only the last line can be incomplete,
    and an incomplete line is one without its newline. A bad line anywhere else is a real error.
    """
    if not path.exists():
        return []
    size = path.stat().st_size
    with open(path, "rb") as f:
        if size:
            f.seek(size - 1)
            last = f.read(1)
    if size and last != b"\n":
        with open(path, "rb") as f:
            data = f.read()
        keep = data.rfind(b"\n") + 1
        print(f"{path}: the last line is incomplete ({size - keep} bytes, left by a run killed while "
              "writing it): cutting it off; that prompt is generated again", flush=True)
        os.truncate(path, keep)
    return list(read_jsonl(path))


def default_max_new_tokens(teacher, tok, records: list[dict], cap: int = 96) -> int:
    """As many new tokens as the longest prompt of the WHOLE set leaves room for (at most `cap`).

    One number for the whole run, so every chunk and every shard decodes with the same limit.
    """
    return max_new_tokens_for(teacher, [tok.render_prompt(r["prompt"]) for r in records], cap=cap)


# ---------------------------------------------------------------------------------------------------
# Step 1: the teacher labels a prompt set — resumable, shardable
# ---------------------------------------------------------------------------------------------------


# The settings that say how an answer was decoded: each record carries them (with the teacher's fingerprint),
# so a stored file needs neither its sidecar nor the teacher to say where its answers came from.
DECODING_KEYS = ("method", "temperature", "top_k", "beam_size", "length_penalty", "seed", "max_new_tokens")


def _local_teacher(teacher, tok, teacher_ckpt) -> dict:
    """What the settings and the sidecar say about a teacher in this process, and how a prompt's length
    (the chunk order) is measured: its rendered tokens."""
    check_vocab(tok, teacher)
    return {"settings": {"tokenizer": tok.fingerprint, "teacher": teacher_fingerprint(teacher)},
            "meta": {"teacher_tokenizer": tok.fingerprint, "teacher_checkpoint": _checkpoint_info(teacher_ckpt),
                     "teacher_config": teacher.config_dict() if hasattr(teacher, "config_dict") else None},
            "length": lambda prompt: len(tok.render_prompt(prompt))}


def _labelling_run(teacher, tok, records, out_path, settings: dict, label_chunk: Callable, *, rank: int,
                   world_size: int, chunk: int, teacher_ckpt, overwrite: bool, stale: str, label: str,
                   stop_after: int | None = None, about: dict | None = None) -> Path:
    """The loop shared by generate_dataset, seq_inter_dataset and minikd.machinery.client.api_dataset.

    label_chunk(records, seed) -> the teacher-written records (seqkd.label_prompts or seq_inter_labels).
    about: the teacher's description when it is not in this process (minikd.machinery.client: a server), in the shape
    _local_teacher returns; teacher, tok and teacher_ckpt are then unused.
    """
    about = about or _local_teacher(teacher, tok, teacher_ckpt)
    _check_run(rank, world_size, chunk, stale)
    settings = {**settings, **about["settings"], "prompts": _digest(records), "n_prompts": len(records),
                "chunk": chunk}
    shard = {"rank": rank, "world_size": world_size} if world_size > 1 else None
    path = shard_path(out_path, rank, world_size)

    # Step 1a: this process's prompts — every world_size-th one, starting at rank.
    mine = [(i, r) for i, r in enumerate(records) if i % world_size == rank]
    # Step 1b: what an earlier run with the SAME settings already wrote (resume).
    done = _resume(path, settings, shard, mine, overwrite=overwrite, stale=stale, label=label)
    if done is None:
        return path  # complete already
    earlier = (read_meta(path) or {}).get("seconds", 0.0) if done else 0.0  # time spent by the killed run(s)
    meta = {"created_by": f"minikd.machinery.labelling ({label})", "settings": settings, "shard": shard, **about["meta"],
            "n_prompts": len(mine), "complete": False}
    write_meta(path, meta)

    # Step 1c: fixed chunks of prompts of similar length (the chunks never depend on what is done).
    order = sorted(mine, key=lambda ir: (about["length"](ir[1]["prompt"]), ir[0]))
    chunks = [order[s:s + chunk] for s in range(0, len(order), chunk)]
    todo = sum(r["id"] not in done for _, r in mine)
    bar = Progress(label, todo, unit="prompts")
    t0, written = time.perf_counter(), 0
    provenance = {"decoding": {k: settings[k] for k in DECODING_KEYS if k in settings}, "teacher": settings.get("teacher")}
    for c, part in enumerate(chunks):
        if all(r["id"] in done for _, r in part):
            continue
        new_fields = label_chunk([r for _, r in part], mix_seed(settings.get("seed") or 0, rank, world_size, c))
        written += _append_new(path, part, new_fields, done, provenance)
        bar.update(written, extra=f"chunk {c + 1}/{len(chunks)}")
        meta["seconds"] = round(earlier + time.perf_counter() - t0, 3)  # so a resumed run can add to it
        write_meta(path, meta)
        if stop_after is not None and written >= stop_after:
            raise KeyboardInterrupt(f"stop_after={stop_after} (test hook)")
    seconds = bar.close() if todo else time.perf_counter() - t0
    _complete(path, done, mine, meta, round(earlier + seconds, 3), label)
    return path


def _check_run(rank: int, world_size: int, chunk: int, stale: str) -> None:
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    if stale not in ("error", "restart"):
        raise ValueError(f"stale must be 'error' or 'restart', got {stale!r}")


def _resume(path: Path, settings: dict, shard, mine: list, *, overwrite: bool, stale: str, label: str) -> dict | None:
    """The records (by id) an earlier run with the SAME settings wrote to `path`, or None when it finished
    every prompt of `mine`. A file made with other settings is never mixed with this run: an error, or
    (stale="restart", for caches) started over; overwrite=True always starts over."""
    if not path.exists():
        return {}
    if overwrite:
        path.unlink()
        return {}
    old = read_meta(path)
    why = what_differs({**old["settings"], "shard": old.get("shard")}, {**settings, "shard": shard}, was="file") \
        if old and "settings" in old else ["it has no .meta.json sidecar"]
    if why:
        why = "; ".join(why)
        if stale == "error":
            raise ValueError(f"{path} already exists and was not made with these settings ({why}); pass "
                             "overwrite=True (--overwrite) to start over, or write somewhere else")
        print(f"{label}: {path} was made with other settings ({why}): starting over", flush=True)
        path.unlink()
        return {}
    done = {r["id"]: r for r in _recover(path)}
    if old.get("complete") and all(r["id"] in done for _, r in mine):
        print(f"{label}: {path} is complete ({len(done)} records, same settings): nothing to do", flush=True)
        return None
    print(f"{label}: resuming {path}: {sum(r['id'] in done for _, r in mine)}/{len(mine)} prompts already done",
          flush=True)
    return done


def _append_new(path: Path, part: list, new_fields: list[dict], done: dict, provenance: dict) -> int:
    """Append the records of one chunk that are not written yet (one flushed line each: a kill loses at most
    that line); returns how many."""
    written = 0
    for (i, r), rec in zip(part, new_fields):
        if r["id"] in done:
            continue  # written by the killed run: this chunk was decoded again only to get the rest
        rec["prompt_index"] = i
        rec.update(provenance)  # how the answer was made: every record carries it, the file stands alone
        append_jsonl(path, rec)
        done[r["id"]] = rec
        written += 1
    return written


def _complete(path: Path, done: dict, mine: list, meta: dict, seconds: float, label: str) -> None:
    """Step 1d: every prompt is done — rewrite the file in prompt order, count the flagged (cut-off) answers."""
    extra = set(done) - {r["id"] for _, r in mine}
    if extra:
        raise DatasetError(path, None, f"holds {len(extra)} records whose ids are not in the prompt set "
                           f"(e.g. {sorted(extra)[:3]})", reason="unknown_ids")
    final = sorted(done.values(), key=lambda r: r["prompt_index"])
    write_jsonl(path, final)
    cut = sum(not r["ended"] for r in final)
    meta.update(complete=True, n_records=len(final), n_truncated=cut, seconds=seconds)
    write_meta(path, meta)
    if cut:
        print(f"{label}: {cut} of {len(final)} answers were cut off at "
              f"max_new_tokens={meta['settings']['max_new_tokens']} "
              "(kept in the raw file with ended=false; filter_dataset drops them)", flush=True)


def _checkpoint_info(teacher_ckpt) -> dict | None:
    """Path and step of the teacher's checkpoint, for the sidecar (None when the teacher lives in memory)."""
    if teacher_ckpt is None:
        return None
    info = {"path": str(teacher_ckpt), "step": None}
    if Path(teacher_ckpt).exists():
        from minikd.train import load_checkpoint  # reading the step: the checkpoint is small
        info["step"] = load_checkpoint(teacher_ckpt)["step"]
    return info


def generate_dataset(teacher, tok, records, out_path, *, method: str = "greedy", beam_size: int = 1,
                     temperature: float = 1.0, top_k: int | None = None, length_penalty: float = 0.0,
                     seed: int = 0, rank: int = 0, world_size: int = 1, batch_size: int = 256,
                     max_new_tokens: int | None = None, teacher_ckpt=None, chunk: int = 256,
                     overwrite: bool = False, stale: str = "error", stop_after: int | None = None) -> Path:
    """u = teacher(s) for every prompt record; writes JSONL (see the module docstring) and returns its path.

    method: greedy | sample (temperature, top_k, seed) | beam (beam_size, length_penalty).
    A finished file with the same settings is reused as it is (nothing to do); a half-finished one is
    resumed; one made with other settings (another teacher, prompt set, decoding) is an error, or, with
    stale="restart" (a cache: lessons, the main job), is started over. overwrite=True always starts over.
    rank / world_size: this process's share of the prompts (it writes `<out_path>.rank<r>`, see merge_shards).
    stop_after: a test hook that interrupts the run after that many records are written.
    """
    records = _prompt_set(records)
    decoding = decoding_settings(method, beam_size, temperature, top_k, length_penalty)
    mnt = max_new_tokens or default_max_new_tokens(teacher, tok, records)
    settings = {**decoding, "seed": seed if method == "sample" else None, "max_new_tokens": mnt,
                "batch_size": batch_size}

    def label_chunk(part: list[dict], chunk_seed: int) -> list[dict]:
        return label_prompts(teacher, tok, part, decoding, mnt, seed=chunk_seed, batch_size=batch_size)

    return _labelling_run(teacher, tok, records, out_path, settings, label_chunk, rank=rank,
                          world_size=world_size, chunk=chunk, teacher_ckpt=teacher_ckpt, overwrite=overwrite,
                          stale=stale, label=f"generate ({method})", stop_after=stop_after)


def merge_shards(paths, out_path) -> Path:
    """Put the shards of one generation run back together, in prompt order (atomically).

    Every shard must be complete and made with the same settings; together they must hold every prompt
    exactly once. The merged file's sidecar is the shards' without the shard entry.
    """
    paths = [Path(p) for p in paths]
    metas = []
    for p in paths:
        if not p.exists():
            raise ValueError(f"{p}: no such shard")
        meta = read_meta(p)
        if meta is None or not meta.get("complete"):
            raise ValueError(f"{p}: shard is not complete (rerun its rank to finish it)")
        metas.append(meta)
    if any(what_differs(m["settings"], metas[0]["settings"]) for m in metas):
        raise ValueError("the shards were made with different settings: " + ", ".join(map(str, paths)))
    world = {m["shard"]["world_size"] if m.get("shard") else 1 for m in metas}
    ranks = sorted(m["shard"]["rank"] if m.get("shard") else 0 for m in metas)
    if len(world) != 1 or ranks != list(range(world.pop())):
        raise ValueError(f"need one shard for every rank 0..W-1, got ranks {ranks}")
    records = sorted((r for p in paths for r in read_jsonl(p)), key=lambda r: r["prompt_index"])
    n = metas[0]["settings"]["n_prompts"]
    if [r["prompt_index"] for r in records] != list(range(n)):
        raise ValueError(f"the shards hold {len(records)} records, not each of the {n} prompts exactly once")
    write_jsonl(out_path, records)
    meta = {**metas[0], "shard": None, "n_prompts": n, "n_records": n,
            "n_truncated": sum(not r["ended"] for r in records), "merged_from": [str(p) for p in paths]}
    write_meta(out_path, meta)
    return Path(out_path)


# ---------------------------------------------------------------------------------------------------
# Kim & Rush's seq-inter: the beam candidate whose answer is closest to the ground truth's
# ---------------------------------------------------------------------------------------------------


def seq_inter_dataset(teacher, tok, labelled_records, out_path, beam_size: int = 5, *, length_penalty: float = 0.0,
                      batch_size: int = 256, max_new_tokens: int | None = None, rank: int = 0, world_size: int = 1,
                      teacher_ckpt=None, chunk: int = 256, overwrite: bool = False, stale: str = "error") -> Path:
    """Kim & Rush's sequence-level interpolation: beam search keeps the teacher's K best answers, and the
    stored target is the one closest to the ground-truth completion — likely under the teacher AND near
    the reference.

    Closeness, explicitly (seqkd.seq_inter_choice): candidates that ended come first; then the smallest
    answer_distance to the ground truth — the edit distance between the FINAL ANSWERS (world.extract_answer),
    not between the whole texts; a tie goes to the better beam rank (the higher teacher score).
    Kim & Rush used sentence BLEU, a similarity in what matters for translation; here what matters is the
    answer. The surface form is the teacher's own choice, and the reference's form was drawn at random:
    a token edit distance was dominated by it and kept the candidate that copied the reference's form
    (and its wrong label with it). The answer is what the reference knows.
    The record says which rank was kept ("inter_rank", 0 = the beam's best) and its answer distance
    ("inter_distance"; null when no candidate's answer could be read). Note: a wrong ground truth (the
    training set's label noise) still pulls the choice towards a candidate with its wrong answer — the
    reference's answer is trusted here.
    Each record needs a readable ground-truth answer; its "task" field (or world.task_of(prompt)) says
    how to read it.
    """
    records = _prompt_set(labelled_records)
    for i, r in enumerate(records):
        if not isinstance(r.get("completion"), str):
            raise ValueError(f"seq-inter needs ground-truth completions: record {i} (id {r['id']!r}) has none")
        if extract_answer(record_task(r), r["completion"]) is None:
            raise ValueError(f"seq-inter: no final answer can be read from the ground truth of record {i} "
                             f"(id {r['id']!r}): {r['completion']!r}")
    decoding = decoding_settings("beam", beam_size, length_penalty=length_penalty)
    mnt = max_new_tokens or default_max_new_tokens(teacher, tok, records)
    settings = {**decoding, "select": "ended, then answer distance to the ground truth (world.extract_answer), "
                "then beam rank", "format": 2, "seed": None, "max_new_tokens": mnt, "batch_size": batch_size}

    def label_chunk(part: list[dict], chunk_seed: int) -> list[dict]:
        return seq_inter_labels(teacher, tok, part, decoding, mnt, batch_size=batch_size)

    return _labelling_run(teacher, tok, records, out_path, settings, label_chunk, rank=rank,
                          world_size=world_size, chunk=chunk, teacher_ckpt=teacher_ckpt, overwrite=overwrite,
                          stale=stale, label=f"seq-inter (beam {beam_size})")


# ---------------------------------------------------------------------------------------------------
# Step 2: filter, and regenerate what was dropped (rejection sampling)
# ---------------------------------------------------------------------------------------------------


def _read_for_filter(path: Path, verify: bool) -> list[dict]:
    records = []
    for lineno, r in enumerate(read_jsonl(path), start=1):  # blank lines are errors, so line = record number
        for field in ("prompt", "completion"):
            if not isinstance(r.get(field), str):
                raise DatasetError(path, lineno, "missing or not a string", field=field, reason=f"bad_{field}")
        if verify:
            try:
                verify_answer(r["prompt"], "")
            except ValueError as e:
                raise DatasetError(path, lineno, f"{e}; the verifier only knows the prompt world's tasks "
                                   "(use verify=False / --no-verify)", field="prompt", reason="unverifiable") from None
        records.append(r)
    return records


def filter_dataset(in_path, out_path, tok, block_size: int, *, verify: bool = True, drop_truncated: bool = True,
                   dedupe: bool = True, regenerate=None, tries: int = 4, temperature: float = 1.0,
                   top_k: int | None = None, seed: int = 0, max_new_tokens: int | None = None) -> Counter:
    """Curate a generated dataset; returns the counts (also printed as a table and saved beside the output).

    A record is dropped for the first reason that applies:
        truncated  no end token (ended=false)            (drop_truncated)
        empty      an empty completion
        too_long   does not fit a context of block_size  (the student's)
        incorrect  the verifier rejects its answer        (verify)
        duplicate  the same (prompt, completion) was already kept   (dedupe)
    With `regenerate=<teacher model>` every dropped prompt (duplicates aside) is retried by sampling up to
    `tries` answers at `temperature`; the first that passes every check replaces the dropped record
    (rejection sampling, as DeepSeek-R1's distillation data was made). Output keeps the input order.

    Counts: input, kept (passed as they were), one per drop reason, regenerated_ok, regenerate_failed, output.
    Kept records get "verified": true when verify is on; regenerated ones "regenerated": <try number>.
    The report goes to `<out>.report.json`; the sidecar of the input is carried over with a "filter" entry.
    """
    in_path, out_path = Path(in_path), Path(out_path)
    if not in_path.exists():
        raise DatasetError(in_path, None, "no such file", reason="missing_file")
    if tries < 0:
        raise ValueError(f"tries must be >= 0, got {tries}")
    records = _read_for_filter(in_path, verify)

    # Step 2a: check every record (seqkd.sort_out + drop_reason); remember why each dropped one went.
    reasons = sort_out(records, lambda r: drop_reason(r, tok, block_size, verify, drop_truncated), dedupe)
    report = drop_counts(reasons)
    by_task: dict = defaultdict(Counter)
    for r, why in zip(records, reasons):
        by_task[r.get("task", "?")][why or "kept"] += 1
    output = [None if why else ({**r, "verified": True} if verify else dict(r)) for r, why in zip(records, reasons)]

    # Step 2b: rejection sampling (seqkd.rejection_sample) for every dropped prompt, duplicates aside.
    mnt = None
    if regenerate is not None:
        mnt = _regenerate(regenerate, tok, records, reasons, output, report, by_task, block_size=block_size,
                          verify=verify, dedupe=dedupe, tries=tries, temperature=temperature, top_k=top_k, seed=seed,
                          max_new_tokens=max_new_tokens)

    # Step 2c: write the output, the report, the sidecar.
    kept = [r for r in output if r is not None]
    write_jsonl(out_path, kept)
    report["output"] = len(kept)
    settings = {"verify": verify, "drop_truncated": drop_truncated, "dedupe": dedupe, "block_size": block_size,
                "regenerate": regenerate is not None, "tries": tries if regenerate is not None else 0,
                "temperature": temperature if regenerate is not None else None, "top_k": top_k, "seed": seed,
                "max_new_tokens": mnt}
    full = {"input": str(in_path), "output": str(out_path), "settings": settings, "counts": dict(report),
            "by_task": {t: dict(c) for t, c in sorted(by_task.items())}}
    atomic_write_text(report_path(out_path), json.dumps(full, indent=2) + "\n")
    meta = read_meta(in_path) or {}
    write_meta(out_path, {**meta, "filter": {"from": str(in_path), **settings, "counts": dict(report)}})
    print(format_report(report, title=f"filter {in_path.name} -> {out_path.name}"), flush=True)
    return report


def _regenerate(teacher, tok, records, reasons, output, report, by_task, *, block_size, verify, dedupe, tries,
                temperature, top_k, seed, max_new_tokens) -> int:
    """filter_dataset's step 2b: every prompt dropped for a reason worth retrying is sampled again
    (seqkd.rejection_sample) until an answer passes every check; it fills `output`, `report` and `by_task`.
    Returns the max_new_tokens used."""
    check_vocab(tok, teacher)
    retry = [p for p, why in enumerate(reasons) if why in RETRY_REASONS]
    mnt = max_new_tokens or default_max_new_tokens(teacher, tok, [records[p] for p in retry] or records)
    seen = {(r["prompt"], r["completion"]) for r in output if r is not None}
    passes = new_answer_passes(lambda r: drop_reason(r, tok, block_size, verify, True), seen, dedupe)
    print(f"regenerate: sampling up to {tries} answers for each of {len(retry)} dropped prompts", flush=True)
    found = rejection_sample(teacher, tok, [records[p] for p in retry], passes, tries,
                             decoding_settings("sample", temperature=temperature, top_k=top_k), seed, mnt)
    for p, new in zip(retry, found):
        by_task[records[p].get("task", "?")]["regenerated_ok" if new else "regenerate_failed"] += 1
        if new is not None:
            output[p] = {**new, "verified": True} if verify else new
    report["regenerated_ok"] = sum(new is not None for new in found)
    report["regenerate_failed"] = len(retry) - report["regenerated_ok"]
    return mnt


def report_path(out_path) -> Path:
    """`x.jsonl` -> `x.jsonl.report.json` (beside the .meta.json sidecar)."""
    out_path = Path(out_path)
    return out_path.with_name(out_path.name + ".report.json")


def format_report(report: Counter, title: str = "filter") -> str:
    """The counts as a small table: what came in, what was kept, dropped per reason, regenerated."""
    n = max(1, report["input"])
    lines = [title, f"  {'':22s} {'count':>7s} {'of input':>9s}"]
    rows = [("input", "input"), ("kept as is", "kept")]
    rows += [(f"dropped: {r}", r) for r in DROP_REASONS]
    if "regenerated_ok" in report:
        rows += [("regenerated (passed)", "regenerated_ok"), ("regeneration failed", "regenerate_failed")]
    rows.append(("output", "output"))
    for name, key in rows:
        lines.append(f"  {name:22s} {report.get(key, 0):7d} {100 * report.get(key, 0) / n:8.1f}%")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------
# Step 3: the student's side — read the stored data (no teacher), score sequences
# ---------------------------------------------------------------------------------------------------


def load_teacher_data(path, tok, block_size: int, allow_truncated: bool = False) -> list[dict]:
    """Load a stored (s, u) dataset for student SFT: data.load_sft plus one more rule — a record flagged
    ended=false (a cut-off generation) is an error naming its line, unless allow_truncated. Run
    filter_dataset first. This reads a file and nothing else: the teacher is not needed here.
    """
    examples, _ = load_sft(path, tok, block_size)
    if not allow_truncated:
        for lineno, ex in enumerate(examples, start=1):  # load_sft raised on any bad line: line = index + 1
            if ex.get("ended") is False:
                n = sum(e.get("ended") is False for e in examples)
                raise DatasetError(path, lineno, f"a truncated generation (ended=false; {n} in the file): the "
                                   "teacher was cut off before its end token. Filter the file first "
                                   "(minikd filter / filter_dataset)", field="ended", reason="truncated")
    return examples
