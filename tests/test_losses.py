"""minikd.losses: every loss against a hand computation on tiny tensors (V = 3), plus the properties KD relies on."""

import math

import pytest
import torch
import torch.nn as nn

from minikd.data import IGNORE_INDEX, collate
from minikd.losses import (
    forward_kl, kd_loss, log_softmax_t, masked_nll, n_answer_tokens, reverse_kl, softmax_t, topk_kd_loss,
)

I = IGNORE_INDEX
L = math.log


def logits_of(*probs):
    """Logits whose softmax is exactly `probs` (log-probabilities are valid logits)."""
    return torch.tensor([[L(p) for p in row] for row in probs])


# --- the sequence-level loss ---------------------------------------------------------------------------


def test_masked_nll_hand_computation():
    logits = torch.stack([torch.tensor([float("nan")] * 3),  # a prompt position: never read, not even its NaN
                          torch.tensor([0.0, L(2), 0.0]),  # p = 1/4, 1/2, 1/4
                          torch.tensor([0.0, L(3), 0.0])]).unsqueeze(0)  # p = 1/5, 3/5, 1/5 ; (1, 3, 3)
    targets = torch.tensor([[I, 1, 0]])
    # -log(1/2) - log(1/5) = log 2 + log 5, over 2 answer tokens
    assert masked_nll(logits, targets).item() == pytest.approx((L(2) + L(5)) / 2, abs=1e-6)
    assert masked_nll(logits, targets, reduction="sum").item() == pytest.approx(L(10), abs=1e-6)
    assert n_answer_tokens(targets) == 2


def test_mean_is_per_answer_token_over_the_batch_not_per_sequence():
    logits = torch.zeros(2, 3, 3)  # uniform: every answer token costs log 3
    logits[1, 2] = torch.tensor([L(2), 0.0, 0.0])  # p = 1/2, 1/4, 1/4
    targets = torch.tensor([[I, I, 0], [1, 2, 0]])  # 1 answer token in row 0, 3 in row 1
    per_token = (L(3) + L(3) + L(3) + L(2)) / 4
    assert masked_nll(logits, targets).item() == pytest.approx(per_token, abs=1e-6)


def test_masked_positions_get_no_gradient_and_no_nan():
    logits = torch.randn(2, 4, 5)
    logits[0, 0] = float("nan")  # at an ignored position
    logits.requires_grad_(True)
    targets = torch.tensor([[I, 1, 2, I], [3, I, I, I]])
    masked_nll(logits, targets).backward()
    assert torch.isfinite(logits.grad).all()
    assert (logits.grad[targets == I] == 0).all()


def test_losses_are_float32_whatever_the_input_dtype():
    torch.manual_seed(0)
    s, t = torch.randn(2, 3, 7).bfloat16(), torch.randn(2, 3, 7).bfloat16()
    y = torch.tensor([[I, 1, 2], [3, 4, I]])
    for loss in (masked_nll(s, y), kd_loss(s, t, y, temperature=2.0), forward_kl(t, s), reverse_kl(t, s)):
        assert loss.dtype == torch.float32
    assert torch.equal(masked_nll(s, y), masked_nll(s.float(), y))
    assert log_softmax_t(s, 2.0).dtype == softmax_t(s, 2.0).dtype == torch.float32


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_all_masked_batch_is_a_finite_zero_with_a_warning(reduction):
    s = torch.randn(2, 3, 4, requires_grad=True)
    t = torch.randn(2, 3, 4)
    y = torch.full((2, 3), I)
    ids, lp = torch.zeros(2, 3, 2, dtype=torch.long), torch.zeros(2, 3, 2)
    for fn in (lambda: masked_nll(s, y, reduction),
               lambda: kd_loss(s, t, y, 2.0, 0.5, reduction),
               lambda: topk_kd_loss(s, ids, lp, y, 2.0, 0.5, reduction)):
        with pytest.warns(RuntimeWarning, match="no answer tokens"):
            loss = fn()
        assert loss.item() == 0.0
        loss.backward()  # still differentiable: the training loop may call backward on it
    assert torch.equal(s.grad, torch.zeros_like(s))


