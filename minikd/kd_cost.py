"""What word-level KD costs: bytes on disk per example, time and memory per training step.

Word-level KD (Hinton, Vinyals & Dean 2015, as Kim & Rush 2016 apply it to sequences) needs the
teacher's distribution at every answer position. Either the teacher runs next to the student on every
batch (online), or its distributions are stored once — in minikd, the top k per position
(minikd.word_kd) — and the student trains from the store (offline). Sequence-level KD stores only the
teacher's text. Kim & Rush argue from this cost; this module measures it on our data:

- `storage_costs`: bytes per example of full logits (fp32 / fp16), of the top k (ids + fp16 log-probs)
  and of the answer's text — computed from the counts — plus the size of a real top-k file (measured);
- `step_costs`: time per optimizer step of plain SFT, online word-KD and offline top-k KD on the SAME
  batches, interleaved repeat by repeat (repeat i of each method can be paired: same batch, same
  moment of a busy machine); the teacher signal each step reads, the teacher weights it must hold,
  and on CUDA the memory the step allocates at its peak.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Callable

import torch

from minikd.device import synchronize
from minikd.train import TrainConfig, accumulate_gradients, make_optimizer, sft_objective
from minikd.word_kd import answer_positions, ids_dtype_for, load_topk_store, topk_objective, word_kd_objective

# ---------------------------------------------------------------------------------------------------
# Storage: bytes per example
# ---------------------------------------------------------------------------------------------------


def answer_text(example, tokenizer=None) -> str:
    """The answer of one example: its "completion" field, or its answer ids decoded (end token left out)."""
    if isinstance(example, dict) and "completion" in example:
        return example["completion"]
    ids, mask = (example["ids"], example["mask"]) if isinstance(example, dict) else example
    if tokenizer is None:
        raise ValueError("examples without a 'completion' field need a tokenizer to decode the answer")
    return tokenizer.decode([i for i, m in zip(ids, mask) if m and i != tokenizer.end_id])


def measured_store_row(store_path) -> dict:
    """The size of a real top-k file on disk, per example (it also holds offsets and metadata)."""
    store = load_topk_store(store_path)
    size = Path(store_path).stat().st_size
    return {"what": f"top-{store['k']} store file (measured)", "bytes_per_example": size / store["n_examples"],
            "total_bytes": size, "how": f"file size on disk / {store['n_examples']} examples"}


def storage_costs(examples: list, vocab_size: int, ks=(1, 5, 20), tokenizer=None,
                  store_path=None) -> list[dict]:
    """Bytes per example (mean over `examples`) for each way of storing the teacher's signal.

    Rows: full logits fp32 / fp16 (answer positions x V x 4 or 2), top-k (answer positions x k x
    (id bytes + 2 for an fp16 log-prob)), and the answer's text in UTF-8 (what sequence-level KD
    stores). These are computed from the counts. `store_path` adds a MEASURED row (measured_store_row).
    Each row: {"what", "bytes_per_example", "total_bytes", "how"}.
    """
    if not examples:
        raise ValueError("storage_costs needs at least one example")
    n = len(examples)
    positions = sum(answer_positions(e) for e in examples)  # answer positions in the whole set
    id_bytes = torch.empty(0, dtype=ids_dtype_for(vocab_size)).element_size()
    rows = [("full logits fp32", positions * vocab_size * 4, f"positions x V={vocab_size} x 4 B"),
            ("full logits fp16", positions * vocab_size * 2, f"positions x V={vocab_size} x 2 B")]
    for k in ks:
        rows.append((f"top-{k} (ids + fp16 log-probs)", positions * k * (id_bytes + 2),
                     f"positions x k={k} x ({id_bytes} B id + 2 B log-prob)"))
    text = sum(len(answer_text(e, tokenizer).encode("utf-8")) for e in examples)
    rows.append(("sequence text (seq-KD)", text, "UTF-8 bytes of the completion"))
    out = [{"what": w, "bytes_per_example": b / n, "total_bytes": b, "how": h} for w, b, h in rows]
    if store_path is not None:
        out.append(measured_store_row(store_path))
    return out


# ---------------------------------------------------------------------------------------------------
# Training: time and memory per step
# ---------------------------------------------------------------------------------------------------


def cost_methods(teacher, store: dict, temperature: float, alpha: float) -> dict[str, Callable]:
    """The three objectives compared: plain SFT, online word-KD (teacher in the loop), offline top-k KD."""
    return {"plain SFT": sft_objective,
            "online word-KD": word_kd_objective(teacher, temperature, alpha),
            f"offline top-{store['k']} KD": topk_objective(store, temperature, alpha)}


def teacher_signal_bytes(method: str, batch: dict, vocab_size: int, store: dict) -> int:
    """Bytes of teacher tensors one step reads for its loss: online the logits B x T x V in fp32,
    offline the gathered top-k ids + log-probs B x T x k in the stored dtypes, SFT none."""
    cells = batch["inputs"].numel()  # B x T
    if method == "plain SFT":
        return 0
    if method == "online word-KD":
        return cells * vocab_size * 4
    return cells * store["k"] * (store["ids"].element_size() + store["logprobs"].element_size())


def timed_step(student, optimizer, objective: Callable, batch: dict, dev: torch.device) -> tuple[float, int | None]:
    """One optimizer step (forward, backward, update): (seconds, peak bytes it allocated or None).

    The peak is torch.cuda.max_memory_allocated during the step minus what was allocated before it:
    activations, gradients and (online) the teacher's logits. CPU and MPS keep no such counter: None."""
    cuda = dev.type == "cuda"
    synchronize(dev)  # the clock measures this step's work, not its queueing (CUDA, MPS)
    if cuda:
        before = torch.cuda.memory_allocated(dev)
        torch.cuda.reset_peak_memory_stats(dev)
    t0 = time.perf_counter()
    accumulate_gradients(student, batch, objective)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    synchronize(dev)
    seconds = time.perf_counter() - t0
    return seconds, (torch.cuda.max_memory_allocated(dev) - before) if cuda else None


