"""The losses of distillation, all over the same answer-token mask.

- `masked_nll`: sequence-level KD / SFT. The student learns the teacher's written answer u by
  next-token cross-entropy on the answer tokens: -log p(u | s) = sum_t -log p(u_t | s, u_<t).
- `forward_kl`, `reverse_kl`, `kd_loss`: word-level (token-level) KD. At every answer position the
  student matches the teacher's whole next-token distribution, softened by a temperature T
  (Hinton, Vinyals & Dean 2015):

      kd_loss = (1 - alpha) * CE(student, answer tokens) + alpha * T^2 * KL(softmax(z_t/T) || softmax(z_s/T))

- `topk_kd_loss`: the same, offline, from a store of the teacher's top-k log-probabilities.
- `generalized_jsd`: GKD's divergence between forward and reverse KL, used by on-policy distillation
  (minikd.on_policy) on the student's own samples.

Conventions (every function here keeps them):
- A position counts when its target is not IGNORE_INDEX: the answer tokens and the end token. Prompt,
  template and padding positions are selected away *before* any math, so they can never contribute,
  not even a NaN.
- reduction="sum" adds the loss over answer tokens; reduction="mean" divides that sum by the number of
  answer tokens in the batch (`n_answer_tokens`): a per-token average over the whole batch, not a
  per-sequence one. The training loop uses "sum" and divides by the answer tokens of the whole
  optimizer step, which makes gradient accumulation exact.
- A batch with no answer tokens gives 0.0 (still differentiable) and a warning, never NaN.
- Everything is computed in float32, whatever dtype the logits arrive in (bf16 under autocast).
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F

from minikd.data import IGNORE_INDEX


def n_answer_tokens(targets: torch.Tensor) -> int:
    """How many positions the loss is computed on (targets that are not IGNORE_INDEX)."""
    return int((targets != IGNORE_INDEX).sum().item())


def _reduce(total: torch.Tensor, n: int, reduction: str) -> torch.Tensor:
    """Turn a loss summed over n answer tokens into the asked reduction."""
    if n == 0:
        warnings.warn("no answer tokens in this batch (every target is IGNORE_INDEX): the loss is 0",
                      RuntimeWarning, stacklevel=3)
    if reduction == "sum":
        return total
    if reduction == "mean":
        return total / max(n, 1)  # n == 0: total is an empty sum, 0.0 with a zero gradient
    raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")


def _check_reduction(reduction: str) -> None:
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")


def _check_logits_targets(logits: torch.Tensor, targets: torch.Tensor, name: str = "logits") -> None:
    if logits.dim() != 3 or targets.shape != logits.shape[:2]:
        raise ValueError(f"{name} must be (B, T, V) and targets (B, T); got {name} {tuple(logits.shape)} "
                         f"and targets {tuple(targets.shape)}")


def _check_same_vocab(teacher_logits: torch.Tensor, student_logits: torch.Tensor) -> None:
    """Teacher and student must score the same vocabulary; logits are never zero-padded to fit."""
    if teacher_logits.shape[-1] != student_logits.shape[-1]:
        raise ValueError(f"vocabulary mismatch: teacher logits have {teacher_logits.shape[-1]} tokens, student "
                         f"logits {student_logits.shape[-1]}; word-level KD needs one shared tokenizer "
                         f"(different tokenizers: distil on text, i.e. sequence-level KD)")
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(f"teacher logits {tuple(teacher_logits.shape)} and student logits "
                         f"{tuple(student_logits.shape)} must have the same shape")


def _answer_rows(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Select the answer positions: (B, T, V), (B, T) -> (N, V) float32, (N,) with N = answer tokens.

    Target ids are range-checked here on the CPU only: on a GPU the check would make the host wait at
    every call, so there it is done once per dataset (data.check_token_ids, SFTData(vocab_size=...)).
    """
    keep = targets != IGNORE_INDEX  # (B, T)
    rows, y = logits[keep].float(), targets[keep]  # (N, V), (N,)
    if y.device.type == "cpu" and y.numel() and (int(y.min()) < 0 or int(y.max()) >= logits.shape[-1]):
        bad = int(y.min()) if int(y.min()) < 0 else int(y.max())
        raise ValueError(f"target id {bad} is outside the vocabulary of {logits.shape[-1]} tokens "
                         f"(data tokenized with a different tokenizer?)")
    return rows, y