# --- word-level KD: KL at a temperature -----------------------------------------------------------------

P_T = (1 / 2, 1 / 4, 1 / 4)  # teacher
UNIFORM = (1 / 3, 1 / 3, 1 / 3)  # student


def test_forward_and_reverse_kl_hand_computation():
    t, s = logits_of(P_T), logits_of(UNIFORM)  # (1, 3)
    fwd = 1 / 2 * L((1 / 2) / (1 / 3)) + 2 * (1 / 4) * L((1 / 4) / (1 / 3))
    rev = 1 / 3 * L((1 / 3) / (1 / 2)) + 2 * (1 / 3) * L((1 / 3) / (1 / 4))
    assert forward_kl(t, s).item() == pytest.approx(fwd, abs=1e-6)
    assert reverse_kl(t, s).item() == pytest.approx(rev, abs=1e-6)
    assert fwd != pytest.approx(rev)  # KL is not symmetric


def test_temperature_hand_computation():
    # softmax(log p / 2) is proportional to sqrt(p): T = 2 flattens the teacher towards the student
    t, s = logits_of(P_T), logits_of(UNIFORM)
    z = math.sqrt(1 / 2) + 1 / 2 + 1 / 2
    q = (math.sqrt(1 / 2) / z, 1 / 2 / z, 1 / 2 / z)
    assert softmax_t(t, 2.0)[0].tolist() == pytest.approx(q, abs=1e-6)
    expected = sum(qi * L(qi / (1 / 3)) for qi in q)
    assert forward_kl(t, s, temperature=2.0).item() == pytest.approx(expected, abs=1e-6)
    assert forward_kl(t, s, temperature=2.0) < forward_kl(t, s, temperature=1.0)


def test_kl_of_a_distribution_with_itself_is_zero_and_kl_is_never_negative():
    torch.manual_seed(0)
    a, b = torch.randn(4, 5, 11) * 3, torch.randn(4, 5, 11) * 3
    for T in (0.5, 1.0, 2.0, 8.0):
        for kl in (forward_kl, reverse_kl):
            torch.testing.assert_close(kl(a, a, T), torch.zeros(4, 5), rtol=0, atol=1e-6)
            assert kl(a, b, T).shape == (4, 5)
            assert (kl(a, b, T) >= -1e-6).all()


def test_kd_loss_hand_computation():
    # position 0 is prompt; positions 1 and 2 are answer tokens with targets 0 and 1
    s = torch.stack([logits_of(UNIFORM)[0], logits_of(UNIFORM)[0], torch.tensor([0.0, L(2), 0.0])]).unsqueeze(0)
    t = torch.stack([torch.zeros(3), logits_of(P_T)[0], torch.zeros(3)]).unsqueeze(0)
    y = torch.tensor([[I, 0, 1]])
    T, alpha = 2.0, 0.25
    # answer token 1: student uniform, teacher at T=2 is sqrt(p_T) normalised
    z = math.sqrt(1 / 2) + 1
    q_t = (math.sqrt(1 / 2) / z, 1 / 2 / z, 1 / 2 / z)
    kl_1 = sum(q * L(q / (1 / 3)) for q in q_t)
    hard_1 = L(3)
    # answer token 2: teacher uniform, student p = (1/4, 1/2, 1/4) which at T=2 is (1, sqrt 2, 1) / (2 + sqrt 2)
    q_s = (1 / (2 + math.sqrt(2)), math.sqrt(2) / (2 + math.sqrt(2)), 1 / (2 + math.sqrt(2)))
    kl_2 = sum(1 / 3 * L((1 / 3) / q) for q in q_s)
    hard_2 = L(2)
    total = (1 - alpha) * (hard_1 + hard_2) + alpha * T**2 * (kl_1 + kl_2)
    assert kd_loss(s, t, y, T, alpha).item() == pytest.approx(total / 2, abs=1e-6)
    assert kd_loss(s, t, y, T, alpha, reduction="sum").item() == pytest.approx(total, abs=1e-6)
    # kl="reverse" swaps only the KL term
    rev = (1 - alpha) * (hard_1 + hard_2) + alpha * T**2 * reverse_kl(t, s, T)[0, 1:].sum().item()
    assert kd_loss(s, t, y, T, alpha, kl="reverse").item() == pytest.approx(rev / 2, abs=1e-6)


