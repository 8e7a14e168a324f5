"""What sequence-level KD loses, measured: alternatives, phrasings, and supervision on the student's own prefixes.

Sequence-level KD (Kim & Rush 2016) trains the student on ONE answer per prompt, the teacher's greedy one.
Word-level KD (Hinton, Vinyals & Dean 2015) trains it on the teacher's whole next-token distribution. What
the single answer throws away, in numbers:

    answer_entropy_kl       per answer position: the entropy of the student's next-token distribution and
                            KL(teacher || student) -- how much spread the student kept, how far it is
    entropy_kl_by_example   the same, teacher-forced on given answers, one pair of lists per example
    valid_forms             every accepted surface form of a prompt's true answer ("1 2 3", "1, 2, 3", ...)
    alternative_share       of the probability a model gives to the valid forms, the share off its top form
    form_shares             alternative_share for every prompt, from sequence_logprobs
    form_entropy_bits       the entropy of the surface forms a data set uses: 0 bits when phrasing is locked in
    first_divergence        the first position where two token lists differ (where a student leaves the teacher)
    continue_from           greedy continuation after a given answer prefix (teacher forcing up to there)
    prefix_correct          is the finished answer right, continuing from the first part of a reference answer?

The last three measure exposure bias (Bengio et al. 2015, scheduled sampling; Ranzato et al. 2016): a
student trained only on teacher-written prefixes is never shown its own, so an early slip of its own is a
prefix it was never trained to continue from.
"""

from __future__ import annotations

import math

import torch

from minikd.data import IGNORE_INDEX, batches
from minikd.evaluate import score
from minikd.generate import generate
from minikd.losses import forward_kl, log_softmax_t
from minikd.seqkd import sequence_logprobs
from minikd.world import add_columns, format_step, parse_prompt, true_answer

# ---------------------------------------------------------------------------------------------------
# 1. Lost alternatives: the spread of the student's next-token distribution, and its distance to the teacher's
# ---------------------------------------------------------------------------------------------------


