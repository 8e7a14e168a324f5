"""On-policy distillation (minikd/on_policy.py): the loss and its gradient by hand, the mask, the sampled
batches (seeded, counted), GKD's mixture and JSD, the equal-compute accounting."""

import math

import pytest
import torch
import torch.nn.functional as F

from minikd.data import IGNORE_INDEX, SFTData, collate
from minikd.generate import Generation
from minikd.losses import forward_kl, generalized_jsd, reverse_kl
from minikd.model import GPT, get_config
from minikd.generate import generate
from minikd.on_policy import (SAMPLING_STREAM, Arm, Compute, Continuation, MixedData, OnPolicyData, best_lr,
                              continue_student, on_policy_loss, on_policy_objective, on_policy_step, rescue_rates,
                              sampled_answers, sampled_example, seq_kd_flops, seq_kd_steps_for, steps_for_budget)
from minikd.runtime import mix_seed
from minikd.tokenizer import Tokenizer
from minikd.train import TrainConfig, accumulate_gradients, train

TOK = Tokenizer.default()
PROMPTS = ["Sort 3 1 2.", "Add 12 + 30 step by step.", "Sort 9 7.", "Sort 5 5 1."]


def tiny(seed, **kw):
    torch.manual_seed(seed)
    return GPT(get_config("tiny", vocab_size=TOK.vocab_size, **kw)).eval()


def fixed_batch():
    """Two prompts with hand-written 'samples' of different lengths (one cut off, one ended): padding too."""
    p0, p1 = TOK.render_prompt(PROMPTS[0]), TOK.render_prompt(PROMPTS[1])
    g0 = Generation(tokens=TOK.encode("1 2 3"), token_logprobs=[], logprob=0.0, ended=True)
    g1 = Generation(tokens=TOK.encode("2+0=2. 1"), token_logprobs=[], logprob=0.0, ended=False)
    return collate([sampled_example(p0, g0, TOK.end_id), sampled_example(p1, g1, TOK.end_id)], TOK.pad_id)


def test_sampled_example_masks_exactly_the_sampled_tokens():
    prompt = TOK.render_prompt("Sort 2 1.")
    ended = Generation(tokens=[7, 8], token_logprobs=[], logprob=0.0, ended=True)
    cut = Generation(tokens=[7, 8, 9], token_logprobs=[], logprob=0.0, ended=False)
    assert sampled_example(prompt, ended, TOK.end_id) == (prompt + [7, 8, TOK.end_id], [0] * len(prompt) + [1, 1, 1])
    assert sampled_example(prompt, cut, TOK.end_id) == (prompt + [7, 8, 9], [0] * len(prompt) + [1, 1, 1])


def test_gradient_equals_the_hand_computed_reverse_kl_gradient():
    """d KL(p_s || p_t) / d z_s = p_s * (log p_s - log p_t - KL) at every sampled position, 0 elsewhere."""
    batch = fixed_batch()
    student, teacher = tiny(1), tiny(2, n_embd=32)
    z_s = student(batch["inputs"]).detach().requires_grad_(True)  # (B, T, V) a leaf: its gradient is readable
    z_t = teacher(batch["inputs"]).detach()
    (grad,) = torch.autograd.grad(on_policy_loss(z_s, z_t, batch["targets"]), z_s)
    log_ps, log_pt = F.log_softmax(z_s.detach(), -1), F.log_softmax(z_t, -1)
    kl = (log_ps.exp() * (log_ps - log_pt)).sum(-1, keepdim=True)  # (B, T, 1)
    keep = (batch["targets"] != IGNORE_INDEX)[..., None]  # (B, T, 1)
    want = log_ps.exp() * (log_ps - log_pt - kl) * keep
    torch.testing.assert_close(grad, want, rtol=1e-4, atol=1e-7)
    assert grad[~keep.squeeze(-1)].abs().max() == 0, "prompt and padding positions must get no gradient"


def test_loss_is_the_reverse_kl_summed_over_sampled_positions():
    batch = fixed_batch()
    z_s, z_t = tiny(1)(batch["inputs"]), tiny(2)(batch["inputs"])
    keep = batch["targets"] != IGNORE_INDEX
    torch.testing.assert_close(on_policy_loss(z_s, z_t, batch["targets"]), reverse_kl(z_t, z_s)[keep].sum())
    torch.testing.assert_close(on_policy_loss(z_s, z_t, batch["targets"], beta=0.0), forward_kl(z_t, z_s)[keep].sum())
    sharp = on_policy_loss(z_s, z_t, batch["targets"], teacher_temperature=0.5)
    torch.testing.assert_close(sharp, reverse_kl(z_t / 0.5, z_s)[keep].sum())