# ---------------------------------------------------------------------------------------------------
# Sequence level: the answer tokens the teacher wrote
# ---------------------------------------------------------------------------------------------------


def masked_nll(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy -log p(target) on the answer tokens only. logits (B, T, V), targets (B, T) -> scalar."""
    _check_logits_targets(logits, targets)
    _check_reduction(reduction)
    rows, y = _answer_rows(logits, targets)  # (N, V), (N,)
    total = F.cross_entropy(rows, y, reduction="sum")
    return _reduce(total, y.numel(), reduction)


# ---------------------------------------------------------------------------------------------------
# Word level: the teacher's distribution at every answer position
# ---------------------------------------------------------------------------------------------------


def log_softmax_t(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """log softmax(z / T) in float32. T > 1 flattens the distribution and shows the 'dark knowledge'."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return F.log_softmax(logits.float() / temperature, dim=-1)


def softmax_t(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """softmax(z / T) in float32."""
    return log_softmax_t(logits, temperature).exp()


def forward_kl(teacher_logits: torch.Tensor, student_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """KL(p_teacher || p_student) = sum_v p_t(v) (log p_t(v) - log p_s(v)) at each position: (..., V) -> (...).

    'Mean-seeking': the student is punished wherever the teacher has mass and the student has none.
    """
    _check_same_vocab(teacher_logits, student_logits)
    log_p_t = log_softmax_t(teacher_logits, temperature)  # (..., V)
    log_p_s = log_softmax_t(student_logits, temperature)  # (..., V)
    return (log_p_t.exp() * (log_p_t - log_p_s)).sum(dim=-1)  # (...)


def reverse_kl(teacher_logits: torch.Tensor, student_logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """KL(p_student || p_teacher) = sum_v p_s(v) (log p_s(v) - log p_t(v)) at each position: (..., V) -> (...).

    'Mode-seeking': the student is punished for putting mass where the teacher has little.
    """
    _check_same_vocab(teacher_logits, student_logits)
    log_p_t = log_softmax_t(teacher_logits, temperature)  # (..., V)
    log_p_s = log_softmax_t(student_logits, temperature)  # (..., V)
    return (log_p_s.exp() * (log_p_s - log_p_t)).sum(dim=-1)  # (...)


def generalized_jsd(teacher_logits: torch.Tensor, student_logits: torch.Tensor, beta: float) -> torch.Tensor:
    """GKD's generalized Jensen-Shannon divergence between teacher p and student q at each position: (..., V) -> (...).

        JSD_beta = beta * KL(p || m) + (1 - beta) * KL(q || m),     m = beta * p + (1 - beta) * q

    (Agarwal et al. 2024). A small beta behaves like the forward KL (mean-seeking), a beta near 1 like the
    reverse KL (mode-seeking); both terms vanish at the very ends (m becomes p or q), so beta = 0 and
    beta = 1 are defined, as GKD does, as the KLs themselves: KL(p || q) and KL(q || p).
    """
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    if beta == 0.0:
        return forward_kl(teacher_logits, student_logits)
    if beta == 1.0:
        return reverse_kl(teacher_logits, student_logits)
    _check_same_vocab(teacher_logits, student_logits)
    log_p = log_softmax_t(teacher_logits)  # (..., V)
    log_q = log_softmax_t(student_logits)  # (..., V)
    log_m = torch.logaddexp(log_p + math.log(beta), log_q + math.log(1.0 - beta))  # (..., V) log of the mixture
    kl_p = (log_p.exp() * (log_p - log_m)).sum(dim=-1)  # (...)
    kl_q = (log_q.exp() * (log_q - log_m)).sum(dim=-1)  # (...)
    return beta * kl_p + (1.0 - beta) * kl_q


def _check_alpha(alpha: float) -> None:
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
            temperature: float = 1.0, alpha: float = 0.5, reduction: str = "mean",
            kl: str = "forward") -> torch.Tensor:
    """(1 - alpha) * hard CE + alpha * T^2 * KL at T, over the answer tokens. Logits (B, T, V), targets (B, T).

    Why T^2: the gradient of the KL term w.r.t. the student logits shrinks like 1/T^2 as T grows, so
    multiplying by T^2 keeps the soft term's pull the same size whatever temperature is chosen.
    The teacher is a fixed target: its logits are detached. kl="reverse" uses KL(p_s || p_t) instead.
    """
    _check_same_vocab(teacher_logits, student_logits)
    _check_logits_targets(student_logits, targets, "student_logits")
    _check_alpha(alpha)
    _check_reduction(reduction)
    kl_fn = {"forward": forward_kl, "reverse": reverse_kl}.get(kl)
    if kl_fn is None:
        raise ValueError(f"kl must be 'forward' or 'reverse', got {kl!r}")

    student, y = _answer_rows(student_logits, targets)  # (N, V), (N,)
    teacher = teacher_logits.detach()[targets != IGNORE_INDEX].float()  # (N, V)
    hard = F.cross_entropy(student, y, reduction="sum")
    soft = kl_fn(teacher, student, temperature).sum() * temperature**2  # (N,) -> scalar
    total = (1.0 - alpha) * hard + alpha * soft
    return _reduce(total, y.numel(), reduction)


def topk_kd_loss(student_logits: torch.Tensor, topk_ids: torch.Tensor, topk_logprobs: torch.Tensor,
                 targets: torch.Tensor, temperature: float = 1.0, alpha: float = 0.5,
                 reduction: str = "mean") -> torch.Tensor:
    """Offline word-level KD from the teacher's stored top-k: ids and log-probs (B, T, k), taken at `temperature`.

    Storing all V probabilities at every answer position is what makes word-level KD expensive; keeping
    only the k largest is the usual compromise. The mass outside the top k is dropped and the k
    probabilities are renormalised to sum to 1 (p_t^k). The student keeps its full softmax at T, read
    at the k ids, so the soft term is the forward KL restricted to those ids:

        sum_{v in top k} p_t^k(v) (log p_t^k(v) - log p_s(v))  =  H(p_t^k, p_s) - H(p_t^k)

    With k = V nothing is dropped and this equals `kd_loss(..., kl="forward")`. Ids and log-probs at
    non-answer positions are never read (they may hold any padding).
    """
    _check_logits_targets(student_logits, targets, "student_logits")
    if topk_ids.shape != topk_logprobs.shape or topk_ids.shape[:2] != targets.shape:
        raise ValueError(f"topk_ids {tuple(topk_ids.shape)} and topk_logprobs {tuple(topk_logprobs.shape)} "
                         f"must both be (B, T, k) with (B, T) = targets {tuple(targets.shape)}")
    _check_alpha(alpha)
    _check_reduction(reduction)

    keep = targets != IGNORE_INDEX  # (B, T)
    student, y = _answer_rows(student_logits, targets)  # (N, V), (N,)
    ids = topk_ids[keep].long()  # (N, k)
    V = student.shape[-1]
    if ids.device.type == "cpu" and ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= V):  # on a GPU:
        # topk_objective compares the store's recorded vocab_size with the student's (no host sync)
        raise ValueError(f"stored teacher token ids span [{int(ids.min())}, {int(ids.max())}] but the student's "
                         f"vocabulary has {V} tokens: vocabulary mismatch")
    log_p_t = topk_logprobs[keep].float()  # (N, k)
    log_p_t = log_p_t - torch.logsumexp(log_p_t, dim=-1, keepdim=True)  # renormalise over the top k
    log_p_s = log_softmax_t(student, temperature).gather(-1, ids)  # (N, V) -> (N, k)

    hard = F.cross_entropy(student, y, reduction="sum")
    soft = (log_p_t.exp() * (log_p_t - log_p_s)).sum() * temperature**2
    total = (1.0 - alpha) * hard + alpha * soft
    return _reduce(total, y.numel(), reduction)
