"""On-policy distillation: the student writes its own answers, the teacher grades every token of them.

Sequence-level KD (Kim & Rush 2016) trains the student on the teacher's text, so every prefix the student
learns from is one the teacher wrote. At test time the student continues its OWN prefixes, and where those
leave the teacher's path it was never taught what to do next (exposure bias). On-policy distillation
trains on the student's own samples instead, one more objective of the one training loop (minikd.train):

    1. the student samples an answer y ~ p_s(. | x) for each training prompt x         OnPolicyData.get_batch
       (temperature 1, the KV cache, a generator seeded by (seed, step): a run is repeatable)
    2. the frozen teacher reads x + y once: its next-token distribution at every position of y
    3. loss = sum over the sampled positions t of  D(p_s(. | x, y_<t), p_t(. | x, y_<t))    on_policy_loss

D is the reverse KL, KL(p_s || p_t) = sum_v p_s(v) (log p_s(v) - log p_t(v)), summed over the whole
vocabulary (MiniLLM, Gu et al. 2024; the on-policy recipe Thinking Machines published in 2025), or GKD's
generalized JSD with beta (Agarwal et al. 2024; beta = 0 forward KL, beta = 1 reverse KL). The gradient
flows through the student's distributions at the sampled positions, not through the sampling itself (as
in GKD; MiniLLM adds a policy-gradient term for the tokens that follow).

The division. train.accumulate_gradients divides the summed loss by the batch's target tokens. Here the
targets are the tokens the student sampled (its end token included when it wrote one; the prompt and the
padding are IGNORE_INDEX), so the step's loss is the mean divergence per sampled token.

A sharp teacher. `teacher_temperature` T_t < 1 scores with softmax(z_t / T_t): the student is pulled
toward the distribution of the teacher sampled at T_t, which is closer to the teacher's greedy answer.
A teacher that learned its training labels' noise as probability (right when greedy, often wrong when
sampled) is a poor target at T_t = 1 and a better one at T_t < 1.

GKD's mixture. `MixedData`: a share lambda of the steps is on-policy, the others are ordinary seq-KD
batches (teacher text, SFT loss), so lambda = 0 is continued seq-KD and lambda = 1 pure on-policy.

Compute (`Compute`) is counted in token-passes: one token through one model. A forward token-pass costs
about 2N floating-point operations and a backward one 4N, N = the model's parameters (the usual 6N per
trained token, Kaplan et al. 2020). Sampling reads every prompt token once and every written token once
(the KV cache); the teacher only reads forward. Padding and the idle rows of a batch are left out.

Continuing a student (`continue_student`): an `Arm` (lambda, the teacher's temperature) trains a copy of a
base student at a budget of counted FLOPs (`seq_kd_flops`, `steps_for_budget`) and at a peak learning rate
of its own: each arm picks it on validation prompts (`best_lr`), as GKD and MiniLLM tune each method; one lr
chosen for seq-KD is not a fair lr for on-policy.

Why on-policy can fail, measured: the student's own samples are right less often than the teacher's
(`sampled_answers`), and the teacher, continuing greedily from the midpoint of a wrong student sample, may
not reach a right answer (`rescue_rates`): then the per-token target on that prefix teaches little.
Exposure bias is measured with lesson 11's tools (minikd.what_seqkd_loses: prefix_correct, first_divergence),
in `exposure`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

import torch

from minikd.runtime import mix_seed
from minikd.data import IGNORE_INDEX, SFTData, collate
from minikd.evaluate import score
from minikd.generate import generate
from minikd.losses import generalized_jsd, masked_nll, reverse_kl
from minikd.train import TrainConfig, train
from minikd.what_seqkd_loses import continue_from, first_divergence, prefix_correct
from minikd.word_kd import run_teacher

SAMPLING_STREAM = 1  # mix_seed(seed, step, SAMPLING_STREAM) seeds the student's sampling at `step`


def on_policy_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
                   beta: float = 1.0, teacher_temperature: float = 1.0) -> torch.Tensor:
    """D(p_s || p_t) summed over the vocabulary at every sampled position, summed over those positions.

    logits (B, T, V), targets (B, T): a position counts when its target is not IGNORE_INDEX (the tokens
    the student sampled). beta = 1 reverse KL, 0 forward KL, between: GKD's JSD. The teacher is a fixed
    target (detached), scored at teacher_temperature. Returns a scalar: the sum, not the mean.
    """
    if student_logits.shape != teacher_logits.shape or targets.shape != student_logits.shape[:2]:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} must be the same (B, T, V), targets {tuple(targets.shape)} (B, T)")
    if not teacher_temperature > 0:
        raise ValueError(f"teacher_temperature must be > 0, got {teacher_temperature}")
    keep = targets != IGNORE_INDEX  # (B, T) the sampled tokens
    student = student_logits[keep].float()  # (N, V)
    teacher = teacher_logits.detach()[keep].float() / teacher_temperature  # (N, V)
    return generalized_jsd(teacher, student, beta).sum()


def on_policy_objective(teacher, beta: float = 1.0, teacher_temperature: float = 1.0) -> Callable:
    """The objective for minikd.train.train: fn(model, batch) -> summed loss.

    A batch the student sampled (it carries "on_policy", see OnPolicyData) gets on_policy_loss with the
    teacher's logits from one forward pass over prompt + sample; a seq-KD batch (teacher text) gets the
    plain SFT loss. So the same objective serves pure on-policy training and GKD's mixture.
    """
    def objective(model, batch):
        if "on_policy" not in batch:
            return masked_nll(model(batch["inputs"]), batch["targets"], reduction="sum")
        t_logits = run_teacher(teacher, batch["inputs"])  # (B, T, V), no gradient
        s_logits = model(batch["inputs"])  # (B, T, V)
        return on_policy_loss(s_logits, t_logits, batch["targets"], beta, teacher_temperature)
    return objective


@dataclass
class Compute:
    """The work one training arm did, in token-passes (one token through one model, see the module docstring)."""
    student_forward: int = 0  # tokens through the student, forward: training passes and sampling
    student_backward: int = 0  # tokens through the student, backward
    teacher_forward: int = 0  # tokens through the teacher (forward only)
    generated: int = 0  # tokens the student sampled (each also counted in student_forward)
    steps: dict = field(default_factory=dict)  # steps of each kind: {"on-policy": n, "seq-KD": n}

    def flops(self, n_student: int, n_teacher: int) -> float:
        """About 2N per forward token-pass, 4N per backward one (N: that model's parameters)."""
        return (2 * n_student * self.student_forward + 4 * n_student * self.student_backward
                + 2 * n_teacher * self.teacher_forward)

    def add_seq_kd(self, batch: dict, pad_id: int) -> None:
        """A seq-KD step: the student reads its batch's real tokens forward and backward."""
        tokens = int((batch["inputs"] != pad_id).sum())
        self.student_forward += tokens
        self.student_backward += tokens
        self.steps["seq-KD"] = self.steps.get("seq-KD", 0) + 1

    def add_on_policy(self, batch: dict, pad_id: int, n_prompt: int, n_sampled: int) -> None:
        """An on-policy step: sampling (prompt + written tokens), then the teacher and the student's
        forward and backward passes over prompt + sample."""
        tokens = int((batch["inputs"] != pad_id).sum())
        self.student_forward += n_prompt + n_sampled + tokens
        self.student_backward += tokens
        self.teacher_forward += tokens
        self.generated += n_sampled
        self.steps["on-policy"] = self.steps.get("on-policy", 0) + 1


def sampled_example(prompt: list[int], gen, end_id: int) -> tuple[list[int], list[int]]:
    """(ids, mask) of prompt + what the student wrote: the mask is 1 on every sampled token (and on the end
    token when it wrote one), 0 on the prompt. An answer cut off by the limit is trained on as it is."""
    answer = list(gen.tokens) + ([end_id] if gen.ended else [])
    return list(prompt) + answer, [0] * len(prompt) + [1] * len(answer)


class OnPolicyData:
    """Batches the student writes itself: get_batch(step) samples the student's answers to the prompts of
    step `step` (chosen by SFTData's rule: with the same seed and prompt order, the seq-KD arm's batch
    `step` holds the same prompts) and returns them collated, marked "on_policy"."""

    def __init__(self, student, prompts: list[list[int]], tok, batch_size: int, seed: int = 0,
                 max_new_tokens: int = 40, compute: Compute | None = None):
        self.student, self.prompts, self.tok, self.seed = student, prompts, tok, seed
        self.pick = SFTData(prompts, tok.pad_id, batch_size, seed)  # only its prompt draw is used
        self.max_new_tokens = max_new_tokens
        self.compute = compute if compute is not None else Compute()

    def get_batch(self, step: int) -> dict[str, torch.Tensor]:
        index = self.pick.sample_indices(step)  # (B,)
        prompts = [self.prompts[i] for i in index.tolist()]
        gens = generate(self.student, prompts, max_new_tokens=self.max_new_tokens, end_id=self.tok.end_id,
                        method="sample", temperature=1.0, seed=mix_seed(self.seed, step, SAMPLING_STREAM),
                        batch_size=len(prompts))
        batch = collate([sampled_example(p, g, self.tok.end_id) for p, g in zip(prompts, gens)], self.tok.pad_id)
        batch["index"] = index
        batch["on_policy"] = torch.ones(len(prompts), dtype=torch.bool)  # (B,) rows the student wrote
        n_sampled = sum(len(g.tokens) + g.ended for g in gens)
        self.compute.add_on_policy(batch, self.tok.pad_id, sum(len(p) for p in prompts), n_sampled)
        return batch


def on_policy_step(step: int, share: float) -> bool:
    """Is step `step` one of the on-policy ones, for a share lambda of on-policy steps? Evenly spread:
    after n steps exactly floor(n * lambda) were on-policy (GKD draws a coin per batch instead)."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"the on-policy share must be in [0, 1], got {share}")
    return int((step + 1) * share + 1e-9) > int(step * share + 1e-9)


class MixedData:
    """GKD's mixture: a share lambda of the steps on-policy (OnPolicyData), the others seq-KD batches
    (SFTData on the teacher's text), each counted in the same Compute."""

    def __init__(self, on_policy: OnPolicyData, offline: SFTData, share: float):
        self.on_policy, self.offline, self.share = on_policy, offline, share
        self.compute = on_policy.compute

    def get_batch(self, step: int) -> dict[str, torch.Tensor]:
        if on_policy_step(step, self.share):
            return self.on_policy.get_batch(step)
        batch = self.offline.get_batch(step)
        self.compute.add_seq_kd(batch, self.offline.pad_id)
        return batch


def seq_kd_steps_for(budget: float, offline: SFTData, n_student: int, start: int = 0) -> int:
    """How many seq-KD steps (batches start, start + 1, ... of `offline`) first reach `budget` FLOPs:
    the continuation length that gives seq-KD the compute another arm used."""
    spent, steps = 0.0, 0
    while spent < budget:
        batch = offline.get_batch(start + steps)
        spent += 6 * n_student * int((batch["inputs"] != offline.pad_id).sum())
        steps += 1
    return steps


# ---------------------------------------------------------------------------------------------------
# Continuing a student: one arm at its own learning rate, at a counted compute budget

@dataclass(frozen=True)
class Arm:
    """One way to continue a student (TRL's GKD knobs): lambda, the share of on-policy steps (0 = continued
    seq-KD, 1 = pure on-policy, between: GKD's mixture), the temperature the teacher scores at, and the
    teacher that grades (None: the Continuation's; another one of the same size, e.g. a clean-label teacher)."""
    name: str
    share: float
    teacher_temperature: float = 1.0
    teacher: object = None


@dataclass
class Continuation:
    """What every continuation of a base student shares: the teacher, the data, the loop's settings."""
    teacher: object
    tok: object
    examples: list  # the seq-KD data: the teacher's answers, rendered for SFT
    prompts: list  # the same prompts, rendered (same order): what the student answers on-policy
    batch_size: int
    start: int  # continuations draw batches start, start + 1, ...: the base's run used those before
    max_new_tokens: int  # the student's sampled answers are cut at this length
    device: str = "cpu"
    length_groups: int = 4
    curve_points: int = 4  # eval_fn runs this many times along a continuation (a learning curve)


def continue_student(base, arm: Arm, setup: Continuation, steps: int, lr: float, seed: int, eval_fn=None):
    """A copy of `base` trained `steps` more steps in `arm` at peak learning rate `lr` (warmup, cosine).
    The on-policy batches are sampled by the copy being trained. Returns (model, history, Compute)."""
    model, compute = copy.deepcopy(base), Compute()
    offline = SFTData(setup.examples, setup.tok.pad_id, setup.batch_size, seed=seed)
    on = OnPolicyData(model, setup.prompts, setup.tok, setup.batch_size, seed, setup.max_new_tokens, compute)
    mixed = MixedData(on, offline, arm.share)
    cfg = TrainConfig(steps=steps, lr=lr, warmup=max(1, steps // 10), device=setup.device, seed=seed,
                      length_groups=min(setup.length_groups, setup.batch_size), log_every=0,
                      eval_every=max(1, steps // setup.curve_points))
    grader = setup.teacher if arm.teacher is None else arm.teacher
    objective = on_policy_objective(grader, 1.0, arm.teacher_temperature)
    history = train(model, lambda step: mixed.get_batch(setup.start + step), objective, cfg, eval_fn=eval_fn)
    return model, history, compute


def seq_kd_flops(setup: Continuation, n_student: int, steps: int, seed: int) -> float:
    """The budget every arm gets: the FLOPs of seq-KD batches start .. start + steps - 1."""
    offline, compute = SFTData(setup.examples, setup.tok.pad_id, setup.batch_size, seed=seed), Compute()
    for step in range(setup.start, setup.start + steps):
        compute.add_seq_kd(offline.get_batch(step), setup.tok.pad_id)
    return compute.flops(n_student, 0)


def steps_for_budget(base, arm: Arm, setup: Continuation, budget: float, seed: int) -> int:
    """How many steps of `arm` the budget buys: an on-policy step's cost estimated on one batch the base
    samples, a seq-KD step's on the seq-KD batches themselves."""
    offline = SFTData(setup.examples, setup.tok.pad_id, setup.batch_size, seed=seed)
    n_student, n_teacher = base.num_params(), setup.teacher.num_params()
    seq_steps = seq_kd_steps_for(budget, offline, n_student, start=setup.start)
    if arm.share == 0.0:
        return seq_steps
    probe = Compute()
    sampler = OnPolicyData(base, setup.prompts, setup.tok, setup.batch_size, seed, setup.max_new_tokens, probe)
    sampler.get_batch(setup.start)  # one batch, counted in probe
    per_step = arm.share * probe.flops(n_student, n_teacher) + (1 - arm.share) * budget / seq_steps
    return max(1, round(budget / per_step))


def best_lr(scores: dict[float, float]) -> float:
    """The learning rate with the best validation score; a tie goes to the smaller one (the safer step)."""
    return max(sorted(scores), key=lambda lr: (scores[lr], -lr))


# ---------------------------------------------------------------------------------------------------
# Why on-policy can fail here, measured: whose samples are right, and can the teacher rescue a wrong one

def sampled_answers(model, tok, records: list[dict], temperature: float, seed: int,
                    max_new_tokens: int) -> tuple[list[list[int]], list[bool]]:
    """The model's answers sampled at `temperature` (0: greedy), as token ids without the end token, and
    whether each is right."""
    prompts = [tok.render_prompt(r["prompt"]) for r in records]
    how = dict(method="sample", temperature=temperature, seed=seed) if temperature > 0 else dict(method="greedy")
    gens = generate(model, prompts, max_new_tokens=max_new_tokens, end_id=tok.end_id, batch_size=128, **how)
    return [g.tokens for g in gens], [score(r["prompt"], tok.decode(g.tokens), g.ended) for r, g in zip(records, gens)]


def show_batch_row(teacher, student, batch: dict, tok) -> str:
    """Row 0 of an on-policy batch drawn for a learner: the mask under the tokens, then the reverse KL
    (the loss before its mean) at each token the student sampled."""
    with torch.no_grad():
        rkl = reverse_kl(run_teacher(teacher, batch["inputs"]), student(batch["inputs"]))  # (B, T)
    inputs, targets = batch["inputs"][0], batch["targets"][0]  # (T,) row 0
    n = int((inputs != tok.pad_id).sum())  # its real length
    keep = (targets[:n] != IGNORE_INDEX).tolist()
    cells = [f"{tok.decode([int(t)])!r} {float(v):.2f}" for t, v, k in zip(targets[:n], rkl[0, :n], keep) if k]
    return (tok.draw_mask(inputs[:n].tolist() + [int(targets[n - 1])], [0] + [int(k) for k in keep]) +
            "\n  reverse KL(student || teacher) at each sampled token, in nats (the loss is their mean):\n    " +
            " | ".join(cells))


def rescue_rates(teacher, tok, records: list[dict], student: tuple, own: tuple,
                 max_new_tokens: int) -> tuple[list[bool], list[bool]]:
    """On the prompts where the student's sample is wrong, is the teacher right continuing greedily from the
    first half of that sample (its rescue), and from the first half of its own sample (paired by prompt)?
    student, own: (answers, right) from sampled_answers, for the student and for the teacher."""
    wrong = [i for i, ok in enumerate(student[1]) if not ok]
    recs = [records[i] for i in wrong]
    rescued = prefix_correct(teacher, tok, recs, [student[0][i] for i in wrong], 0.5, max_new_tokens)
    from_own = prefix_correct(teacher, tok, recs, [own[0][i] for i in wrong], 0.5, max_new_tokens)
    return rescued, from_own


def exposure(model, tok, records: list[dict], teacher_answers: list[list[int]], max_new_tokens: int) -> dict:
    """Greedy, per prompt: right from its own start; right continuing the first half of the teacher's
    answer (lesson 11's exposure-bias probe); token for token the teacher's answer. Means of each."""
    own = continue_from(model, tok, records, [[] for _ in records], max_new_tokens)
    right = [score(r["prompt"], tok.decode(ids), ended) for r, (ids, ended) in zip(records, own)]
    from_teacher = prefix_correct(model, tok, records, teacher_answers, 0.5, max_new_tokens)
    same = [first_divergence(ids, t) is None for (ids, _), t in zip(own, teacher_answers)]
    return {"own start": sum(right) / len(right), "teacher prefix": sum(from_teacher) / len(right),
            "same as teacher": sum(same) / len(right)}
