"""Lesson 4 — response masking: the loss covers the answer only.

The card:
    "Prompt tokens and answer tokens must be told apart. The student should be penalised not for
    copying the prompt but for continuing it with the teacher's response, so the loss covers only the
    answer span:
        [prompt tokens][teacher answer tokens]
                       ^^^^^^^^^^^^^^^^^^^^^^^
                       loss is computed here"

Taught by progression: first the naive loss on every token (what lesson 3 did), then the masked loss.
What to look at:
  1. the card's diagram drawn under a real rendered example;
  2. the masked loss equals the mean -log p(answer token) computed by hand, position by position;
  3. how much of the naive loss is spent predicting the prompt — random numbers no model can guess;
  4. two students trained each way on the same budget, and their verified accuracy.

Run:  python -m lessons.l04_response_masking      (--fast: tiny models, seconds)
"""

from __future__ import annotations

import argparse
import math

import torch
import torch.nn.functional as F

from minikd.data import IGNORE_INDEX, collate
from minikd.evaluate import accuracy
from minikd.losses import masked_nll
from minikd.profiles import get_profile, load_split, train_model
from minikd.tokenizer import Tokenizer


def every_token(examples: list[dict]) -> list[dict]:
    """The naive version: the same examples with a mask of ones — every next token is a target."""
    return [{**ex, "mask": [1] * len(ex["ids"])} for ex in examples]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", action="store_true", help="tiny models, few steps (the tests use it)")
    parser.add_argument("--steps", type=int, default=None, help="training steps of each student "
                        "(default: the profile's student budget)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    profile = get_profile("quick" if args.fast else "default")
    steps = args.steps or profile.student_steps
    tok = Tokenizer.default()
    train_set = load_split("train", profile, tok)
    test_set = load_split("test", profile, tok)

    # Step 1: the card's diagram, for real ids.
    ex = next(e for e in train_set if e["task"] == "sort")
    print("Step 1: one training example, rendered with the template, mask drawn under it")
    print(f"  prompt {ex['prompt']!r}  completion {ex['completion']!r}")
    print(tok.draw_mask(ex["ids"], ex["mask"]))
    print(f"  {len(ex['ids'])} tokens, {sum(ex['mask'])} of them carry the loss "
          "(the answer and the end-of-response token)\n")

    # Step 2: naive vs masked targets of the same example, and the masked loss by hand.
    naive = collate(every_token([ex]), tok.pad_id)
    masked = collate([ex], tok.pad_id)
    print("Step 2: targets (ids shifted by one); '-' is IGNORE_INDEX = -100, skipped by the loss")
    show = lambda t: " ".join("-" if v == IGNORE_INDEX else str(v) for v in t[0].tolist())  # noqa: E731
    print("  naive :", show(naive["targets"]))
    print("  masked:", show(masked["targets"]))
    torch.manual_seed(args.seed)
    logits = torch.randn(1, masked["inputs"].size(1), tok.vocab_size)  # any logits will do for the check
    by_hand = []
    for t, target in enumerate(masked["targets"][0].tolist()):
        if target != IGNORE_INDEX:
            by_hand.append(-F.log_softmax(logits[0, t], dim=-1)[target].item())
    mean_by_hand = sum(by_hand) / len(by_hand)
    print(f"  masked_nll = {masked_nll(logits, masked['targets']).item():.6f}; "
          f"mean of -log p over the {len(by_hand)} answer positions by hand = {mean_by_hand:.6f}\n")

    # Step 3: train one student each way on the same budget.
    print(f"Step 3: two {profile.student_preset} students, {steps} steps of {profile.batch_size} sequences each")
    print("  (a) naive: loss on every token")
    naive_model, _ = train_model(profile.student_config(tok.vocab_size), every_token(train_set), steps, profile,
                              lr=profile.student_lr, seed=args.seed, device=args.device, tok=tok)
    print("  (b) masked: loss on the answer only")
    masked_model, _ = train_model(profile.student_config(tok.vocab_size), train_set, steps, profile,
                               lr=profile.student_lr, seed=args.seed, device=args.device, tok=tok)

    # Step 4: where the naive loss goes: prompt positions vs answer positions (on the test set).
    naive_model.eval()
    device = next(naive_model.parameters()).device
    batch = collate(every_token(test_set), tok.pad_id)
    answer_targets = collate(test_set, tok.pad_id)["targets"]
    with torch.no_grad():
        logp = F.log_softmax(naive_model(batch["inputs"].to(device)).float(), dim=-1).cpu()
    nll = -logp.gather(-1, batch["targets"].clamp(min=0).unsqueeze(-1)).squeeze(-1)  # (B, T)
    on_answer = answer_targets != IGNORE_INDEX
    on_prompt = (batch["targets"] != IGNORE_INDEX) & ~on_answer
    share = nll[on_prompt].sum() / (nll[on_prompt].sum() + nll[on_answer].sum())
    print(f"\nStep 4: the naive student's loss on the test set: {nll[on_prompt].mean():.3f} nats per prompt "
          f"token, {nll[on_answer].mean():.3f} per answer token")
    print(f"  {100 * share:.0f}% of its total loss is spent predicting prompts — random operands that no "
          f"model can guess (uniform over 10 digits = {math.log(10):.2f} nats)\n")

    # Step 5: what each learned to do: answer the prompt.
    results = {}
    print("Step 5: verified accuracy on the test set (greedy decoding)")
    for name, model in [("naive (every token)", naive_model), ("masked (answer only)", masked_model)]:
        acc = accuracy(model, tok, test_set)
        results[name] = acc
        per_task = ", ".join(f"{t} {100 * a:.1f}%" for t, a in acc["acc_by_task"].items())
        print(f"  {name:22s} {100 * acc['acc']:5.1f}%   ({per_task})")
    print("  Same steps, same sequences: the masked student spends all of its gradient on answers.\n")

    print("Check yourself")
    print("  1. Which target positions does the mask keep, and why is the end-of-response token among them?")
    print("  2. Why is the masked loss exactly -log p(u | s) divided by the number of answer tokens?")
    print("  3. Why would a loss on prompt tokens waste a distillation budget?")
    return {"masked_equals_by_hand": abs(masked_nll(logits, masked["targets"]).item() - mean_by_hand) < 1e-5,
            "prompt_share": float(share), "results": {k: v["acc"] for k, v in results.items()}}


if __name__ == "__main__":
    main()
