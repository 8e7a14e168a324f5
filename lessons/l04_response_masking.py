# %% [markdown]
"""Lesson 4 — response masking: the loss covers the answer only.

In sequence-level KD (Kim & Rush 2016) the student learns to continue each prompt with the teacher's
answer; it is never asked to reproduce the prompt. So prompt tokens and answer tokens must be told apart,
and the loss covers the answer span only (the picture of lesson 1):

    [prompt tokens][teacher answer tokens]
                   ^^^^^^^^^^^^^^^^^^^^^^^
                   loss is computed here

Taught by progression: first the naive loss on every token (what lesson 3 did), then the masked loss.
What to look at:
  1. the diagram drawn under a real rendered example;
  2. the masked loss equals the mean -log p(answer token) computed by hand, position by position;
  3. two students trained each way on the same budget, and their loss curves — each one's training loss
     (what it minimises) and, on one common yardstick, the loss per answer token on test prompts;
  4. how much of the naive loss is spent predicting the prompt — mostly random operands;
  5. their verified accuracy, with a verdict paired by test prompt.

Run:  python -m lessons.l04_response_masking      (--fast: tiny models, seconds)
With the `plot` extra (matplotlib) the curves are also saved as PNGs under runs/<profile>/.
"""

# %%
import math

import torch
import torch.nn.functional as F

from lessons import lesson_parser
from lessons.kit import get_profile, load_split, profile_dir, train_student
from minikd.charts import ascii_chart, save_line_plot
from minikd.data import IGNORE_INDEX, collate
from minikd.evaluate import accuracy, answer_nll
from minikd.losses import masked_nll
from minikd.tokenizer import Tokenizer
from minikd.verdict import by_prompt, check, claim

parser = lesson_parser(__doc__, "tiny models, few steps")
parser.add_argument("--steps", type=int, default=None, help="training steps of each student "
                    "(default: the profile's student budget)")
args = parser.parse_args()
profile = get_profile("quick" if args.fast else "default")
tok = Tokenizer.default()
train_set, test_set = load_split("train", profile, tok), load_split("test", profile, tok)


def every_token(examples: list[dict]) -> list[dict]:
    """The naive version: the same examples with a mask of ones — every next token is a target."""
    return [{**ex, "mask": [1] * len(ex["ids"])} for ex in examples]


# %% Step 1: one training example, rendered with the template, the mask drawn under it.
ex = next(e for e in train_set if e["task"] == "sort")
print("Step 1: one training example, rendered with the template, mask drawn under it")
print(f"  prompt {ex['prompt']!r}  completion {ex['completion']!r}")
print(tok.draw_mask(ex["ids"], ex["mask"]))
print(f"  {len(ex['ids'])} tokens, {sum(ex['mask'])} of them carry the loss "
      "(the answer and the end-of-response token)\n")

# %% Step 2: naive vs masked targets of the same example, and the masked loss computed by hand.
naive = collate(every_token([ex]), tok.pad_id)
masked = collate([ex], tok.pad_id)
print("Step 2: targets (ids shifted by one); '-' is IGNORE_INDEX = -100, skipped by the loss")
show = lambda t: " ".join("-" if v == IGNORE_INDEX else str(v) for v in t[0].tolist())  # noqa: E731
print("  naive :", show(naive["targets"]))
print("  masked:", show(masked["targets"]))
torch.manual_seed(args.seed)
logits = torch.randn(1, masked["inputs"].size(1), tok.vocab_size)  # (1, T, V): any logits will do for the check
by_hand = [-F.log_softmax(logits[0, t], dim=-1)[target].item()
           for t, target in enumerate(masked["targets"][0].tolist()) if target != IGNORE_INDEX]
mean_by_hand = sum(by_hand) / len(by_hand)
loss = masked_nll(logits, masked["targets"]).item()
masked_equals_by_hand = abs(loss - mean_by_hand) < 1e-5
check("masked_nll is the mean of -log p over the answer positions", masked_equals_by_hand,
      f"masked_nll = {loss:.6f}, by hand over the {len(by_hand)} answer positions = {mean_by_hand:.6f}",
      fast=args.fast)
print()