def position_entropy_kl(student_logits: torch.Tensor,
                        teacher_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """At every position, in nats: H(p_student) and KL(p_teacher || p_student). (..., V) -> two (...).

    Entropy 0 = the student puts everything on one token; log V = it has no idea. The forward KL is the
    quantity word-level KD minimises: large where the teacher keeps alternatives the student dropped.
    """
    log_p_s = log_softmax_t(student_logits)  # (..., V) float32
    entropy = -(log_p_s.exp() * log_p_s).sum(dim=-1)  # (...)
    return entropy, forward_kl(teacher_logits, student_logits)


def answer_entropy_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """position_entropy_kl at the answer positions only (targets != IGNORE_INDEX), in row-major order.
    Logits (B, T, V), targets (B, T) -> entropy (N,), KL (N,) with N the number of answer tokens."""
    keep = targets != IGNORE_INDEX  # (B, T)
    return position_entropy_kl(student_logits[keep], teacher_logits[keep])  # (N, V) -> (N,), (N,)


@torch.no_grad()
def entropy_kl_by_example(teacher, student, examples: list, pad_id: int,
                          batch_size: int = 128) -> list[tuple[list[float], list[float]]]:
    """Teacher-forced on each rendered example's answer: per answer position, the student's entropy and
    KL(teacher || student), as (entropies, kls) per example in order. student=teacher gives the teacher's
    own entropy (and KL 0)."""
    device = next(student.parameters()).device
    rows = []
    for batch in batches(examples, batch_size, pad_id):
        inputs, targets = batch["inputs"].to(device), batch["targets"].to(device)  # (B, T)
        entropy, kl = position_entropy_kl(student(inputs), teacher(inputs))  # (B, T) each
        keep = targets != IGNORE_INDEX  # (B, T)
        rows += [(entropy[b][keep[b]].tolist(), kl[b][keep[b]].tolist()) for b in range(len(keep))]
    return rows


# ---------------------------------------------------------------------------------------------------
# Valid alternatives: the same right answer, in every surface form the verifier accepts
# ---------------------------------------------------------------------------------------------------


def valid_forms(prompt: str) -> dict[str, str]:
    """Every accepted surface form of the prompt's TRUE answer, form name -> text (tasks.FORMS' names).
    "Sort 3 1 2." -> {"bare": "1 2 3", "sentence": "Sorted: 1 2 3.", "commas": "1, 2, 3"}."""
    family, numbers = parse_prompt(prompt)
    answer = true_answer(prompt)
    if family == "sort":
        return {"bare": answer, "sentence": f"Sorted: {answer}.", "commas": answer.replace(" ", ", ")}
    if family == "add":
        a, b = numbers
        return {"bare": answer, "sentence": f"The answer is {answer}.", "equation": f"{a} + {b} = {answer}"}
    steps = " ".join(format_step(*s) for s in add_columns(*numbers)[0])  # add_steps: the worked solution
    return {"sentence": f"{steps} The answer is {answer}.", "sum": f"{steps} Sum: {answer}."}


def alternative_share(logprobs: list[float]) -> float:
    """Of the probability a model gives to K valid forms of one answer, the share NOT on its top form.

        q_f   = p(f) / sum_g p(g)        renormalised over the K valid forms (p(f) = exp(logprobs[f]))
        share = 1 - max_f q_f            0 = every bit on one form; (K - 1) / K = spread evenly

    Renormalising separates "which phrasing" from "how sure of the answer": a model right with 1 %
    probability, spread evenly over the forms, has the same share as one right with 99 %.
    """
    q = torch.softmax(torch.tensor(logprobs, dtype=torch.float64), dim=0)  # (K,): no underflow
    return float(1.0 - q.max())


def form_shares(model, tok, records: list[dict], batch_size: int = 128) -> list[dict]:
    """Per prompt: every valid form of the true answer scored by the model (log p(form + <|end|> | s)).
    Returns {"logprobs": {form: lp}, "top": the form it prefers, "share": alternative_share} per record."""
    forms = [valid_forms(r["prompt"]) for r in records]
    examples = [dict(zip(("ids", "mask"), tok.render(r["prompt"], text)))
                for r, f in zip(records, forms) for text in f.values()]
    flat, _ = sequence_logprobs(model, examples, tok.pad_id, batch_size)
    out, at = [], 0
    for f in forms:
        lps = dict(zip(f, flat[at:at + len(f)]))
        at += len(f)
        out.append({"logprobs": lps, "top": max(lps, key=lps.get), "share": alternative_share(list(lps.values()))})
    return out


# ---------------------------------------------------------------------------------------------------
# Exposure bias: where the student leaves the teacher, and what a teacher-written prefix is worth
# ---------------------------------------------------------------------------------------------------


def first_divergence(a: list, b: list) -> int | None:
    """The first position where token lists a and b differ (= the length of their common prefix), or
    None when they are equal. When one is a prefix of the other they part where the shorter one stops."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


@torch.no_grad()
def continue_from(model, tok, records: list[dict], prefixes: list[list[int]],
                  max_new_tokens: int) -> list[tuple[list[int], bool]]:
    """Teacher forcing up to a point, then free running: the model reads each prompt AND the given first
    answer tokens, and writes the rest greedily. Returns (prefix + what it wrote, ended) per record."""
    prompts = [tok.render_prompt(r["prompt"]) + list(p) for r, p in zip(records, prefixes)]
    gens = generate(model, prompts, max_new_tokens=max_new_tokens, end_id=tok.end_id, method="greedy")
    return [(list(p) + g.tokens, g.ended) for p, g in zip(prefixes, gens)]


def prefix_correct(model, tok, records: list[dict], answers: list[list[int]], fraction: float,
                   max_new_tokens: int) -> list[bool]:
    """Is the answer right when the model continues from the first `fraction` of each reference answer
    (answers: token ids without the end token)? fraction 0 = the model's own greedy answer, from its own
    prefix; a gain at fraction > 0 is what a correct prefix it did not write itself is worth."""
    prefixes = [a[:round(fraction * len(a))] for a in answers]
    done = continue_from(model, tok, records, prefixes, max_new_tokens)
    return [score(r["prompt"], tok.decode(ids), ended) for r, (ids, ended) in zip(records, done)]


def form_entropy_bits(forms: list[str | None]) -> float:
    """Shannon entropy (bits) of the surface forms used: 0 = one form always; log2(k) = k forms evenly.
    An unreadable answer counts as a form of its own ("none")."""
    counts: dict = {}
    for f in forms:
        counts[f] = counts.get(f, 0) + 1
    n = len(forms)
    return -sum(c / n * math.log2(c / n) for c in counts.values()) if n else 0.0


def forced_examples(tok, records: list[dict], gens: list) -> list[dict]:
    """Generated answers (decode_records) rendered for teacher forcing on them: the token ids the model wrote, not
    re-encoded text; mask 1 on the answer tokens and on the end token when it wrote one (lesson 11)."""
    out = []
    for r, g in zip(records, gens):
        prompt = tok.render_prompt(r["prompt"])
        tail = g.tokens + ([tok.end_id] if g.ended else [])
        out.append({"ids": prompt + tail, "mask": [0] * len(prompt) + [1] * len(tail)})
    return out