def test_the_loss_ignores_everything_off_the_mask():
    batch = fixed_batch()
    z_s, z_t = tiny(1)(batch["inputs"]).detach(), tiny(2)(batch["inputs"]).detach()
    off = batch["targets"] == IGNORE_INDEX  # prompt and padding
    noisy_s, noisy_t = z_s.clone(), z_t.clone()
    noisy_s[off] = torch.randn_like(noisy_s[off]) * 50
    noisy_t[off] = torch.randn_like(noisy_t[off]) * 50
    for beta in (0.0, 0.5, 1.0):
        torch.testing.assert_close(on_policy_loss(noisy_s, noisy_t, batch["targets"], beta),
                                   on_policy_loss(z_s, z_t, batch["targets"], beta))


def test_generalized_jsd_limits_and_symmetry():
    torch.manual_seed(0)
    p, q = torch.randn(5, 11), torch.randn(5, 11)
    half = generalized_jsd(p, q, 0.5)
    torch.testing.assert_close(half, generalized_jsd(q, p, 0.5))  # beta = 1/2: the symmetric JSD
    assert bool((half >= 0).all()) and bool((half <= math.log(2) + 1e-6).all())
    eps = 1e-4  # small beta: JSD / beta tends to the forward KL; beta near 1: JSD / (1 - beta) to the reverse
    torch.testing.assert_close(generalized_jsd(p, q, eps) / eps, forward_kl(p, q), rtol=1e-2, atol=1e-3)
    torch.testing.assert_close(generalized_jsd(p, q, 1 - eps) / eps, reverse_kl(p, q), rtol=1e-2, atol=1e-3)
    assert float(generalized_jsd(p, p, 0.3).abs().max()) < 1e-6
    with pytest.raises(ValueError, match="beta"):
        generalized_jsd(p, q, 1.5)


def test_the_step_loss_is_the_mean_per_sampled_token():
    """accumulate_gradients divides the summed loss by the sampled tokens (the batch's targets)."""
    batch = fixed_batch()
    batch["on_policy"] = torch.ones(2, dtype=torch.bool)
    student, teacher = tiny(1), tiny(2)
    objective = on_policy_objective(teacher)
    with torch.no_grad():
        summed = float(objective(student, batch))
    n_sampled = int((batch["targets"] != IGNORE_INDEX).sum())
    assert n_sampled == 6 + 8  # "1 2 3" + end, "2+0=2. 1" cut off: their token counts
    assert accumulate_gradients(student, batch, objective, grad_accum=2) == pytest.approx(summed / n_sampled,
                                                                                         rel=1e-5)


def test_objective_without_the_on_policy_mark_is_plain_sft():
    batch = fixed_batch()
    student, teacher = tiny(1), tiny(2)
    got = on_policy_objective(teacher)(student, batch)
    torch.testing.assert_close(got, F.cross_entropy(student(batch["inputs"]).flatten(0, 1), batch["targets"].flatten(),
                                                    reduction="sum"))


def make_data(student, seed=0, compute=None):
    prompts = [TOK.render_prompt(p) for p in PROMPTS]
    return OnPolicyData(student, prompts, TOK, batch_size=3, seed=seed, max_new_tokens=6, compute=compute)


def test_sampled_batches_are_reproducible_and_counted():
    student = tiny(3)
    a, b = make_data(student).get_batch(5), make_data(student).get_batch(5)
    assert all(torch.equal(a[k], b[k]) for k in a)
    other = make_data(student).get_batch(6)
    assert not (a["inputs"].shape == other["inputs"].shape and torch.equal(a["inputs"], other["inputs"]))
    idx = SFTData(PROMPTS, TOK.pad_id, 3, seed=0).sample_indices(5)
    assert torch.equal(a["index"], idx), "the on-policy arm draws the prompts the seq-KD arm would"
    compute = Compute()
    batch = make_data(student, compute=compute).get_batch(5)
    real = int((batch["inputs"] != TOK.pad_id).sum())
    sampled = int((batch["targets"] != IGNORE_INDEX).sum())
    prompt = sum(len(TOK.render_prompt(PROMPTS[i])) for i in idx.tolist())
    assert (compute.generated, compute.teacher_forward, compute.student_backward) == (sampled, real, real)
    assert compute.student_forward == prompt + sampled + real and compute.steps == {"on-policy": 1}
    assert compute.flops(10, 100) == 2 * 10 * (prompt + sampled + real) + 4 * 10 * real + 2 * 100 * real