# %% Step 3: one student per loss, same seed: the same initial weights and the same sequences in the same order.
# Every few steps each is scored on one common yardstick, the loss per answer token on test prompts.
steps, curve_set = args.steps or profile.student_steps, test_set[:256]
print(f"Step 3: two {profile.student_preset} students, {steps} steps of {profile.batch_size} sequences each")
students = {}
for name, examples in [("naive", every_token(train_set)), ("masked", train_set)]:
    print(f"  ({name}) loss on {'every token' if name == 'naive' else 'the answer only'}")
    students[name] = train_student(profile, tok, examples, args.seed, args.device, steps=steps,
                                   eval_fn=lambda model: {"answer_loss": answer_nll(model, curve_set, tok.pad_id)},
                                   eval_every=max(1, steps // 10))
print()


# %% Step 4: two charts: what each student minimises, then both on the same yardstick; a verdict on the latter.
@torch.no_grad()
def token_nll(model, records: list[dict], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """-log p of every next token of the records, and where the prompt and the answer targets are.
    Returns nll, on_prompt, on_answer, each (B, T); padding is in neither."""
    model.eval()
    device = next(model.parameters()).device
    batch = collate(every_token(records), pad_id)
    on_answer = collate(records, pad_id)["targets"] != IGNORE_INDEX  # (B, T)
    on_prompt = (batch["targets"] != IGNORE_INDEX) & ~on_answer  # (B, T)
    logp = F.log_softmax(model(batch["inputs"].to(device)).float(), dim=-1).cpu()  # (B, T, V)
    nll = -logp.gather(-1, batch["targets"].clamp(min=0).unsqueeze(-1)).squeeze(-1)  # (B, T)
    return nll, on_prompt, on_answer


def answer_loss_per_prompt(model, records: list[dict], pad_id: int) -> list[float]:
    """Mean -log p per answer token (end token included), one value per record."""
    nll, _, on_answer = token_nll(model, records, pad_id)
    return ((nll * on_answer).sum(1) / on_answer.sum(1)).tolist()


charts = [("training loss: naive = every token of its batch, masked = answer tokens only", "loss",
           "l04_training_loss.png"),
          (f"loss per answer token on {min(256, len(test_set))} test prompts (the same yardstick for both)",
           "answer_loss", "l04_answer_loss.png")]
print("Step 4: loss curves")
for title, key, png_name in charts:
    series = {name: ([r["step"] for r in history if key in r], [r[key] for r in history if key in r])
              for name, (_, history) in students.items()}
    print(f"  {title}")
    print(ascii_chart(series, width=60, height=10, xlabel="step", ylabel="nats"))
    png = save_line_plot(profile_dir(profile) / png_name, series, "step", "nats per token", title)
    if png:
        print(f"  (also drawn to {png})")
claim("the masked student gives the test answers a lower loss than the naive student",
      answer_loss_per_prompt(students["naive"][0], test_set, tok.pad_id),
      answer_loss_per_prompt(students["masked"][0], test_set, tok.pad_id), ">",
      by_prompt("naive − masked, loss per answer token", args.seed, "these two students"), unit="nats", fast=args.fast)
print()

# %% Step 5: where the naive student's loss goes: prompt positions vs answer positions (on the test set).
nll, on_prompt, on_answer = token_nll(students["naive"][0], test_set, tok.pad_id)
prompt_share = (nll[on_prompt].sum() / (nll[on_prompt].sum() + nll[on_answer].sum())).item()
print(f"Step 5: the naive student's loss on the test set: {nll[on_prompt].mean():.3f} nats per prompt "
      f"token, {nll[on_answer].mean():.3f} per answer token")
print(f"  {100 * prompt_share:.0f}% of its summed loss is on prompt tokens. Most prompt digits are random operands:")
print(f"  on those no model can beat a uniform guess over 10 digits, log 10 = {math.log(10):.2f} nats.\n")

# %% Step 6: verified accuracy of both students, and the verdict paired by test prompt (1 = right, 0 = wrong).
print("Step 6: verified accuracy on the test set (greedy decoding)")
results, right = {}, {}
for name, (model, _) in students.items():
    acc = accuracy(model, tok, test_set)
    results[name] = acc["acc"]
    per_task = ", ".join(f"{t} {100 * a:.1f}%" for t, a in acc["acc_by_task"].items())
    print(f"  {name:8s} {100 * acc['acc']:5.1f}%   ({per_task})")
    right[name] = [float(ok) for ok in acc["correct"]]
claim("the masked student answers more test prompts correctly than the naive one", right["masked"],
      right["naive"], ">", by_prompt("masked − naive, greedy test accuracy", args.seed, "these two students"),
      scale=100, unit="points", fast=args.fast)
print()

# %%
print("Check yourself")
print("  1. Which target positions does the mask keep, and why is the end-of-response token among them?")
print("  2. Why is the masked loss exactly -log p(u | s) divided by the number of answer tokens?")
print("  3. Why would a loss on prompt tokens waste a distillation budget?")
