"""The one training loop. Every objective in minikd (masked SFT, token-level KD online or offline,
sequence-level KD, their mix) is a function this loop calls; nothing else about training changes.

An objective is `fn(model, batch) -> loss summed over the answer tokens of the batch`. The loop divides
by the number of answer tokens in the whole optimizer step (all micro-batches together), so gradient
accumulation gives exactly the gradient of one big batch, whatever the micro-batches' lengths.
Micro-batches hold rows of similar length, each trimmed to its own longest row (`micro_batches`): less
padding to compute on, the same gradient.

Under torchrun (`torchrun --nproc_per_node N -m minikd train ...`) the same loop is data-parallel (DDP):
every rank draws the same global batch and keeps its slice of the rows; the loss is still divided by the
answer tokens of the WHOLE global batch (the ranks' counts are summed), so N ranks take exactly the step
one process would take. Checkpoints and progress lines come from rank 0. The distributed parts are the
small helpers at the end of the loop's section (data_parallel, my_rows, ...); in one process they do nothing.

Reading order: TrainConfig -> get_lr -> make_optimizer -> train (numbered steps) -> checkpoints.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import pickle
import re
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable

import torch
from torch.nn.parallel import DistributedDataParallel

from minikd import ranks
from minikd.device import DevicePolicy, device_policy, get_device
from minikd.runtime import atomic_write_bytes, what_differs
from minikd.data import IGNORE_INDEX
from minikd.losses import masked_nll
from minikd.model import GPT, GPTConfig

Batch = dict  # str -> Tensor; at least "inputs" (B, T) and "targets" (B, T) with IGNORE_INDEX off the answer


@dataclass
class TrainConfig:
    steps: int = 1000  # optimizer steps
    lr: float = 3e-3  # peak learning rate, reached after warmup
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    warmup: int = 50  # linear warmup steps
    weight_decay: float = 0.1  # AdamW decay on matrices only (not on biases, LayerNorms)
    betas: tuple = (0.9, 0.99)  # AdamW betas
    grad_clip: float = 1.0  # clip the global gradient norm to this (0 = off)
    grad_accum: int = 1  # split every batch into this many micro-batches
    length_groups: int = 1  # micro-batches of similar-length rows, each padded only to its longest row: same gradient
    device: str = "auto"  # cuda > mps > cpu, or a name
    precision: str = "auto"  # "auto" (minikd.device's policy: bf16 / fp16 / fp32 by card), "fp32", "bf16", "fp16"
    compile: bool = False  # torch.compile the model (faster on GPU, slow to start)
    seed: int = 0  # seeds dropout and anything random inside the loop
    log_every: int = 50  # progress line every this many steps (0 = quiet)
    eval_every: int = 0  # call eval_fn every this many steps, its numbers join that step's history row (0 = at the end)
    ckpt_path: str | None = None  # where to save a checkpoint (None = never)
    ckpt_every: int = 0  # save every this many steps (0 = only at the end)
    resume: bool = False  # continue from ckpt_path if it exists (made by the same settings: check_same_run)
    csv_path: str | None = None  # write the history as CSV here


def get_lr(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to cfg.lr, then cosine decay to cfg.lr * cfg.min_lr_ratio at the last step."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    cosine = 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))  # 1 -> 0
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine)


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on 2-D weights (matmuls, embeddings), none on biases and LayerNorm gains."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # foreach: one fused kernel launch per parameter group instead of one per tensor (the default too).
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, foreach=True)


def sft_objective(model, batch: Batch) -> torch.Tensor:
    """Masked SFT: -log p(answer | prompt), summed over answer tokens (the student step of the offline pipeline)."""
    return masked_nll(model(batch["inputs"]), batch["targets"], reduction="sum")


# What a resumed run may change: where and how often it prints, evaluates and saves, and on what device.
# Every other TrainConfig field shapes the weights, so it must be the checkpoint's.
# (Device type and dtype may not change either: train() records them as meta["device"], compared like any meta.)
FREE_ON_RESUME = ("device", "precision", "compile", "log_every", "eval_every", "ckpt_path", "ckpt_every", "resume",
                  "csv_path")


class TrainingError(RuntimeError):
    """The run cannot go on (a NaN loss, a checkpoint that does not fit)."""


def train(model: GPT, get_batch: Callable[[int], Batch], objective: Callable = sft_objective,
          cfg: TrainConfig | None = None, eval_fn: Callable | None = None,
          fingerprint: str | None = None, meta: dict | None = None) -> list[dict]:
    """Train `model` for cfg.steps optimizer steps; return the history, one dict per step (loss, lr, grad norm,
    speed; eval_fn(model)'s numbers on evaluated steps). get_batch(step) must depend only on the step (and a
    seed), so a resumed run sees the batches an uninterrupted one would. fingerprint (the tokenizer's) and
    meta (objective, data, ...) go into checkpoints; resuming checks them and cfg (check_same_run)."""
    cfg = cfg or TrainConfig()
    policy = device_policy(cfg.device, cfg.precision)  # Step 1: device, dtype, optimizer (minikd.device)
    meta = {**(meta or {}), "device": policy.key}  # a run continues on the device type and dtype it began on
    device, optimizer, autocast, fwd_model, scaler = setup(model, cfg, policy)
    start_step, history = resume_or_seed(model, optimizer, cfg, fingerprint, meta, scaler)  # Step 2
    model.train()
    t0, tokens_seen = time.perf_counter(), 0
    for step in range(start_step, cfg.steps):  # Step 3: the loop
        lr = set_lr(optimizer, get_lr(step, cfg))
        batch = get_batch(step)  # the step's global batch (under DDP every rank draws the same one)
        tokens_seen += batch["inputs"].numel()
        batch = my_rows(batch, device, policy.non_blocking)  # this rank's rows (all in one process), on the device
        loss = accumulate_gradients(fwd_model, batch, objective, max(cfg.grad_accum, cfg.length_groups), autocast,
                                    scaler)
        if not math.isfinite(loss):
            raise TrainingError(f"loss is {loss} at step {step}: stopping (try a lower lr, currently {lr:.2e}, "
                                "or check the batch)")
        grad_norm = optimizer_step(model, optimizer, cfg.grad_clip, scaler)
        # Step 4: record every step (a curve needs every point), evaluate, print, save.
        done, elapsed = step + 1, time.perf_counter() - t0
        row = {"step": done, "loss": loss, "lr": lr, "grad_norm": grad_norm,
               "tokens_per_s": tokens_seen / elapsed, "elapsed_s": elapsed}
        if eval_fn is not None and due(done, cfg.eval_every, cfg.steps):
            row.update(evaluate_now(model, eval_fn))
        history.append(row)
        if cfg.log_every and ranks.is_main() and due(done, cfg.log_every, cfg.steps):
            print(progress_line(row, cfg.steps, (cfg.steps - done) * elapsed / (done - start_step)), flush=True)
        if cfg.ckpt_path and due(done, cfg.ckpt_every, cfg.steps):
            checkpoint(cfg, model, done, fingerprint, optimizer, history, meta, scaler)
    model.eval()
    if cfg.csv_path and ranks.is_main():
        write_history_csv(cfg.csv_path, history)
    return history


def setup(model: GPT, cfg: TrainConfig, policy: DevicePolicy | None = None):
    """Move the model to its device; the optimizer; autocast and GradScaler as the device policy says
    (minikd.device: bf16 where native, fp16 + GradScaler on older CUDA cards, float32 on MPS and CPU);
    the forward model: DDP-wrapped under torchrun (data_parallel), compiled when cfg.compile.
    Returns (device, optimizer, autocast context, forward model, GradScaler (disabled unless fp16))."""
    policy = policy or device_policy(cfg.device, cfg.precision)
    model.to(policy.device)
    scaler = torch.amp.GradScaler(policy.device.type, enabled=policy.grad_scaler)  # nanoGPT's pattern
    forward = data_parallel(model, policy.device)
    forward = torch.compile(forward) if cfg.compile else forward
    return policy.device, make_optimizer(model, cfg), policy.autocast(), forward, scaler


def set_lr(optimizer, lr: float) -> float:
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr


def due(done: int, every: int, steps: int) -> bool:
    """Is something that happens every `every` steps (0 = only at the end) due after `done` steps?"""
    return (every > 0 and done % every == 0) or done == steps


def optimizer_step(model, optimizer, grad_clip: float, scaler=None) -> float:
    """Clip the gradient norm (0 = no clipping), update the weights, clear the gradients; return the norm.
    With an fp16 GradScaler the gradients are unscaled first (clipping sees their true size), and a step
    whose gradients overflowed is skipped while the scale shrinks (scaler.step / scaler.update)."""
    if scaler is not None:
        scaler.unscale_(optimizer)  # a no-op when the scaler is disabled
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip) if grad_clip > 0 else torch.tensor(0.0)
    if scaler is not None:
        scaler.step(optimizer)  # optimizer.step(), unless the gradients hold inf / NaN
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(grad_norm)


@torch.no_grad()
def evaluate_now(model, eval_fn: Callable) -> dict:
    """eval_fn(model) with the model in eval mode (no dropout), then back to training mode."""
    model.eval()
    out = eval_fn(model)
    model.train()
    return out


def progress_line(row: dict, steps: int, eta: float) -> str:
    """One line per log_every steps: loss, lr, speed, time left, and any evaluated numbers."""
    extra = "".join(f" | {k} {v:.3f}" for k, v in row.items()
                    if k not in ("step", "loss", "lr", "grad_norm", "tokens_per_s", "elapsed_s")
                    and isinstance(v, (int, float)))
    return (f"step {row['step']:5d}/{steps} | loss {row['loss']:.4f} | lr {row['lr']:.2e} | "
            f"{row['tokens_per_s']:,.0f} tok/s | ETA {eta:4.0f}s{extra}")


def resume_or_seed(model, optimizer, cfg: TrainConfig, fingerprint: str | None, meta: dict | None, scaler=None):
    """(start step, history so far): from cfg.ckpt_path when cfg.resume and it exists (weights, optimizer
    state, GradScaler and RNGs restored, after check_same_run), else (0, []) with torch seeded by cfg.seed.
    On CUDA the same RNG state replays the same dropout masks, but the same numbers after resume also
    need deterministic kernels (torch.use_deterministic_algorithms; tests/test_cuda.py resumes that way)."""
    if not (cfg.resume and cfg.ckpt_path and Path(cfg.ckpt_path).exists()):
        torch.manual_seed(cfg.seed)  # seeds every CUDA device too
        return 0, []
    ckpt = load_checkpoint(cfg.ckpt_path, expect_fingerprint=fingerprint, expect_config=model.config)
    check_same_run(cfg.ckpt_path, ckpt, cfg, meta)
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    if scaler is not None and "scaler" in ckpt:
        scaler.load_state_dict(ckpt["scaler"])
    torch.set_rng_state(rank_rng(ckpt))  # dropout continues with the masks the run would have drawn
    if ckpt.get("cuda_rng_ranks") and torch.cuda.is_available():
        torch.cuda.set_rng_state(rank_rng(ckpt, "cuda_rng_ranks"))  # this rank's GPU's dropout masks
    if ranks.is_main():
        print(f"resumed from {cfg.ckpt_path} at step {ckpt['step']} of {cfg.steps}")
    return ckpt["step"], list(ckpt.get("history", []))


def accumulate_gradients(model, batch: Batch, objective, grad_accum: int = 1,
                         autocast=contextlib.nullcontext(), scaler=None) -> float:
    """Backward over `grad_accum` micro-batches (micro_batches); return the step's loss (mean per answer token).

    Each micro-batch's summed loss is divided by the answer tokens of the WHOLE batch, so the summed
    gradients equal those of one big batch even when micro-batches hold different numbers of answer tokens.
    Under DDP the whole batch is every rank's rows: the count is summed over the ranks, and multiplied back
    by their number W because DDP averages the ranks' gradients (each rank: its summed loss * W / count).
    """
    n_ranks = ddp_ranks(model)  # 1 unless DDP spreads the step over several ranks
    n_answer = global_sum(n_ranks, int((batch["targets"] != IGNORE_INDEX).sum()))  # the whole step's answer tokens
    denom = max(n_answer, 1) / n_ranks  # a fully masked batch gives loss 0, not 0/0
    loss_sum = 0.0
    micros = micro_batches(batch, grad_accum)
    for i, micro in enumerate(micros):
        with sync_on_last(model, i == len(micros) - 1):
            with autocast:
                loss = objective(model, micro) / denom
            (scaler.scale(loss) if scaler is not None else loss).backward()  # fp16: scaled against underflow
        loss_sum += loss.detach()
    return global_sum(n_ranks, float(loss_sum)) / n_ranks  # the whole step's mean loss per answer token


def micro_batches(batch: Batch, n: int) -> list[Batch]:
    """Split a batch into n micro-batches of rows of similar length, each trimmed to its own longest row.

    Why: every row is padded to the longest row of the whole batch, and padding costs as much compute as
    real tokens. Sorting the rows by length and cutting them into n runs puts short rows together, so
    most micro-batches drop most of their padding columns. Why the gradient stays the same: the model is
    causal, so columns after a row's last answer target never change its logits at earlier positions, and
    their targets are all IGNORE_INDEX; and accumulate_gradients divides by the WHOLE batch's answer
    tokens, so every answer token (every row, every task family) weighs exactly what it did before.

    A row's length is 1 + the position of its last answer target; a row with no answer target has
    length 1 (it adds nothing to the loss; one column keeps its tensors non-empty). Tensors shaped
    (B, T, ...) like the targets are trimmed along T, the others (e.g. "index" (B,)) follow the rows.
    n == 1 still trims the batch to its longest row.
    """
    B, T = batch["targets"].shape
    if not 1 <= n <= B:
        raise ValueError(f"cannot split a batch of {B} rows into {n} micro-batches "
                         f"(grad_accum / length_groups must be between 1 and the batch size)")
    answer = batch["targets"] != IGNORE_INDEX  # (B, T)
    pos = torch.arange(1, T + 1, device=answer.device)  # (T,) 1-based, so "no answer" gives 0
    lengths = (answer * pos).amax(dim=1).clamp(min=1)  # (B,) 1 + position of the last answer target
    order = lengths.argsort(stable=True)  # (B,) shortest rows first, ties in batch order
    out = []
    for rows in order.tensor_split(n):  # n runs of consecutive sorted rows, sizes differ by at most 1
        width = int(lengths[rows].max())  # this micro-batch's longest row
        out.append({k: v[rows, :width] if v.shape[:2] == (B, T) else v[rows]  # (b, width, ...) or (b, ...)
                    for k, v in batch.items()})
    return out


# ----------------------------------------------------------------------------------------------
# Data parallel (DDP) under torchrun: each distributed part of the loop is one small helper here. In one
# process (or inside ranks.alone()) they do nothing: no wrapper, every row, no all-reduce.

def data_parallel(model: GPT, device: torch.device):
    """The model wrapped in DistributedDataParallel when the group has several ranks, else the model.
    DDP starts every rank from rank 0's weights and, during backward, averages the ranks' gradients
    (all-reduce): every rank then takes the same optimizer step and the weights stay equal."""
    if ranks.world_size() == 1:
        return model
    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def my_rows(batch: Batch, device: torch.device, non_blocking: bool = False) -> Batch:
    """This rank's share of the global batch, on the device: rows split into world_size contiguous runs
    (sizes differ by at most one). Every rank drew the same global batch, so together they hold it once.
    non_blocking only on CUDA (the device policy says so): on MPS a non-blocking copy of a CPU tensor
    freed right after is a known silent corruption."""
    B = batch["targets"].shape[0]
    rank, world = ranks.rank(), ranks.world_size()
    if world == 1:
        return {k: v.to(device, non_blocking=non_blocking) for k, v in batch.items()}
    if B < world:
        raise ValueError(f"a batch of {B} rows cannot be split over {world} ranks (one row each at least)")
    rows = torch.arange(B).tensor_split(world)[rank]
    return {k: v[rows].to(device, non_blocking=non_blocking) for k, v in batch.items()}


def ddp_ranks(model) -> int:
    """How many ranks share this step: the group's size when the model is DDP-wrapped, else 1."""
    wrapped = isinstance(getattr(model, "_orig_mod", model), DistributedDataParallel)  # compiled or not
    return ranks.world_size() if wrapped else 1


def global_sum(n_ranks: int, x: float) -> float:
    """x summed over the ranks that share the step (all-reduce); x itself when one."""
    return ranks.all_reduce_sum(x) if n_ranks > 1 else x


def sync_on_last(model, last: bool):
    """DDP all-reduces the gradients at every backward; inside no_sync() it only accumulates them. So the
    micro-batches of a step accumulate quietly and the ranks synchronise once, on the last one."""
    if ddp_ranks(model) > 1 and not last:
        return getattr(model, "_orig_mod", model).no_sync()
    return contextlib.nullcontext()


def checkpoint(cfg: TrainConfig, model: GPT, step: int, fingerprint, optimizer, history, meta,
               scaler=None) -> None:
    """Save the run after `step` steps (for exact resume): one writer, rank 0, with every rank's RNG states,
    CPU and (on CUDA) its GPU's (each rank draws its own dropout masks), gathered from the ranks."""
    on_cuda = next(model.parameters()).device.type == "cuda"
    rngs = ranks.gather_objects(torch.get_rng_state())  # [this process's] in one process
    cuda_rngs = ranks.gather_objects(torch.cuda.get_rng_state()) if on_cuda else None
    if ranks.is_main():
        extra = {"rng_ranks": rngs} if len(rngs) > 1 else {}  # one process: its state is ckpt["rng"]
        if on_cuda:
            extra["cuda_rng_ranks"] = cuda_rngs
        if scaler is not None and scaler.is_enabled():
            extra["scaler"] = scaler.state_dict()
        save_checkpoint(cfg.ckpt_path, model, step=step, fingerprint=fingerprint, optimizer=optimizer,
                        history=history, meta={**(meta or {}), "train_config": asdict(cfg)}, extra=extra)


def rank_rng(ckpt: dict, key: str = "rng_ranks") -> torch.Tensor:
    """This rank's RNG state from a checkpoint (CPU: "rng_ranks", GPU: "cuda_rng_ranks"): its own when the
    run had as many ranks as now, else rank 0's (a run resumed on another number of ranks draws other
    dropout masks from then on)."""
    states = ckpt.get(key) or [ckpt["rng"]]
    return states[ranks.rank()] if len(states) == ranks.world_size() else states[0]


def write_history_csv(path, history: list[dict]) -> None:
    keys = sorted({k for row in history for k in row}, key=lambda k: (k != "step", k))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    writer.writerows(history)
    atomic_write_bytes(path, buf.getvalue().encode())


# ----------------------------------------------------------------------------------------------
# Checkpoints: one file, a plain dict of tensors and numbers, read back with weights_only=True
# (loading a checkpoint never runs pickled code). Written to a temporary name, then renamed.

REQUIRED_KEYS = ("model", "config", "step")


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable, or made for another tokenizer / model."""


def save_checkpoint(path, model: GPT, step: int, fingerprint: str | None = None, optimizer=None,
                    history=None, meta: dict | None = None, extra: dict | None = None) -> None:
    """Write the checkpoint dict; extra: more to keep (every rank's RNG states under DDP, "rng_ranks"; the
    GPUs' RNG states, "cuda_rng_ranks"; the GradScaler's state)."""
    ckpt = {
        "model": model.state_dict(),
        "config": asdict(model.config),
        "step": step,
        "tokenizer": fingerprint,
        "rng": torch.get_rng_state(),
        "history": history or [],
        "meta": meta or {},
    }
    if optimizer is not None:
        ckpt["optimizer"] = optimizer.state_dict()
    ckpt.update(extra or {})
    buf = io.BytesIO()
    torch.save(ckpt, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path, expect_fingerprint: str | None = None,
                    expect_config: GPTConfig | None = None) -> dict:
    """Read a checkpoint and check it fits; every failure is one clear CheckpointError."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        unsafe = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))  # weights_only met a pickled callable
        if isinstance(e, pickle.UnpicklingError) and unsafe:
            raise CheckpointError(f"{path}: refused: not plain tensors (unpickling it would call "
                                  f"{unsafe.group(1)}; loading a checkpoint never runs code)") from None
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupted?): "
                              f"{type(e).__name__}") from None
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in REQUIRED_KEYS):
        raise CheckpointError(f"{path}: not a minikd checkpoint (needs keys {REQUIRED_KEYS})")
    if expect_fingerprint is not None and ckpt.get("tokenizer") != expect_fingerprint:
        raise CheckpointError(f"{path}: made with tokenizer {ckpt.get('tokenizer')}, "
                              f"but the tokenizer in use is {expect_fingerprint}")
    if expect_config is not None:
        want = asdict(expect_config)
        diff = [f"{k}: checkpoint {ckpt['config'].get(k)!r} vs model {v!r}"
                for k, v in want.items() if ckpt["config"].get(k) != v]
        if diff:
            raise CheckpointError(f"{path}: made for another model config ({'; '.join(diff)})")
    return ckpt