def step_costs(make_student: Callable, teacher, store: dict, batch_list: list[dict], temperature: float = 1.0,
               alpha: float = 0.5, device: str = "cpu", seed: int = 0) -> list[dict]:
    """Time plain SFT, online word-KD and offline top-k KD, one step each on every batch of `batch_list`.

    make_student() -> a fresh student, called after torch.manual_seed(seed): all start from the same
    weights. batch_list[0] warms up (allocations, kernel choice) and is not timed; on every later batch
    each method takes one step, in an order that rotates with the repeat, so ms_by_repeat[i] of two
    methods are paired (same batch, same moment). Rows: {"method", "ms_per_step" (median),
    "ms_by_repeat", "teacher_signal_bytes" (mean per timed step), "teacher_weight_bytes" (online only),
    "step_peak_bytes" (CUDA: the largest over the timed steps; None elsewhere)}.
    """
    if len(batch_list) < 2:
        raise ValueError("step_costs needs a warm-up batch and at least one batch to time")
    dev = torch.device(device)
    methods = cost_methods(teacher.to(dev), store, temperature, alpha)
    names = list(methods)
    runs = {}
    for name in names:
        torch.manual_seed(seed)  # every method starts from the same student weights
        student = make_student().to(dev).train()
        runs[name] = (student, make_optimizer(student, TrainConfig()))
    measured = {name: [] for name in names}  # name -> [(seconds, peak)] per timed repeat
    for i, batch in enumerate(batch_list):
        batch = {k: v.to(dev) for k, v in batch.items()}
        for name in names[i % len(names):] + names[:i % len(names)]:  # rotate who goes first
            result = timed_step(*runs[name], methods[name], batch, dev)
            if i > 0:
                measured[name].append(result)
    return [cost_row(name, measured[name], batch_list[1:], teacher, store) for name in names]


def cost_row(name: str, measured: list[tuple[float, int | None]], timed: list[dict], teacher, store: dict) -> dict:
    """One method's row of step_costs from its timed steps."""
    ms = [1000 * seconds for seconds, _ in measured]
    peaks = [peak for _, peak in measured if peak is not None]
    signal = statistics.mean(teacher_signal_bytes(name, b, teacher.config.vocab_size, store) for b in timed)
    weights = sum(p.numel() * p.element_size() for p in teacher.parameters())
    return {"method": name, "ms_per_step": statistics.median(ms), "ms_by_repeat": ms,
            "teacher_signal_bytes": int(signal),
            "teacher_weight_bytes": weights if name == "online word-KD" else 0,
            "step_peak_bytes": max(peaks) if peaks else None}
