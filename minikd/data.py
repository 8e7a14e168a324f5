"""Datasets on disk and batches in memory: JSON Lines in, (inputs, targets) tensors out.

A dataset is a JSON Lines file, one object per line, in the prompt/completion format used across the
ecosystem:

    {"prompt": "12+7=", "completion": "19", "id": "add-0", "task": "add", "source": "teacher"}

`prompt` and `completion` are required strings (the completion non-empty); every other field is
optional and is kept as-is when a file is read and written back. Sequence-level distillation stores
the teacher's answers `u = teacher(s)` exactly like this, as `(s, u)` pairs, and trains on them with
ordinary next-token cross-entropy on the answer tokens only.

Three rules this module keeps:
- **Nothing is silently skipped.** A bad line is a `DatasetError` naming file, line and field. A caller
  may ask for bad records to be dropped instead, and then gets a count per reason.
- **Files are never half-written.** `write_jsonl` writes a temporary file and renames it; long jobs use
  `append_jsonl`, which flushes every line so a crash loses at most the line being written.
- **One masking convention.** `collate` shifts ids into inputs/targets and puts `IGNORE_INDEX` on every
  target that is not an answer token (prompt, template tokens, padding), so the loss sees answers only.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator

import torch

from minikd.runtime import atomic_open, mix_seed

# The target value that losses skip. -100 is F.cross_entropy's default `ignore_index`.
IGNORE_INDEX = -100


class DatasetError(ValueError):
    """A bad dataset file or record. str(error) reads like `data/train.jsonl:17: field 'completion': empty string`.

    `reason` is a short key (e.g. "empty_completion") used to count dropped records.
    """

    def __init__(self, path, line: int | None, message: str, field: str | None = None, reason: str = "bad_record"):
        where = f"{path}:{line}" if line is not None else f"{path}"
        what = f"field '{field}': {message}" if field is not None else message
        super().__init__(f"{where}: {what}")
        self.path, self.line, self.field, self.reason = str(path), line, field, reason


# ---------------------------------------------------------------------------------------------------
# Reading and writing JSON Lines
# ---------------------------------------------------------------------------------------------------


def _scan_jsonl(path) -> Iterator[tuple[int, dict | None, DatasetError | None]]:
    """Yield (line number, record, None) for good lines and (line number, None, error) for bad ones.

    Reading bytes and decoding each line ourselves lets a bad byte become an error with a line number.
    A file may end with a newline; any other blank line is an error (it usually means a broken write).
    """
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield lineno, None, DatasetError(path, lineno, f"not valid UTF-8 ({e.reason})", reason="invalid_utf8")
                continue
            if not text.strip():
                yield lineno, None, DatasetError(path, lineno, "blank line", reason="blank_line")
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as e:
                yield lineno, None, DatasetError(path, lineno, f"invalid JSON: {e.msg} (column {e.colno})",
                                                 reason="invalid_json")
                continue
            if not isinstance(record, dict):
                yield lineno, None, DatasetError(path, lineno, f"expected a JSON object, got {type(record).__name__}",
                                                 reason="not_an_object")
                continue
            yield lineno, record, None


def read_jsonl(path) -> Iterator[dict]:
    """Stream the records of a JSON Lines file, one dict at a time; a bad line raises DatasetError.

    A generator, so a file larger than memory can be read, and an error surfaces at the line it is on.
    """
    for _, record, error in _scan_jsonl(path):
        if error is not None:
            raise error
        yield record


def _json_line(record: dict) -> str:
    if not isinstance(record, dict):
        raise TypeError(f"a JSONL record must be a dict, got {type(record).__name__}")
    # ensure_ascii=False keeps text readable in the file; allow_nan=False refuses NaN/inf, which are not JSON.
    return json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n"


def write_jsonl(path, records: Iterable[dict]) -> int:
    """Write records to `path` atomically and return how many were written.

    The lines go to `<path>.tmp`, which is renamed over `path` only once every record is written. If the
    records iterator raises half-way (a crashed generation job), the old file is left untouched.
    """
    n = 0
    with atomic_open(path) as f:
        for record in records:
            f.write(_json_line(record))
            n += 1
    return n


def append_jsonl(path, record: dict, fsync: bool = False) -> None:
    """Append one record as one line and flush it, so a long job that dies keeps everything written so far.

    `fsync=True` also asks the OS to put it on disk (survives a power cut; slower).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = _json_line(record)  # serialise first: a bad record must not leave half a line behind
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        if fsync:
            os.fsync(f.fileno())


# ---------------------------------------------------------------------------------------------------
# The sidecar: what a dataset was made with
# ---------------------------------------------------------------------------------------------------