def test_alpha_zero_is_masked_nll_and_alpha_one_is_t2_kl():
    torch.manual_seed(0)
    s, t = torch.randn(3, 4, 6), torch.randn(3, 4, 6)
    y = torch.tensor([[I, I, 1, 2], [I, 3, 4, 5], [I, I, I, 0]])
    assert torch.equal(kd_loss(s, t, y, temperature=3.0, alpha=0.0), masked_nll(s, y))
    keep = y != I
    kl_mean = forward_kl(t, s, 3.0)[keep].mean()
    torch.testing.assert_close(kd_loss(s, t, y, temperature=3.0, alpha=1.0), 9.0 * kl_mean)


def test_teacher_gets_no_gradient():
    s, t = torch.randn(1, 3, 4, requires_grad=True), torch.randn(1, 3, 4, requires_grad=True)
    kd_loss(s, t, torch.tensor([[I, 1, 2]]), 2.0, 1.0).backward()
    assert t.grad is None and s.grad is not None


def test_t_squared_keeps_the_gradient_size_flat_across_temperatures():
    g = torch.Generator().manual_seed(0)
    t, s0 = torch.randn(4, 6, 32, generator=g) * 2, torch.randn(4, 6, 32, generator=g) * 2
    y = torch.randint(32, (4, 6), generator=g)
    with_t2, without = {}, {}
    for T in (1.0, 2.0, 4.0, 8.0):
        s = s0.clone().requires_grad_(True)
        kd_loss(s, t, y, temperature=T, alpha=1.0).backward()
        with_t2[T] = s.grad.norm().item()
        s = s0.clone().requires_grad_(True)
        forward_kl(t, s, T).mean().backward()  # the same KL term, no T^2
        without[T] = s.grad.norm().item()
    assert max(with_t2.values()) / min(with_t2.values()) < 1.5  # roughly flat
    for T in (2.0, 4.0, 8.0):  # falls about as 1/T^2
        assert 0.5 < without[T] * T**2 / without[1.0] < 2.0
    assert without[8.0] < without[1.0] / 30


def test_vocabulary_mismatch_is_a_clear_error():
    s, t = torch.randn(1, 2, 4), torch.randn(1, 2, 5)
    y = torch.tensor([[1, 2]])
    for call in (lambda: forward_kl(t, s), lambda: reverse_kl(t, s), lambda: kd_loss(s, t, y)):
        with pytest.raises(ValueError, match="teacher logits have 5 tokens, student logits 4"):
            call()
    ids = torch.tensor([[[0, 4], [1, 2]]])  # a stored teacher id (4) the student's vocabulary lacks
    with pytest.raises(ValueError, match="vocabulary mismatch"):
        topk_kd_loss(s, ids, torch.zeros(1, 2, 2), y, 1.0, 0.5)


def test_bad_arguments_are_clear_errors():
    s, t, y = torch.randn(1, 2, 3), torch.randn(1, 2, 3), torch.tensor([[I, 1]])
    with pytest.raises(ValueError, match="temperature must be > 0"):
        kd_loss(s, t, y, temperature=0.0)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        kd_loss(s, t, y, alpha=1.5)
    with pytest.raises(ValueError, match="reduction must be"):
        masked_nll(s, y, reduction="avg")
    with pytest.raises(ValueError, match="kl must be"):
        kd_loss(s, t, y, kl="js")
    with pytest.raises(ValueError, match=r"targets \(B, T\)"):
        masked_nll(s, torch.tensor([I, 1]))
    with pytest.raises(ValueError, match="target id 3 is outside the vocabulary of 3 tokens"):
        masked_nll(s, torch.tensor([[I, 3]]))


