"""Word-level (token-level) KD, online and offline: the objectives and the teacher's top-k store.

Word-level KD (Hinton, Vinyals & Dean 2015; Kim & Rush 2016 for sequences), at every answer position t:

    prompt + previous tokens  ->  teacher distribution over the vocabulary
                              ->  student distribution over the vocabulary  ->  KL between them

Two ways to get the teacher's distribution to the student:

- **online** (`word_kd_objective`): the teacher sits in memory next to the student and is run (eval mode,
  no gradient) on every training batch. Kim & Rush's word-level KD on the ground-truth (prompt, answer)
  sequences. Exact, but every step pays for a teacher forward pass and the teacher must fit on the device.
- **offline** (`build_topk_store` -> `topk_objective`): run the teacher ONCE over the training set and
  keep, at every answer position, only its k most likely token ids and their log-probabilities. Training
  then loads the store, never the teacher. The mass outside the top k is DROPPED: `losses.topk_kd_loss`
  renormalises the k stored probabilities to sum to 1 and computes the forward KL over those k ids only.
  With k = V nothing is dropped and offline equals online.

What each way costs (bytes per example, time and memory per step) is measured in minikd/kd_cost.py.

Both ways compare the two distributions id by id, so teacher and student must share ONE tokenizer:
`check_same_tokenizer` refuses two different ones by their fingerprints (ranks, split pattern, specials),
never by vocabulary size: two tokenizers of the same size with other merges give the same id to other
text. A student with its own tokenizer learns from the teacher's text (sequence-level KD) or from the
shape of its distributions (ULD, minikd/uld.py).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Callable

import torch

from minikd.device import full_precision
from minikd.runtime import atomic_write_bytes
from minikd.data import IGNORE_INDEX, batches
from minikd.losses import forward_kl, kd_loss, log_softmax_t, topk_kd_loss
from minikd.tokenizer import describe_fingerprint

STORE_FORMAT = "minikd-topk-v1"
INT16_MAX = 32767
STORE_BATCH = 128  # sequences per teacher forward pass when a store is built


# ---------------------------------------------------------------------------------------------------
# One tokenizer for both, or no word-level KD
# ---------------------------------------------------------------------------------------------------


class TokenizerMismatch(ValueError):
    """Word-level KD asked for between two models that do not share a tokenizer."""


def check_same_tokenizer(teacher_tok, student_tok) -> None:
    """Refuse word-level KD between two tokenizers, each a Tokenizer or a fingerprint (what a checkpoint records).

    Decided by the fingerprints alone: a vocabulary of the same size proves nothing, since id 270 may be
    "Sum" for one tokenizer and "we" for the other; the KL would then compare unrelated tokens, silently.
    """
    fp_t, fp_s = (getattr(t, "fingerprint", t) for t in (teacher_tok, student_tok))
    if fp_t == fp_s:
        return
    teacher, student = (t.describe() if hasattr(t, "describe") else describe_fingerprint(t)
                        for t in (teacher_tok, student_tok))
    raise TokenizerMismatch(f"word-level KD needs one tokenizer for teacher and student, but the teacher's is "
                            f"{teacher} and the student's is {student}: the same id means different text in the "
                            f"two. Distil on text instead: sequence-level KD (re-tokenize the teacher's answers) "
                            f"or ULD (minikd.uld)")


# ---------------------------------------------------------------------------------------------------
# Online: the teacher in the loop
# ---------------------------------------------------------------------------------------------------


def run_teacher(teacher, inputs: torch.Tensor) -> torch.Tensor:
    """The teacher's logits (B, T, V) for a batch of inputs (B, T): eval mode, no gradient, same device.

    eval mode: no dropout, the teacher is a fixed function. no_grad: nothing of the teacher's forward
    pass is kept for backward, and its weights can never be updated by the student's loss. Autocast off:
    the loop runs the student under autocast, but the teacher's logits are the TARGET, computed in float32
    like the offline store's, so online and offline word-level KD learn from the same numbers.
    """
    teacher.eval()
    device = inputs.device
    if next(teacher.parameters()).device != device:
        teacher.to(device)  # the loop moved the batch (and the student) to its device; follow it
    with torch.no_grad(), full_precision(device):
        return teacher(inputs)


def word_kd_objective(teacher, temperature: float = 1.0, alpha: float = 0.5, kl: str = "forward",
                      tokenizers: tuple | None = None) -> Callable:
    """Online word-level KD as an objective for minikd.train.train: fn(model, batch) -> summed loss.

    loss = (1 - alpha) * CE(student, batch targets) + alpha * T^2 * KL(teacher_T || student_T), summed over
    the answer tokens. On ground-truth batches this is Kim & Rush's word-level KD; on teacher-written
    batches it is their "seq-KD + word-KD" combination. The teacher must share the student's tokenizer:
    tokenizers=(teacher's, student's) checks it here, by fingerprint (check_same_tokenizer).
    """
    if tokenizers is not None:
        check_same_tokenizer(*tokenizers)

    def objective(model, batch):
        t_logits = run_teacher(teacher, batch["inputs"])  # (B, T, V), no grad
        s_logits = model(batch["inputs"])  # (B, T, V)
        return kd_loss(s_logits, t_logits, batch["targets"], temperature=temperature, alpha=alpha,
                       reduction="sum", kl=kl)
    return objective


def kl_grad_norms(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
                  temperatures=(1.0, 2.0, 4.0, 8.0)) -> list[dict]:
    """Why kd_loss multiplies the KL by T^2: the gradient norm of the soft term w.r.t. the student's logits.

    d KL(p_t^T || p_s^T) / d z_s = (p_s^T - p_t^T) / T, and once T is large next to the spread of the
    logits, softmax(z / T) ~ (1 + z / T) / V, so p_s^T - p_t^T shrinks as 1/T too: without T^2 the pull
    falls as 1/T^2, with it it tends to a constant. (At low T, for peaked logits, only roughly.)
    Returns [{"T", "with_t2", "without_t2"}] (the norm of the whole (B, T, V) gradient, summed loss).
    """
    rows = []
    for T in temperatures:
        s = student_logits.detach().float().clone().requires_grad_(True)
        loss = kd_loss(s, teacher_logits.detach(), targets, temperature=T, alpha=1.0, reduction="sum")
        (grad,) = torch.autograd.grad(loss, s)  # (B, T, V)
        # alpha=1 leaves only T^2 * KL; the KL alone is that loss / T^2, and so is its gradient.
        rows.append({"T": float(T), "with_t2": grad.norm().item(), "without_t2": grad.norm().item() / T**2})
    return rows


@torch.no_grad()
def kl_by_example(teacher, student, examples: list, pad_id: int, temperature: float = 1.0,
                  batch_size: int = 128) -> list[tuple[float, int]]:
    """(KL(teacher || student) summed over the answer positions, number of answer positions) for each
    example, in order: how far the student's distributions are from the teacher's where it matters."""
    student.eval()
    device = next(student.parameters()).device
    rows = []
    for batch in batches(examples, batch_size, pad_id):  # in order: rows come out example by example
        inputs, targets = batch["inputs"].to(device), batch["targets"].to(device)
        keep = targets != IGNORE_INDEX  # (B, T)
        kl = forward_kl(run_teacher(teacher, inputs), student(inputs), temperature) * keep  # (B, T)
        rows += zip(kl.sum(dim=1).tolist(), keep.sum(dim=1).tolist())
    return rows


def mean_kl(teacher, student, examples: list, pad_id: int, temperature: float = 1.0,
            batch_size: int = 128) -> float:
    """KL(teacher || student) per answer token, averaged over all answer tokens of `examples`
    (0 = the student predicts exactly like the teacher)."""
    rows = kl_by_example(teacher, student, examples, pad_id, temperature, batch_size)
    return sum(kl for kl, _ in rows) / max(sum(n for _, n in rows), 1)


# ---------------------------------------------------------------------------------------------------
# Offline: a store of the teacher's top-k at every answer position
# ---------------------------------------------------------------------------------------------------


class TopkStoreError(ValueError):
    """A top-k store that is missing, unreadable, or made for other data / another tokenizer."""


def ids_dtype_for(vocab_size: int) -> torch.dtype:
    """int16 (2 bytes) when every id fits (V <= 32,767; ours is a few hundred), else int32 (4 bytes).

    Ids are half of a top-k store's bytes, so the narrower type halves them. torch has no general
    uint16, so a 50k-token GPT-2 vocabulary needs int32.
    """
    return torch.int16 if vocab_size <= INT16_MAX else torch.int32


def answer_positions(example) -> int:
    """Positions the loss is computed on for one example: where mask[1:] == 1 (the targets that count)."""
    mask = example["mask"] if isinstance(example, dict) else example[1]
    return int(sum(mask[1:]))


@torch.no_grad()
def teacher_topk(teacher, examples: list, pad_id: int, k: int, temperature: float,
                 logprob_dtype: torch.dtype = torch.float16) -> tuple[torch.Tensor, torch.Tensor]:
    """The teacher's k most likely ids and their log softmax(z / T) at every answer position of
    `examples`, example by example in position order: two (N, k) tensors on the CPU, most likely first."""
    device = next(teacher.parameters()).device
    all_ids, all_lp = [], []
    for batch in batches(examples, STORE_BATCH, pad_id):  # in order: rows come out example by example
        inputs, targets = batch["inputs"].to(device), batch["targets"].to(device)
        logp = log_softmax_t(run_teacher(teacher, inputs), temperature)  # (B, T, V) float32
        top_lp, top_ids = logp[targets != IGNORE_INDEX].topk(k, dim=-1)  # (n, V) -> (n, k), (n, k)
        all_ids.append(top_ids.cpu().to(ids_dtype_for(teacher.config.vocab_size)))
        all_lp.append(top_lp.cpu().to(logprob_dtype))
    return torch.cat(all_ids), torch.cat(all_lp)


def store_device(teacher) -> str:
    """Where a store's targets were computed: the teacher's device type, always in float32 (run_teacher)."""
    return f"{next(teacher.parameters()).device.type}/fp32"


def build_topk_store(teacher, examples: list, pad_id: int, k: int, temperature: float, path,
                     fingerprint: str, logprob_dtype: torch.dtype = torch.float16) -> dict:
    """Run the teacher once over `examples` and save its top-k at every answer position to ONE file.

    Layout (ragged, answer positions only — prompt and padding positions are never stored):
        ids       (N, k)  int16/int32   the k most likely token ids, most likely first
        logprobs  (N, k)  float16       log softmax(z / temperature) at those ids (NOT renormalised)
        offsets   (n_examples + 1,)     example i owns rows offsets[i] : offsets[i+1], in position order
    with N = all answer positions of all examples, and k, temperature, fingerprint, vocab_size,
    n_examples and device (store_device) recorded beside them. Returns the store dict (as `load_topk_store` would).
    `logprob_dtype=torch.float32` keeps full precision (used to check offline == online exactly).
    """
    vocab_size = teacher.config.vocab_size
    if not 1 <= k <= vocab_size:
        raise ValueError(f"k must be between 1 and the vocabulary size {vocab_size}, got {k}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not examples:
        raise ValueError("build_topk_store needs at least one example")
    ids, logprobs = teacher_topk(teacher, examples, pad_id, k, temperature, logprob_dtype)  # (N, k) each
    counts = torch.tensor([answer_positions(e) for e in examples])  # (n_examples,)
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])  # (n_examples + 1,)
    if ids.shape[0] != int(offsets[-1]):  # the collate mask and the examples' masks disagree
        raise RuntimeError(f"stored {ids.shape[0]} positions but the masks count {int(offsets[-1])}")
    store = {"format": STORE_FORMAT, "ids": ids, "logprobs": logprobs, "offsets": offsets, "k": int(k),
             "temperature": float(temperature), "fingerprint": str(fingerprint), "vocab_size": int(vocab_size),
             "n_examples": len(examples), "device": store_device(teacher)}
    buf = io.BytesIO()
    torch.save(store, buf)
    atomic_write_bytes(path, buf.getvalue())  # a reader never sees half a store
    return store


def load_topk_store(path, expect_fingerprint: str | None = None, expect_examples=None,
                    expect_device: str | None = None) -> dict:
    """Read a top-k store and check it fits; every failure is one clear TopkStoreError.
    expect_device: the device type and dtype its targets must come from (store_device), e.g. "cuda/fp32".

    expect_examples: the dataset the store will be used with — an int (its length) or the list of
    examples, in which case every example's number of answer positions is checked as well.
    """
    path = Path(path)
    if not path.exists():
        raise TopkStoreError(f"{path}: no such top-k store (build it with build_topk_store)")
    try:
        store = torch.load(path, map_location="cpu", weights_only=True)  # never runs pickled code
    except Exception as e:
        raise TopkStoreError(f"{path}: not a readable top-k store (truncated or corrupted?): "
                             f"{type(e).__name__}") from None
    needed = ("ids", "logprobs", "offsets", "k", "temperature", "fingerprint", "vocab_size", "n_examples")
    if not isinstance(store, dict) or store.get("format") != STORE_FORMAT or any(k not in store for k in needed):
        raise TopkStoreError(f"{path}: not a minikd top-k store (format {STORE_FORMAT!r} with keys {needed})")
    if expect_fingerprint is not None and store["fingerprint"] != expect_fingerprint:
        raise TopkStoreError(f"{path}: made with tokenizer {store['fingerprint']}, but the tokenizer in use "
                             f"is {expect_fingerprint}: the stored ids mean other tokens")
    if expect_device is not None and store.get("device") != expect_device:
        raise TopkStoreError(f"{path}: the teacher's targets were computed on {store.get('device')}, "
                             f"but this run's teacher is on {expect_device}: rebuild the store")
    if expect_examples is not None:
        n = expect_examples if isinstance(expect_examples, int) else len(expect_examples)
        if store["n_examples"] != n:
            raise TopkStoreError(f"{path}: holds {store['n_examples']} examples but the dataset has {n}: "
                                 f"built from other data (rebuild the store)")
        if not isinstance(expect_examples, int):
            counts = store["offsets"].diff().tolist()
            for i, ex in enumerate(expect_examples):
                if counts[i] != answer_positions(ex):
                    raise TopkStoreError(f"{path}: example {i} has {answer_positions(ex)} answer positions in "
                                         f"the dataset but {counts[i]} in the store: built from other data")
    return store


def gather_topk(store: dict, index: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The stored rows for a batch, laid out like its targets: index (B,), targets (B, T) -> two (B, T, k).

    Row b of the batch is example index[b]; its j-th answer position (targets != IGNORE_INDEX, in order)
    gets that example's stored row offsets[index[b]] + j. Other positions hold id 0 / log-prob 0, which
    the loss never reads. Computed where the targets are (the store's tensors there too: store_on), with
    no Python loop and one host sync, for the check. The stored dtypes are kept (int16 / fp16).
    """
    offsets, n_examples = store["offsets"], len(store["offsets"]) - 1
    index = index.to(targets.device)
    keep = targets != IGNORE_INDEX  # (B, T)
    safe = index.clamp(0, n_examples - 1)  # (B,) the check below reports an index out of range
    starts, stored = offsets[safe], offsets[safe + 1] - offsets[safe]  # (B,), (B,)
    if not bool(((index == safe) & (keep.sum(dim=1) == stored)).all()):
        _gather_error(store, index.cpu(), keep.sum(dim=1).cpu(), stored.cpu())
    rows = (starts[:, None] + keep.cumsum(dim=1) - 1)[keep]  # (n,) the stored row of every answer position
    k = store["ids"].shape[1]
    ids = torch.zeros(*targets.shape, k, dtype=store["ids"].dtype, device=targets.device)  # (B, T, k)
    logprobs = torch.zeros(*targets.shape, k, dtype=store["logprobs"].dtype, device=targets.device)  # (B, T, k)
    ids[keep] = store["ids"][rows]  # boolean-mask order = row by row, position by position
    logprobs[keep] = store["logprobs"][rows]
    return ids, logprobs