def examples_fingerprint(records: list[dict]) -> str:
    """A short hash of WHAT a data set holds: every record's prompt and completion, in order. Two sets of the
    same size from other data get other fingerprints, so a cache keyed by it is never reused for the wrong
    examples merely because there are as many of them."""
    text = json.dumps([[r["prompt"], r.get("completion")] for r in records], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def meta_path(path) -> Path:
    """`data/train.jsonl` -> `data/train.jsonl.meta.json`."""
    path = Path(path)
    return path.with_name(path.name + ".meta.json")


def write_meta(path, meta: dict) -> None:
    """Record how a dataset was made (e.g. {"tokenizer": fingerprint, "teacher": ...}) beside it, atomically."""
    with atomic_open(meta_path(path)) as f:
        json.dump(meta, f, ensure_ascii=False, indent=2, allow_nan=False)
        f.write("\n")


def read_meta(path) -> dict | None:
    """The sidecar of dataset `path` as a dict, or None when the dataset has none."""
    target = meta_path(path)
    return read_json_object(target, reason="invalid_meta") if target.exists() else None


def read_json_object(path, reason: str = "invalid_json") -> dict:
    """A JSON file holding one object (a sidecar, a cached result); anything else is a DatasetError naming it."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(path, None, f"invalid JSON: {e}", reason=reason) from None
    if not isinstance(value, dict):
        raise DatasetError(path, None, f"expected a JSON object, got {type(value).__name__}", reason=reason)
    return value


# ---------------------------------------------------------------------------------------------------
# Loading an SFT dataset: check every record, render it to (ids, mask)
# ---------------------------------------------------------------------------------------------------


def _check_fields(path, lineno: int, record: dict, require_completion: bool) -> None:
    for field in ("prompt", "completion"):
        if field not in record:
            if field == "completion" and not require_completion:
                continue
            raise DatasetError(path, lineno, "missing", field=field, reason=f"missing_{field}")
        if not isinstance(record[field], str):
            raise DatasetError(path, lineno, f"must be a string, got {type(record[field]).__name__}",
                               field=field, reason=f"not_a_string_{field}")
    if "completion" in record and record["completion"] == "":
        raise DatasetError(path, lineno, "empty string", field="completion", reason="empty_completion")


def load_sft(path, tokenizer, block_size: int, drop_bad: bool = False, require_completion: bool = True,
             limit: int | None = None) -> tuple[list[dict], Counter]:
    """Read, check and tokenize a prompt/completion dataset. Returns (examples, dropped).

    Each example is the record plus "ids" and "mask" from `tokenizer.render(prompt, completion)`. A bad
    record (not a JSON object, a missing or non-string prompt/completion, an empty completion, too long for
    the context) raises DatasetError, or with `drop_bad=True` is dropped and counted (reason -> count).

    Training feeds `ids[:-1]` and predicts `ids[1:]`: `block_size + 1` ids fit, more are too long (never
    silently truncated: cutting off the end token would teach the student not to stop). limit: stop after
    that many examples. `require_completion=False` loads a prompt set: `ids = render_prompt(prompt)`, mask 0.
    A sidecar (`<path>.meta.json`) naming another tokenizer fingerprint refuses the whole file.
    """
    meta = read_meta(path)
    if meta is not None and "tokenizer" in meta and meta["tokenizer"] != tokenizer.fingerprint:
        raise DatasetError(meta_path(path), None,
                           f"dataset was made with tokenizer {meta['tokenizer']!r}, the model's tokenizer is "
                           f"{tokenizer.fingerprint!r}; re-tokenize the data or use the matching tokenizer",
                           field="tokenizer", reason="tokenizer_mismatch")

    examples: list[dict] = []
    dropped: Counter = Counter()
    for lineno, record, error in _scan_jsonl(path):
        if limit is not None and len(examples) >= limit:
            break
        try:
            if error is not None:
                raise error
            _check_fields(path, lineno, record, require_completion)
            examples.append(_rendered(path, lineno, record, tokenizer, block_size))
        except DatasetError as e:
            if not drop_bad:
                raise
            dropped[e.reason] += 1
    if dropped:
        warnings.warn(f"{path}: dropped {sum(dropped.values())} bad records: {dict(dropped)}", stacklevel=2)
    return examples, dropped


# ---------------------------------------------------------------------------------------------------
# Batches
# ---------------------------------------------------------------------------------------------------


def _rendered(path, lineno: int, record: dict, tokenizer, block_size: int) -> dict:
    """The record plus "ids" and "mask"; one that does not fit the context is a DatasetError."""
    if "completion" in record:
        ids, mask = tokenizer.render(record["prompt"], record["completion"])
        limit = block_size + 1
    else:
        ids = tokenizer.render_prompt(record["prompt"])
        mask, limit = [0] * len(ids), block_size
    if len(ids) > limit:
        field = "completion" if "completion" in record else "prompt"
        raise DatasetError(path, lineno, f"renders to {len(ids)} tokens, longer than the context "
                           f"(block_size={block_size} holds {limit})", field=field, reason="too_long")
    return {**record, "ids": list(ids), "mask": list(mask)}


def _ids_mask(example) -> tuple[list[int], list[int]]:
    if isinstance(example, dict):
        return example["ids"], example["mask"]
    ids, mask = example
    return ids, mask


def collate(examples, pad_id: int) -> dict[str, torch.Tensor]:
    """Turn (ids, mask) pairs (or dicts with those keys) into a right-padded batch.

        ids     [P] p1 p2 [R] a1 a2 [E]        (P/R/E: prompt, response, end tokens)
        mask     0  0  0   0  1  1   1
        inputs  [P] p1 p2 [R] a1 a2            = ids[:-1]
        targets  -  -  -   a1 a2 [E]           = ids[1:] where mask[1:] == 1, else IGNORE_INDEX (-)

    Shorter rows are padded on the right: inputs with `pad_id`, targets with IGNORE_INDEX. With a causal
    model, padding after a row's end cannot change that row's logits, and its targets are ignored, so
    padding never changes a loss. Returns {"inputs": (B, T-1) long, "targets": (B, T-1) long}, T = longest row.
    """
    pairs = [_ids_mask(e) for e in examples]
    if not pairs:
        raise ValueError("collate got an empty list of examples")
    for i, (ids, mask) in enumerate(pairs):
        if len(ids) != len(mask):
            raise ValueError(f"example {i}: {len(ids)} ids but {len(mask)} mask values")
        if len(ids) < 2:
            raise ValueError(f"example {i}: needs at least 2 ids to make one (input, target) pair, got {len(ids)}")
    T = max(len(ids) for ids, _ in pairs)
    inputs = torch.full((len(pairs), T - 1), pad_id, dtype=torch.long)  # (B, T-1)
    targets = torch.full((len(pairs), T - 1), IGNORE_INDEX, dtype=torch.long)  # (B, T-1)
    for row, (ids, mask) in enumerate(pairs):
        ids_t = torch.tensor(ids, dtype=torch.long)  # (n,)
        keep = torch.tensor(mask[1:], dtype=torch.long) == 1  # (n-1,) the mask moves with the targets
        n = len(ids) - 1
        inputs[row, :n] = ids_t[:-1]
        targets[row, :n] = torch.where(keep, ids_t[1:], IGNORE_INDEX)
    return {"inputs": inputs, "targets": targets}


def check_token_ids(examples: list, vocab_size: int) -> None:
    """Every id of every example is a row of the model's vocabulary, checked once for a whole dataset.
    An id out of range means data tokenized with another tokenizer; the error names the example."""
    for i, ex in enumerate(examples):
        ids = ex["ids"] if isinstance(ex, dict) else ex[0]
        bad = [t for t in ids if not 0 <= t < vocab_size]
        if bad:
            name = f"example {i}" + (f" (id {ex['id']!r})" if isinstance(ex, dict) and "id" in ex else "")
            raise ValueError(f"{name} holds token id {bad[0]}, outside the vocabulary of {vocab_size} tokens "
                             f"(data tokenized with a different tokenizer?)")


class SFTData:
    """Random training batches that depend only on (seed, step).

    `get_batch(step)` draws `batch_size` examples (with replacement, like nanoGPT's get_batch) from a
    generator seeded by (seed, step) alone. So batch 1000 is the same batch whether the run went
    straight through or was stopped at step 600 and resumed: resuming needs no data-loader state.
    """

    def __init__(self, examples: list, pad_id: int, batch_size: int, seed: int = 0, vocab_size: int | None = None):
        if not examples:
            raise ValueError("SFTData needs at least one example")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if vocab_size is not None:
            check_token_ids(examples, vocab_size)  # once per dataset, not in every loss call (a host sync on a GPU)
        self.examples, self.pad_id, self.batch_size, self.seed = examples, pad_id, batch_size, seed

    def __len__(self) -> int:
        return len(self.examples)

    def sample_indices(self, step: int) -> torch.Tensor:
        """The example indices of batch `step`, (batch_size,) long."""
        g = torch.Generator().manual_seed(mix_seed(self.seed, step))
        return torch.randint(len(self.examples), (self.batch_size,), generator=g)

    def get_batch(self, step: int) -> dict[str, torch.Tensor]:
        """Collated batch `step`, plus "index": which examples it holds (to look up stored teacher data)."""
        index = self.sample_indices(step)
        batch = collate([self.examples[i] for i in index.tolist()], self.pad_id)
        batch["index"] = index
        return batch


def batches(examples: list, batch_size: int, pad_id: int) -> Iterator[dict[str, torch.Tensor]]:
    """Every example once, in file order, `batch_size` at a time (the last batch may be smaller): for evaluation."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for start in range(0, len(examples), batch_size):
        batch = collate(examples[start:start + batch_size], pad_id)
        batch["index"] = torch.arange(start, min(start + batch_size, len(examples)))
        yield batch