def check_same_run(path, ckpt: dict, cfg: TrainConfig, meta: dict | None) -> None:
    """Resume only the run this is: the same TrainConfig (but FREE_ON_RESUME) and the same meta (objective,
    data, ...). Continuing a run made with other settings would mix two runs silently; name what differs."""
    saved = dict(ckpt.get("meta") or {})
    if "train_config" not in saved:
        raise CheckpointError(f"{path}: holds no training settings (not saved by train()), cannot resume it")
    saved_cfg, now_cfg = saved.pop("train_config"), asdict(cfg)
    diff = what_differs(saved_cfg, now_cfg, ignore=FREE_ON_RESUME, was="checkpoint")
    diff += what_differs(saved, meta or {}, was="checkpoint")
    if diff:
        raise CheckpointError(f"{path}: made by a run with other settings ({'; '.join(diff)})")


def load_model(path, tokenizer=None, device: str = "cpu") -> tuple[GPT, dict]:
    """Build the model a checkpoint describes and load its weights (eval mode)."""
    fp = tokenizer.fingerprint if tokenizer is not None else None
    ckpt = load_checkpoint(path, expect_fingerprint=fp)
    names = {f.name for f in fields(GPTConfig)}
    model = GPT(GPTConfig(**{k: v for k, v in ckpt["config"].items() if k in names}))
    model.load_state_dict(ckpt["model"])
    return model.to(get_device(device)).eval(), ckpt
