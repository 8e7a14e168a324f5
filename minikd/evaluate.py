"""Measuring a model: task accuracy (scored by the verifiers), greedy vs beam, and NLL per answer token.

Every accuracy minikd prints comes from here: the model writes an answer with a named decoding method,
and `score` says whether it is right (it ended, and `minikd.world.verify`, which recomputes the truth from
the prompt, accepts it).
"""

from __future__ import annotations

from collections import defaultdict

import torch

from minikd.data import IGNORE_INDEX, batches
from minikd.generate import generate
from minikd.losses import masked_nll
from minikd.world import verify


def score(prompt: str, text: str, ended: bool = True) -> bool:
    """THE rule for "this answer is right", used wherever minikd counts right answers: the answer ended
    with the end token (a cut-off answer is wrong, whatever its text says) and the task's verifier, which
    recomputes the truth from the prompt, accepts it."""
    return bool(ended) and verify(prompt, text)


# How long an answer may run: the one home of both limits. With training answers to go by, answer_limit;
# without (a prompt set labelled cold, `minikd generate`), the room the context leaves, max_new_tokens_for.
SLACK = 8  # an answer may run this many tokens past the longest training answer; longer is a runaway


def answer_limit(train_set: list[dict]) -> int:
    """max_new_tokens for every generation of the job: the longest training answer (end token included)
    plus SLACK. A teacher answer cut off there is dropped by the filter, a student's counts as wrong;
    without a limit a beam search or an untrained student runs on to the end of the context."""
    return max(sum(e["mask"]) for e in train_set) + SLACK


def max_new_tokens_for(model, prompt_ids: list[list[int]], cap: int = 96) -> int:
    """As many new tokens as the longest prompt leaves room for in the context (at most `cap`)."""
    return max(1, min(cap, model.config.block_size - max(len(p) for p in prompt_ids)))


@torch.no_grad()
def decode_records(model, tok, records: list[dict], method: str = "greedy", beam_size: int = 1,
                   batch_size: int = 128, max_new_tokens: int | None = None, **kw) -> list:
    """The model's answer to each record's prompt (a list of minikd.generate.Generation with .text).

    max_new_tokens: None = as many as the context leaves (at most 96); an answer cut off is never right."""
    prompts = [tok.render_prompt(r["prompt"]) for r in records]
    limit = max_new_tokens or max_new_tokens_for(model, prompts)
    gens = generate(model, prompts, max_new_tokens=limit, end_id=tok.end_id,
                    method=method, beam_size=beam_size, batch_size=batch_size, **kw)
    for g in gens:
        g.text = tok.decode(g.tokens)
    return gens


def accuracy(model, tok, records: list[dict], method: str = "greedy", beam_size: int = 1,
             batch_size: int = 128, **decode_kw) -> dict:
    """Verified accuracy overall and per task family, plus what the model wrote.

    Returns {"acc": float, "acc_by_task": {task: float}, "mean_logprob": mean log-prob the model gives its
    own outputs (per sequence), "ended": fraction that stopped with the end token, "outputs": [text],
    "correct": [bool] per record}.
    A generation cut off before its end token counts as wrong, whatever its text says.
    decode_kw (max_new_tokens, length_penalty, temperature, seed, ...) go to decode_records / generate.
    """
    gens = decode_records(model, tok, records, method=method, beam_size=beam_size, batch_size=batch_size,
                          **decode_kw)
    correct = [score(r["prompt"], g.text, g.ended) for r, g in zip(records, gens)]
    by_task = defaultdict(list)
    for r, ok in zip(records, correct):
        by_task[r["task"]].append(ok)
    return {
        "acc": sum(correct) / max(1, len(correct)),
        "acc_by_task": {t: sum(v) / len(v) for t, v in sorted(by_task.items())},
        "mean_logprob": sum(g.logprob for g in gens) / max(1, len(gens)),
        "ended": sum(g.ended for g in gens) / max(1, len(gens)),
        "outputs": [g.text for g in gens],
        "correct": correct,
    }


@torch.no_grad()
def answer_nll(model, examples: list[dict], pad_id: int, batch_size: int = 128) -> float:
    """Mean negative log-likelihood per answer token (end token included) of rendered examples.

    Low NLL on a dataset = the model finds those answers likely. Kim & Rush's point: a teacher's own
    outputs are far more likely (easier) for a student than the human / ground-truth answers.
    """
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for batch in batches(examples, batch_size, pad_id):
        targets = batch["targets"].to(device)
        total += float(masked_nll(model(batch["inputs"].to(device)), targets, reduction="sum"))
        count += int((targets != IGNORE_INDEX).sum())
    return total / max(1, count)