def test_a_run_is_reproducible_with_a_seed():
    def run(seed):
        student, teacher = tiny(3), tiny(4)
        data = make_data(student, seed=seed)
        cfg = TrainConfig(steps=3, lr=1e-2, warmup=1, seed=seed, log_every=0, device="cpu")
        history = train(student, data.get_batch, on_policy_objective(teacher), cfg)
        return student.state_dict(), [h["loss"] for h in history]

    (w1, l1), (w2, l2), (_, l3) = run(0), run(0), run(1)
    assert l1 == l2 and all(torch.equal(w1[k], w2[k]) for k in w1)
    assert l1 != l3


def test_mixture_share_and_its_compute():
    assert [on_policy_step(s, 0.5) for s in range(6)] == [False, True] * 3
    for share in (0.0, 0.3, 0.5, 1.0):
        assert sum(on_policy_step(s, share) for s in range(10)) == round(10 * share)
    examples = [dict(zip(("ids", "mask"), TOK.render(p, "1 2"))) for p in PROMPTS]
    compute = Compute()
    mixed = MixedData(make_data(tiny(3), compute=compute), SFTData(examples, TOK.pad_id, 3, seed=0), share=0.5)
    kinds = ["on_policy" in mixed.get_batch(s) for s in range(4)]
    assert kinds == [False, True, False, True] and compute.steps == {"seq-KD": 2, "on-policy": 2}
    with pytest.raises(ValueError, match="share"):
        on_policy_step(0, 1.5)


def test_seq_kd_steps_for_reaches_the_budget():
    examples = [dict(zip(("ids", "mask"), TOK.render(p, "1 2"))) for p in PROMPTS]
    offline = SFTData(examples, TOK.pad_id, 2, seed=0)
    per_step = [6 * 7 * int((offline.get_batch(s)["inputs"] != TOK.pad_id).sum()) for s in range(5)]
    assert seq_kd_steps_for(sum(per_step[:3]), offline, n_student=7) == 3
    assert seq_kd_steps_for(sum(per_step[:3]) + 1, offline, n_student=7) == 4
    assert seq_kd_steps_for(0, offline, n_student=7) == 0


def recorded_continuation(share, monkeypatch, steps=8):
    """continue_student (GKD's mixture at `share`) with every on-policy batch recorded, together with the
    weights of the model that sampled it at that moment and the model object itself."""
    seen = []
    original = OnPolicyData.get_batch

    def recording(self, step):
        weights = {k: v.clone() for k, v in self.student.state_dict().items()}
        batch = original(self, step)
        seen.append((step, self.student, weights, batch))
        return batch
    monkeypatch.setattr(OnPolicyData, "get_batch", recording)
    examples = [dict(zip(("ids", "mask"), TOK.render(p, "1 2"))) for p in PROMPTS]
    prompts = [TOK.render_prompt(p) for p in PROMPTS]
    setup = Continuation(tiny(4), TOK, examples, prompts, batch_size=3, start=0, max_new_tokens=6, length_groups=1)
    base = tiny(3)
    model, _, compute = continue_student(base, Arm("gkd", share), setup, steps, lr=1e-2, seed=0)
    return base, model, compute, seen, prompts


