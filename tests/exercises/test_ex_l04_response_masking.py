"""Lesson 4 exercises: shifted, masked targets; the masked loss; -log p(u | s) by hand (why sequence-level KD is SFT)."""

import math
import warnings

import pytest
import torch
import torch.nn.functional as F

from minikd.model import GPT, GPTConfig

P, R, E, PAD = 90, 91, 92, 0  # stand-ins for <|prompt|>, <|response|>, <|end|>, <|pad|>


def test_ex10_shift_and_mask_one_example(wb):
    #        [P] p1  p2 [R] a1  a2 [E]
    ids = [P, 10, 11, R, 20, 21, E]
    mask = [0, 0, 0, 0, 1, 1, 1]
    batch = wb.ex10_collate([(ids, mask)], PAD)
    assert batch["inputs"].tolist() == [[P, 10, 11, R, 20, 21]], "inputs are ids[:-1]: the last id predicts nothing"
    assert batch["targets"].tolist() == [[-100, -100, -100, 20, 21, E]], \
        "targets are ids[1:], kept where mask[1:] == 1 (the mask moves WITH the targets), -100 elsewhere"


def test_ex10_no_target_on_the_prompt(wb):
    batch = wb.ex10_collate([([P, 10, 11, 12, R, 20, E], [0, 0, 0, 0, 0, 1, 1])], PAD)
    targets = batch["targets"][0].tolist()
    assert targets[:4] == [-100] * 4, "prompt and template positions must be IGNORE_INDEX (-100): no loss there"
    assert targets[4:] == [20, E], "the answer token and the end token are the targets"


def test_ex10_padding_is_ignored(wb):
    short = ([P, 10, R, 20, E], [0, 0, 0, 1, 1])
    long = ([P, 10, 11, 12, R, 20, 21, E], [0, 0, 0, 0, 0, 1, 1, 1])
    batch = wb.ex10_collate([short, long], PAD)
    assert tuple(batch["inputs"].shape) == (2, 7) and tuple(batch["targets"].shape) == (2, 7), \
        "(B, T-1) with T the longest sequence"
    assert batch["inputs"].dtype == torch.long and batch["targets"].dtype == torch.long
    assert batch["inputs"][0].tolist() == [P, 10, R, 20, PAD, PAD, PAD], "pad the inputs on the right with pad_id"
    assert batch["targets"][0].tolist() == [-100, -100, 20, E, -100, -100, -100], \
        "padding positions are IGNORE_INDEX (-100) in the targets, or the loss counts them"
    assert batch["targets"][1].tolist() == [-100, -100, -100, -100, 20, 21, E]


def test_ex11_masked_nll_by_hand(wb):
    # V = 3. Position 1: p(target 2) = 2/4; position 2: p(target 1) = 1/5. Position 0 is prompt.
    logits = torch.tensor([[[0.0, 0.0, 9.0], [0.0, 0.0, math.log(2)], [math.log(3), 0.0, 0.0]]])
    targets = torch.tensor([[-100, 2, 1]])
    got = wb.ex11_masked_nll(logits, targets)
    want = (math.log(2) + math.log(5)) / 2
    assert float(got) == pytest.approx(want, abs=1e-5), \
        f"mean of -log p(target) over the 2 answer positions should be {want:.5f}, got {float(got):.5f}"


def test_ex11_prompt_and_padding_do_not_count(wb):
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    targets = torch.tensor([[-100, -100, 3, 4, -100],  # two answer tokens, then padding
                            [-100, 1, 2, 5, 6]])  # four answer tokens
    keep = targets != -100
    want = -F.log_softmax(logits[keep], dim=-1).gather(1, targets[keep][:, None]).mean()
    got = wb.ex11_masked_nll(logits, targets)
    assert float(got) == pytest.approx(float(want), abs=1e-5), \
        "average over the 6 answer tokens of the batch: not over all 10 positions, not per sequence"
    logits2 = logits.clone()
    logits2[~keep] = 100.0 * torch.randn_like(logits2[~keep])  # wild logits where the targets are ignored
    assert float(wb.ex11_masked_nll(logits2, targets)) == pytest.approx(float(want), abs=1e-5), \
        "logits at prompt and padding positions must not change the loss"


def test_ex11_no_answer_tokens_is_zero_not_nan(wb):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = float(wb.ex11_masked_nll(torch.randn(1, 3, 4), torch.full((1, 3), -100)))
    assert got == 0.0, f"a batch without answer tokens must give 0.0 (not 0/0 = nan), got {got}"


def _tiny_gpt(seed=0, V=13):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=V, block_size=16, n_layer=1, n_head=2, n_embd=16)).eval()


def test_ex12_logprob_of_the_answer_by_hand(wb):
    model = _tiny_gpt()
    ids = [10, 3, 4, 11, 5, 6, 12]  # [P] s s [R] u u [E]
    mask = [0, 0, 0, 0, 1, 1, 1]
    by_hand = 0.0
    with torch.no_grad():  # log p(u | s) = sum over answer tokens of log p(u_t | s, u_<t), one prefix at a time
        for t in range(1, len(ids)):
            if mask[t]:
                logp = F.log_softmax(model(torch.tensor([ids[:t]]))[0, -1], dim=-1)
                by_hand += float(logp[ids[t]])
    got = wb.ex12_answer_logprob(model, ids, mask)
    assert float(got) == pytest.approx(by_hand, abs=1e-4), \
        f"log p(u + <|end|> | s) by hand is {by_hand:.4f}, got {float(got):.4f} " \
        "(the logits at position t-1 predict token t; the end token counts)"


def test_ex12_card_question_2_sft_loss_is_minus_logprob(wb):
    """Card, question 2: the SFT loss on the answer tokens IS -log p(u | s), divided by |u| -- sequence KD is SFT."""
    from minikd.data import collate
    from minikd.losses import masked_nll

    model = _tiny_gpt(seed=3)
    ids, mask = [10, 7, 8, 9, 11, 1, 2, 3, 12], [0, 0, 0, 0, 0, 1, 1, 1, 1]
    batch = collate([(ids, mask)], PAD)
    with torch.no_grad():
        sft_loss = float(masked_nll(model(batch["inputs"]), batch["targets"]))
    logprob = float(wb.ex12_answer_logprob(model, ids, mask))
    assert sft_loss == pytest.approx(-logprob / sum(mask), abs=1e-5), \
        "the masked SFT loss (mean over answer tokens) must equal -log p(u | s) / |u|"
