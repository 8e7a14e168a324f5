"""minikd.what_seqkd_loses: the measures of what sequence-level KD loses, checked by hand on tiny inputs."""

import math

import pytest
import torch

from minikd.data import IGNORE_INDEX
from minikd.evaluate import decode_records, score
from minikd.model import GPT, get_config
from minikd.seqkd import sequence_logprobs
from minikd.what_seqkd_loses import (alternative_share, answer_entropy_kl, continue_from, entropy_kl_by_example,
                                 first_divergence, form_shares, position_entropy_kl, prefix_correct, valid_forms)
from minikd.world import FORMS, surface_form, verify
from minikd.tokenizer import Tokenizer

PROMPTS = [{"prompt": "Sort 3 1 2 2."}, {"prompt": "Add 47 + 85 step by step."}, {"prompt": "Sort 9 0 4 4."}]


@pytest.fixture(scope="module")
def tok():
    return Tokenizer.default()


@pytest.fixture(scope="module")
def tiny(tok):
    torch.manual_seed(0)
    return GPT(get_config("tiny", vocab_size=tok.vocab_size)).eval()


def test_entropy_and_kl_by_hand():
    student = torch.log(torch.tensor([[0.5, 0.5], [0.9, 0.1]]))
    teacher = torch.log(torch.tensor([[0.8, 0.2], [0.9, 0.1]]))
    entropy, kl = position_entropy_kl(student, teacher)
    assert entropy.tolist() == pytest.approx([math.log(2), -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))], abs=1e-6)
    assert kl.tolist() == pytest.approx([0.8 * math.log(0.8 / 0.5) + 0.2 * math.log(0.2 / 0.5), 0.0], abs=1e-6)


def test_a_uniform_student_has_entropy_log_v():
    entropy, kl = position_entropy_kl(torch.zeros(3, 7), torch.zeros(3, 7))
    assert entropy.tolist() == pytest.approx([math.log(7)] * 3) and kl.tolist() == pytest.approx([0.0] * 3, abs=1e-7)


def test_answer_positions_only_in_row_major_order():
    torch.manual_seed(1)
    s, t = torch.randn(2, 4, 5), torch.randn(2, 4, 5)
    targets = torch.tensor([[IGNORE_INDEX, 1, 2, IGNORE_INDEX], [IGNORE_INDEX, IGNORE_INDEX, 3, 4]])
    entropy, kl = answer_entropy_kl(s, t, targets)
    full_e, full_k = position_entropy_kl(s, t)
    rows = [(0, 1), (0, 2), (1, 2), (1, 3)]
    assert entropy.tolist() == pytest.approx([full_e[b, i].item() for b, i in rows])
    assert kl.tolist() == pytest.approx([full_k[b, i].item() for b, i in rows])


def test_by_example_matches_the_answer_mask(tok, tiny):
    examples = [dict(zip(("ids", "mask"), tok.render(p["prompt"], text)))
                for p in PROMPTS for text in valid_forms(p["prompt"]).values()]
    rows = entropy_kl_by_example(tiny, tiny, examples, tok.pad_id, batch_size=3)
    assert [len(e) for e, _ in rows] == [sum(ex["mask"]) for ex in examples]  # answer tokens + end token
    assert all(k == pytest.approx(0.0, abs=1e-5) for _, ks in rows for k in ks), "a model is at KL 0 to itself"
    assert all(0 < e <= math.log(tok.vocab_size) + 1e-5 for es, _ in rows for e in es)


@pytest.mark.parametrize("prompt", ["Sort 3 1 2 2.", "What is 47 + 85?", "Add 47 + 85 step by step.",
                                    "Add 5 + 3 step by step."])
def test_valid_forms_are_every_accepted_form_of_the_true_answer(prompt):
    family = {"Sort": "sort", "What": "add", "Add": "add_steps"}[prompt.split()[0]]
    forms = valid_forms(prompt)
    assert tuple(forms) == FORMS[family]
    for name, text in forms.items():
        assert verify(prompt, text) and surface_form(family, text) == name, (name, text)


def test_alternative_share_by_hand():
    assert alternative_share([0.0, 0.0]) == pytest.approx(0.5)
    assert alternative_share([math.log(0.7), math.log(0.2), math.log(0.1)]) == pytest.approx(0.3)
    assert alternative_share([-1000.0, -5.0, -1000.0]) == pytest.approx(0.0, abs=1e-12)  # no underflow: 0, not nan
    # renormalised over the valid forms: how sure the model is of the answer does not change the share
    assert alternative_share([math.log(0.007), math.log(0.002), math.log(0.001)]) == pytest.approx(0.3)


def test_form_shares_score_every_form(tok, tiny):
    out = form_shares(tiny, tok, PROMPTS)
    for p, row in zip(PROMPTS, out):
        forms = valid_forms(p["prompt"])
        examples = [dict(zip(("ids", "mask"), tok.render(p["prompt"], t))) for t in forms.values()]
        lps, _ = sequence_logprobs(tiny, examples, tok.pad_id)
        assert list(row["logprobs"]) == list(forms)
        assert list(row["logprobs"].values()) == pytest.approx(lps, abs=1e-4)
        assert row["top"] == max(row["logprobs"], key=row["logprobs"].get)
        assert 0 <= row["share"] <= (len(forms) - 1) / len(forms)


def test_first_divergence():
    assert first_divergence([1, 2, 3], [1, 2, 3]) is None
    assert first_divergence([1, 2, 3], [1, 5, 3]) == 1
    assert first_divergence([4], [1]) == 0
    assert first_divergence([1, 2], [1, 2, 3]) == 2 and first_divergence([1, 2, 3], [1, 2]) == 2
    assert first_divergence([], [7]) == 0 and first_divergence([], []) is None


def test_continuing_from_the_models_own_prefix_changes_nothing(tok, tiny):
    """Greedy decoding is deterministic: given the first k tokens of its own answer, it writes the rest."""
    own = decode_records(tiny, tok, PROMPTS, max_new_tokens=10)
    for k in (0, 3, 9):
        done = continue_from(tiny, tok, PROMPTS, [g.tokens[:k] for g in own], max_new_tokens=10 - k)
        assert [ids for ids, _ in done] == [g.tokens for g in own]
        assert [ended for _, ended in done] == [g.ended for g in own]


def test_prefix_correct_at_zero_is_the_models_own_accuracy(tok, tiny):
    own = decode_records(tiny, tok, PROMPTS, max_new_tokens=8)
    answers = [tok.encode(valid_forms(p["prompt"])["sentence"]) for p in PROMPTS]
    assert prefix_correct(tiny, tok, PROMPTS, answers, 0.0, 8) == [score(p["prompt"], g.text, g.ended)
                                                                 for p, g in zip(PROMPTS, own)]
    # given the whole right answer, the model only has to stop: right exactly where it then writes <|end|>
    whole = continue_from(tiny, tok, PROMPTS, answers, 1)
    assert prefix_correct(tiny, tok, PROMPTS, answers, 1.0, 1) == [ended for _, ended in whole]