@pytest.mark.parametrize("share", [0.0, 0.25, 0.5, 0.75, 1.0])
def test_gkd_share_gives_that_share_of_on_policy_steps_of_the_students_own_samples(share, monkeypatch):
    """GKD's lambda: exactly lambda * steps of the run are on-policy, and every on-policy batch is what the
    model being trained (not the frozen base, not the teacher) samples with its weights of that step.
    Shown to fail on an inverted share (on_policy_step's test made `1 - share`): 6 on-policy steps of 8 at 0.25."""
    steps = 8
    base, model, compute, seen, prompts = recorded_continuation(share, monkeypatch, steps)
    n_on = round(share * steps)
    assert len(seen) == n_on and compute.steps.get("on-policy", 0) == n_on, f"share {share}: {len(seen)} of {steps}"
    assert compute.steps.get("seq-KD", 0) == steps - n_on
    for step, sampler, weights, batch in seen:
        trained_copy = sampler is model and sampler is not base
        assert trained_copy, "the on-policy batches must be sampled by the model being trained, not the base"
        again = tiny(0)
        again.load_state_dict(weights)
        index = batch["index"].tolist()
        gens = generate(again.eval(), [prompts[i] for i in index], max_new_tokens=6, end_id=TOK.end_id,
                        method="sample", temperature=1.0, seed=mix_seed(0, step, SAMPLING_STREAM), batch_size=len(index))
        want = collate([sampled_example(prompts[i], g, TOK.end_id) for i, g in zip(index, gens)], TOK.pad_id)
        assert torch.equal(batch["inputs"], want["inputs"]) and torch.equal(batch["targets"], want["targets"])
    base_weights = base.state_dict()
    for step, _, weights, _ in [s for s in seen if s[0] > 0]:  # after a step, the sampler has moved
        assert any(not torch.equal(weights[k], base_weights[k]) for k in weights), f"step {step}: base weights"


def test_steps_for_budget_and_best_lr():
    examples = [dict(zip(("ids", "mask"), TOK.render(p, "1 2"))) for p in PROMPTS]
    prompts = [TOK.render_prompt(p) for p in PROMPTS]
    setup = Continuation(tiny(4, n_embd=32), TOK, examples, prompts, batch_size=3, start=5, max_new_tokens=6)
    base = tiny(3)
    budget = seq_kd_flops(setup, base.num_params(), 10, seed=0)
    assert steps_for_budget(base, Arm("seq", 0.0), setup, budget, seed=0) == 10
    on = steps_for_budget(base, Arm("on", 1.0), setup, budget, seed=0)
    mix = steps_for_budget(base, Arm("mix", 0.5), setup, budget, seed=0)
    assert 1 <= on < mix < 10, "an on-policy step costs more than a seq-KD step (sampling and the teacher)"
    assert best_lr({1e-3: 0.5, 3e-3: 0.7, 3e-4: 0.7}) == 3e-4, "the best score; a tie goes to the smaller lr"
    assert best_lr({1e-3: 0.9, 3e-3: 0.7}) == 1e-3


def test_rescue_rates_pair_the_teachers_two_starts_on_the_students_wrong_prompts():
    """A teacher that always writes the same tokens: continuing from the first half of the student's wrong
    answer vs from the first half of its own answer, on exactly the prompts the student got wrong."""
    records = [{"prompt": p} for p in PROMPTS]
    teacher = tiny(5)
    student = ([[7, 8, 9, 10]] * 4, [True, False, False, True])
    own = ([[11, 12]] * 4, [False] * 4)
    rescued, from_own = rescue_rates(teacher, TOK, records, student, own, max_new_tokens=4)
    assert len(rescued) == len(from_own) == 2
    answers, right = sampled_answers(teacher, TOK, records, 0, seed=0, max_new_tokens=4)
    assert len(answers) == 4 and all(r is False or r is True for r in right)
    greedy = generate(teacher, [TOK.render_prompt(p) for p in PROMPTS], max_new_tokens=4, end_id=TOK.end_id,
                      method="greedy")
    assert answers == [g.tokens for g in greedy], "temperature 0 is the greedy answer"


def test_an_arm_with_its_own_teacher_is_graded_by_it():
    """Arm.teacher (lesson 13's clean-label teacher) replaces the Continuation's teacher as the grader."""
    examples = [dict(zip(("ids", "mask"), TOK.render(p, "1 2"))) for p in PROMPTS]
    prompts = [TOK.render_prompt(p) for p in PROMPTS]
    default, other = tiny(4), tiny(6)

    def weights(setup_teacher, arm):
        setup = Continuation(setup_teacher, TOK, examples, prompts, batch_size=3, start=0, max_new_tokens=6)
        model, _, _ = continue_student(tiny(3), arm, setup, 2, lr=1e-2, seed=0)
        return model.state_dict()

    own = weights(default, Arm("on-policy, other teacher", 1.0, 1.0, other))
    want, graded_by_default = weights(other, Arm("on-policy", 1.0)), weights(default, Arm("on-policy", 1.0))
    assert all(torch.equal(own[k], want[k]) for k in own)
    assert not all(torch.equal(own[k], graded_by_default[k]) for k in own)