def _gather_error(store: dict, index: torch.Tensor, have: torch.Tensor, stored: torch.Tensor) -> None:
    """Name the first batch row that does not fit the store (an example it does not hold, or other data)."""
    n_examples = len(store["offsets"]) - 1
    if int(index.max()) >= n_examples or int(index.min()) < 0:
        raise TopkStoreError(f"batch asks for example {int(index.max())} but the store holds {n_examples} examples")
    b = int((have != stored).nonzero()[0])
    raise TopkStoreError(f"batch row {b} (example {int(index[b])}) has {int(have[b])} answer positions "
                         f"but the store has {int(stored[b])}: the store was built from other data")


def store_on(store: dict, device, placed: dict) -> dict:
    """The store with its tensors (ids, logprobs, offsets) on `device`, copied there once and kept in
    `placed`: an objective gathers every micro-batch's rows on the device, never through the host."""
    device = torch.device(device)
    if device not in placed:
        placed[device] = {**store, **{key: store[key].to(device) for key in ("ids", "logprobs", "offsets")}}
    return placed[device]


def topk_objective(store: dict, temperature: float | None = None, alpha: float = 0.5) -> Callable:
    """Offline word-level KD from a top-k store: fn(model, batch) -> summed loss. No teacher anywhere.

    The batch must carry "index" (SFTData and data.batches add it): which examples its rows are.
    temperature None = the one the store was taken at. Another T' re-tempers the stored log-probs:
    log p_T(v) = z_v / T - const, so (T / T') * log p_T(v) = z_v / T' - const', and after renormalising
    over the top k that is exactly the teacher's top-k distribution at T' (up to fp16 rounding).
    The mass outside the top k is dropped and the k probabilities renormalised (losses.topk_kd_loss).
    """
    t_store = store["temperature"]
    T = t_store if temperature is None else float(temperature)
    if not T > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")

    placed: dict = {}  # the store on the training device, copied there once

    def objective(model, batch):
        if "index" not in batch:
            raise ValueError("topk_objective needs batch['index'] (which examples the batch holds); "
                             "use SFTData.get_batch or data.batches")
        logits = model(batch["inputs"])  # (B, T, V)
        if store["vocab_size"] != logits.shape[-1]:  # the ids' range, checked once for the store (no host sync)
            raise ValueError(f"vocabulary mismatch: the store's ids index {store['vocab_size']} tokens, the "
                             f"student has {logits.shape[-1]}")
        on_device = store_on(store, batch["targets"].device, placed)
        ids, logprobs = gather_topk(on_device, batch["index"], batch["targets"])  # (B, T, k) each, on the device
        logprobs = logprobs.float() * (t_store / T)  # re-temper (a no-op when T is the store's)
        return topk_kd_loss(logits, ids, logprobs, batch["targets"], temperature=T, alpha=alpha, reduction="sum")
    return objective


def topk_mass(store: dict) -> float:
    """Mean probability mass (at the store's temperature) the top k hold; 1 - this is what is dropped."""
    return float(store["logprobs"].float().exp().sum(dim=-1).mean())
