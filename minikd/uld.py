"""Universal Logit Distillation (ULD; Boizard et al. 2024): token-level KD between two tokenizers.

Word-level KD (Hinton, Vinyals & Dean 2015) compares the teacher's and the student's next-token
distributions id by id, so both must share one tokenizer (minikd.word_kd refuses two). Boizard et al.
drop the ids. At every answer position both distributions are sorted from the most to the least likely
token, the shorter vector is padded with zeros, and the L1 distance between them is the loss; they
derive it as the closed form of an optimal-transport (Wasserstein) distance in which moving probability
from any token to any other costs the same. It is added to the cross-entropy on the student's own
tokens of the teacher's answer:

    loss = CE(student, the answer in the student's tokens)
           + weight * sum over aligned positions t of  sum_i | sort(p_student_t)_i - sort(p_teacher_t)_i |

A hand check of one position (uld_distance):

    student p = [0.1, 0.7, 0.2]           sorted  [0.7, 0.2, 0.1]  padded  [0.7, 0.2, 0.1, 0.0]
    teacher q = [0.05, 0.05, 0.6, 0.3]    sorted  [0.6, 0.3, 0.05, 0.05]
    L1 = |0.7-0.6| + |0.2-0.3| + |0.1-0.05| + |0.0-0.05| = 0.1 + 0.1 + 0.05 + 0.05 = 0.3

Positions. The teacher reads the answer in its tokens, the student in its own, and the two counts differ
("Sorted" is one teacher token, three student tokens). As Boizard et al. do, the i-th answer position
of one is paired with the i-th of the other, and the longer answer is cut to the shorter's length.

What it can and cannot carry. Sorting keeps how sure the teacher is at each position (the shape of its
distribution) and throws away WHICH token it is sure of: the distance does not change when the student's
vocabulary is permuted. Which token is right comes from the cross-entropy on the text alone.

The teacher's side is computed once, offline: word_kd.build_topk_store on the teacher's own tokenization
keeps its k largest probabilities at every answer position, already sorted; ULD reads them and never the
ids (`teacher_rows`). The mass outside the top k counts as zeros.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from minikd.data import IGNORE_INDEX, batches
from minikd.losses import masked_nll, n_answer_tokens
from minikd.word_kd import store_on


def sorted_probs(p: torch.Tensor) -> torch.Tensor:
    """Probabilities from the largest to the smallest along the last axis: (..., V) -> (..., V)."""
    return p.sort(dim=-1, descending=True).values


def pad_to(p: torch.Tensor, size: int) -> torch.Tensor:
    """Zeros appended along the last axis up to `size` entries (a token with no probability)."""
    return F.pad(p, (0, size - p.shape[-1]))


def uld_distance(p_student: torch.Tensor, p_teacher: torch.Tensor) -> torch.Tensor:
    """Boizard et al.'s distance at each position: sort both, pad to one length, L1. (..., Vs), (..., Vt) -> (...)."""
    size = max(p_student.shape[-1], p_teacher.shape[-1])
    s = pad_to(sorted_probs(p_student.float()), size)
    t = pad_to(sorted_probs(p_teacher.float()), size)
    return (s - t).abs().sum(dim=-1)