# --- offline KD from a top-k store ------------------------------------------------------------------------


def test_topk_kd_loss_hand_computation():
    # teacher p = (1/2, 1/4, 1/4); the store keeps k = 2: ids (0, 1), renormalised to (2/3, 1/3)
    s = logits_of(UNIFORM, UNIFORM).unsqueeze(0)  # (1, 2, 3)
    ids = torch.tensor([[[-1, 999], [0, 1]]])  # position 0 is prompt: its ids are padding and never read
    lp = torch.tensor([[[0.0, 0.0], [L(1 / 2), L(1 / 4)]]])
    y = torch.tensor([[I, 2]])
    soft = 2 / 3 * L((2 / 3) / (1 / 3)) + 1 / 3 * L((1 / 3) / (1 / 3))
    assert topk_kd_loss(s, ids, lp, y, temperature=1.0, alpha=1.0).item() == pytest.approx(soft, abs=1e-6)
    mixed = 0.5 * L(3) + 0.5 * 4.0 * soft  # at T = 2 the student is still uniform, the stored values are used as given
    assert topk_kd_loss(s, ids, lp, y, temperature=2.0, alpha=0.5).item() == pytest.approx(mixed, abs=1e-6)


def test_topk_with_k_equal_vocabulary_is_kd_loss():
    torch.manual_seed(0)
    V, T, alpha = 9, 2.0, 0.3
    s = torch.randn(2, 5, V, requires_grad=True)
    t = torch.randn(2, 5, V)
    y = torch.tensor([[I, I, 1, 2, 3], [I, 4, 5, I, I]])
    logprobs, ids = log_softmax_t(t, T).topk(V, dim=-1)  # what the store holds, at temperature T
    a = topk_kd_loss(s, ids, logprobs, y, T, alpha)
    b = kd_loss(s, t, y, T, alpha)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    (ga,) = torch.autograd.grad(a, s)
    (gb,) = torch.autograd.grad(b, s)
    torch.testing.assert_close(ga, gb, rtol=0, atol=1e-6)


# --- gradient accumulation ---------------------------------------------------------------------------


def test_gradient_accumulation_over_unequal_micro_batches_equals_one_batch():
    """Sum the loss over answer tokens per micro-batch, divide by the answer tokens of the whole step."""
    torch.manual_seed(0)
    V = 12
    student = nn.Embedding(V, V)  # a bigram model: logits = table[token]
    teacher_table = torch.randn(V, V)
    lengths, n_answer = (4, 6, 9, 11, 5), (1, 3, 5, 2, 4)
    examples = [(torch.randint(V, (n,)).tolist(), [0] * (n - a) + [1] * a) for n, a in zip(lengths, n_answer)]
    micro = [examples[:2], examples[2:]]  # padded to 6 and to 11 tokens: different shapes

    def loss_of(batch, reduction):
        return kd_loss(student(batch["inputs"]), teacher_table[batch["inputs"]], batch["targets"],
                       temperature=2.0, alpha=0.5, reduction=reduction)

    full = collate(examples, pad_id=0)
    student.zero_grad()
    loss_of(full, "mean").backward()
    g_full = student.weight.grad.clone()

    batches = [collate(m, pad_id=0) for m in micro]
    n_total = sum(n_answer_tokens(b["targets"]) for b in batches)
    assert n_total == sum(n_answer) and n_answer_tokens(batches[0]["targets"]) != n_answer_tokens(batches[1]["targets"])
    student.zero_grad()
    for b in batches:
        (loss_of(b, "sum") / n_total).backward()
    torch.testing.assert_close(student.weight.grad, g_full, rtol=0, atol=1e-6)

    # the classic bug: averaging each micro-batch's mean weights tokens of small micro-batches more
    student.zero_grad()
    for b in batches:
        (loss_of(b, "mean") / len(batches)).backward()
    assert not torch.allclose(student.weight.grad, g_full, atol=1e-4)
