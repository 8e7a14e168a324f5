"""ULD (Boizard et al. 2024) on tiny tensors, against hand computations: sorted, zero-padded L1 between the
two distributions, positions paired by answer index and cut to the shorter answer, added to the CE."""

import math

import pytest
import torch
import torch.nn.functional as F

from minikd.data import IGNORE_INDEX, SFTData
from minikd.losses import masked_nll
from minikd.model import GPT, get_config
from minikd.tokenizer import Tokenizer
from minikd.uld import (aligned_rows, pad_to, sorted_probs, teacher_rows, uld_by_example, uld_distance,
                        uld_loss, uld_objective)
from minikd.word_kd import build_topk_store

X = IGNORE_INDEX


def test_distance_by_hand():
    """The module docstring's example: sorted [0.7, 0.2, 0.1, 0] against [0.6, 0.3, 0.05, 0.05] -> 0.3."""
    p = torch.tensor([0.1, 0.7, 0.2])
    q = torch.tensor([0.05, 0.05, 0.6, 0.3])
    assert sorted_probs(p).tolist() == pytest.approx([0.7, 0.2, 0.1])
    assert pad_to(sorted_probs(p), 4).tolist() == pytest.approx([0.7, 0.2, 0.1, 0.0])
    assert float(uld_distance(p, q)) == pytest.approx(0.3, abs=1e-6)
    assert float(uld_distance(q, p)) == pytest.approx(0.3, abs=1e-6)  # symmetric; either side may be the longer


def test_distance_ignores_which_token():
    """What ULD cannot carry: any permutation of either vocabulary leaves the distance unchanged."""
    g = torch.Generator().manual_seed(0)
    p = F.softmax(torch.randn(5, 9, generator=g), dim=-1)  # (positions, Vs)
    q = F.softmax(torch.randn(5, 6, generator=g), dim=-1)  # (positions, Vt)
    d = uld_distance(p, q)
    assert d.shape == (5,)
    torch.testing.assert_close(uld_distance(p[:, torch.randperm(9, generator=g)], q), d)
    torch.testing.assert_close(uld_distance(p, q[:, torch.randperm(6, generator=g)]), d)
    # the same distribution over a longer vocabulary (zeros appended) is at distance 0
    assert float(uld_distance(F.pad(q, (0, 3)), q).abs().max()) < 1e-7


def test_alignment_cuts_to_the_shorter_answer():
    logits = torch.arange(2 * 4 * 3, dtype=torch.float).reshape(2, 4, 3)
    targets = torch.tensor([[X, 0, 1, 2],   # 3 student answer positions
                            [X, X, 1, X]])  # 1
    teacher = [torch.full((2, 5), 0.2), torch.full((4, 5), 0.2)]  # 2 and 4 teacher positions
    s, t = aligned_rows(logits, targets, teacher)
    assert s.shape == (2 + 1, 3) and t.shape == (3, 5)
    torch.testing.assert_close(s, torch.stack([logits[0, 1], logits[0, 2], logits[1, 2]]))


def hand_batch():
    """One row, two answer positions whose softmax is known exactly; the teacher has three positions."""
    p1, p2 = torch.tensor([0.1, 0.7, 0.2]), torch.tensor([0.5, 0.25, 0.25])
    logits = torch.stack([torch.zeros(3), p1.log(), p2.log()])[None]  # (1, 3, 3)
    targets = torch.tensor([[X, 1, 2]])
    teacher = [torch.tensor([[0.6, 0.3, 0.05, 0.05], [1.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0]])]
    return logits, targets, teacher


def test_loss_by_hand():
    logits, targets, teacher = hand_batch()
    # position 1: 0.3 (the docstring's example); position 2: [0.5, 0.25, 0.25, 0] vs [1, 0, 0, 0] -> 1.0;
    # the teacher's third position has no student partner: cut. CE: -log 0.7 - log 0.25.
    ce = -math.log(0.7) - math.log(0.25)
    for weight in (0.0, 1.0, 2.5):
        want_sum = ce + weight * (0.3 + 1.0)
        assert float(uld_loss(logits, targets, teacher, weight, reduction="sum")) == pytest.approx(want_sum, rel=1e-5)
        assert float(uld_loss(logits, targets, teacher, weight)) == pytest.approx(want_sum / 2, rel=1e-5)
    assert float(uld_loss(logits, targets, teacher, 0.0)) == pytest.approx(float(masked_nll(logits, targets)))


def test_gradient_flows_from_answer_positions_only():
    logits, targets, teacher = hand_batch()
    s = logits.clone().requires_grad_(True)
    uld_loss(s, targets, teacher, 1.0).backward()
    assert s.grad is not None and float(s.grad.abs().sum()) > 0
    assert float(s.grad[0, 0].abs().sum()) == 0.0  # a prompt position: no loss there
    with pytest.raises(ValueError, match="teacher rows"):
        uld_loss(logits, targets, teacher * 2)


def test_objective_reads_the_teacher_store_never_its_ids(tmp_path):
    """The teacher's side comes from an offline top-k store of ITS tokenization; the student has another."""
    tok_t, tok_s = Tokenizer.default(), Tokenizer.second()
    records = [{"prompt": "Sort 3 1 2.", "completion": "Sorted: 1 2 3."}, {"prompt": "Add 12 + 5 step by step.",
                                                                          "completion": "2+5=7. 1+0=1. Sum: 17."}]
    teacher_ex = [dict(zip(("ids", "mask"), tok_t.render(r["prompt"], r["completion"]))) for r in records]
    student_ex = [dict(zip(("ids", "mask"), tok_s.render(r["prompt"], r["completion"]))) for r in records]
    torch.manual_seed(0)
    teacher = GPT(get_config("tiny", vocab_size=tok_t.vocab_size)).eval()
    student = GPT(get_config("tiny", vocab_size=tok_s.vocab_size)).eval()
    store = build_topk_store(teacher, teacher_ex, tok_t.pad_id, k=8, temperature=1.0, path=tmp_path / "s.pt",
                             fingerprint=tok_t.fingerprint, logprob_dtype=torch.float32)
    batch = SFTData(student_ex, tok_s.pad_id, batch_size=4, seed=0).get_batch(0)
    rows = teacher_rows(store, batch["index"])
    assert [len(r) for r in rows] == [sum(teacher_ex[i]["mask"][1:]) for i in batch["index"].tolist()]
    assert all(bool((r[:, :-1] >= r[:, 1:]).all()) for r in rows)  # sorted, largest first
    got = uld_objective(store, weight=1.5)(student, batch)
    want = uld_loss(student(batch["inputs"]), batch["targets"], rows, 1.5, reduction="sum")
    torch.testing.assert_close(got, want)
    per_example = uld_by_example(student, student_ex, store, tok_s.pad_id)
    assert len(per_example) == 2 and all(0.0 <= d <= 2.0 for d in per_example)  # an L1 of two distributions
    with pytest.raises(ValueError, match="index"):
        uld_objective(store)(student, {k: v for k, v in batch.items() if k != "index"})