def aligned_rows(student_logits: torch.Tensor, targets: torch.Tensor,
                 teacher_probs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Pair the student's i-th answer position with the teacher's i-th, row by row, cut to the shorter answer.

    student_logits (B, T, Vs), targets (B, T), teacher_probs: one (n_teacher_b, k) tensor per row.
    Returns (M, Vs) student logits and (M, k) teacher probabilities, M = sum over rows of min(n_student, n_teacher).
    """
    s_out, t_out = [], []
    for b, t_rows in enumerate(teacher_probs):
        s_rows = student_logits[b][targets[b] != IGNORE_INDEX]  # (n_student, Vs)
        m = min(len(s_rows), len(t_rows))
        s_out.append(s_rows[:m])
        t_out.append(t_rows[:m])
    return torch.cat(s_out), torch.cat(t_out).to(student_logits.device)


def uld_loss(student_logits: torch.Tensor, targets: torch.Tensor, teacher_probs: list[torch.Tensor],
             weight: float = 1.0, reduction: str = "mean") -> torch.Tensor:
    """CE on the student's own answer tokens + weight * ULD distance summed over the aligned positions.

    "mean" divides the sum by the student's answer tokens (like every loss in minikd.losses); "sum" does not.
    """
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    if len(teacher_probs) != student_logits.shape[0]:
        raise ValueError(f"{len(teacher_probs)} teacher rows for a batch of {student_logits.shape[0]}")
    ce = masked_nll(student_logits, targets, reduction="sum")
    s_rows, t_rows = aligned_rows(student_logits, targets, teacher_probs)  # (M, Vs), (M, k)
    distance = uld_distance(F.softmax(s_rows.float(), dim=-1), t_rows).sum()
    total = ce + weight * distance
    return total if reduction == "sum" else total / max(n_answer_tokens(targets), 1)


def teacher_rows(store: dict, index: torch.Tensor) -> list[torch.Tensor]:
    """The teacher's sorted top-k probabilities of examples `index` (B,) from a top-k store: B tensors (n_b, k)."""
    offsets, logprobs = store["offsets"], store["logprobs"]
    return [logprobs[offsets[i]:offsets[i + 1]].float().exp() for i in index.tolist()]


def aligned_positions(store: dict, index: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """aligned_rows' pairing, from a store, without a loop over the rows: the student's answer positions that
    have a teacher partner, (B, T) bool, and each one's stored teacher row, (M,).

    The j-th answer position of row b pairs with the teacher's row offsets[index[b]] + j while j is below
    the teacher's count for that example (the cut to the shorter answer).
    """
    offsets, index = store["offsets"], index.to(targets.device)
    keep = targets != IGNORE_INDEX  # (B, T)
    j = keep.cumsum(dim=1) - 1  # (B, T) which answer position of its row each position is
    aligned = keep & (j < (offsets[index + 1] - offsets[index])[:, None])  # (B, T) paired positions
    return aligned, (offsets[index][:, None] + j)[aligned]  # (B, T), (M,)


def store_aligned_rows(store: dict, index: torch.Tensor, student_logits: torch.Tensor,
                       targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """aligned_rows(student_logits, targets, teacher_rows(store, index)), computed where the logits are:
    (M, Vs) student logits and (M, k) teacher probabilities (the store's tensors there too: store_on)."""
    aligned, rows = aligned_positions(store, index, targets)
    return student_logits[aligned], store["logprobs"][rows].float().exp()


def uld_objective(store: dict, weight: float = 1.0) -> Callable:
    """ULD as an objective for minikd.train.train: fn(model, batch) -> summed loss. No teacher in the loop:
    its side is the store, built once on the teacher's tokenization of the same records, in the same order,
    copied to the training device once (word_kd.store_on) and read there: uld_loss(..., reduction="sum")."""
    placed: dict = {}

    def objective(model, batch):
        if "index" not in batch:
            raise ValueError("uld_objective needs batch['index'] (which examples the batch holds); "
                             "use SFTData.get_batch or data.batches")
        logits = model(batch["inputs"])  # (B, T, Vs)
        on_device = store_on(store, batch["targets"].device, placed)
        s_rows, t_rows = store_aligned_rows(on_device, batch["index"], logits, batch["targets"])  # (M, Vs), (M, k)
        distance = uld_distance(F.softmax(s_rows.float(), dim=-1), t_rows).sum()
        return masked_nll(logits, batch["targets"], reduction="sum") + weight * distance
    return objective


@torch.no_grad()
def uld_by_example(model, examples: list[dict], store: dict, pad_id: int, batch_size: int = 128) -> list[float]:
    """The mean ULD distance per aligned position of each example, in order: how close the shape of the
    model's distributions is to the teacher's (0 = the same sorted probabilities). One host copy per batch."""
    model.eval()
    device = next(model.parameters()).device
    on_device, out = store_on(store, device, {}), []
    for batch in batches(examples, batch_size, pad_id):
        logits, targets = model(batch["inputs"].to(device)), batch["targets"].to(device)
        aligned, rows = aligned_positions(on_device, batch["index"], targets)  # (B, T), (M,)
        t_rows = on_device["logprobs"][rows].float().exp()  # (M, k)
        per_position = torch.zeros(targets.shape, device=device)  # (B, T)
        per_position[aligned] = uld_distance(F.softmax(logits[aligned].float(), dim=-1), t_rows)
        out += (per_position.sum(dim=1) / aligned.sum(dim=1)).tolist()  # (B,) mean over each row's pairs
    return out
