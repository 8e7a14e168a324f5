# %% [markdown]
"""Lesson 6 — token-level (word-level) KD: the loss. The teacher's whole distribution at every answer position.

Soft targets come from Hinton, Vinyals & Dean (2015, "Distilling the Knowledge in a Neural Network");
Kim & Rush (2016, "Sequence-Level Knowledge Distillation") apply them to sequences as word-level KD.
At each answer position the student matches the teacher's next-token distribution:

    prompt + previous tokens
    -> teacher distribution over the vocabulary
    -> student distribution over the vocabulary
    -> KL between the two distributions

The loss (minikd.losses.kd_loss), over the answer positions only — the same mask as SFT (lesson 4):

    (1 - alpha) * CE(student, ground-truth token) + alpha * T^2 * KL(softmax(z_t / T) || softmax(z_s / T))

alpha sets how much of the pull comes from the teacher (alpha = 1: only the teacher; 0.5: half from the
label, and some of our labels are wrong). T softens (T > 1) or sharpens (T < 1) the teacher's
distribution before it is matched. Hinton et al. multiply the soft term by T^2 so that its gradient
keeps its size when T changes; step 5 measures whether it does, for small logits and for our teacher.
T and alpha: the setting of a small grid most accurate on held-back training prompts (never the test set).
The students are the showdown's own (lesson 10: the same cached runs), so "word-level KD beats the ground truth",
a claim about METHODS, is decided over training seeds as there; what two students show per prompt is about them.

What to look at: the seven steps below, one cell each (the picture position by position in step 3,
temperature in step 4, T^2 on log-log axes in step 5, the verdicts in step 7).
What word-level KD costs (top k stored once, bytes, time) is lesson 7 (python -m lessons.l07_token_kd_cost).

Run:  python -m lessons.l06_token_kd  (--fast: tiny models, seconds). Charts: terminal; PNGs too with matplotlib.
"""

# %%
import math

import torch

from lessons import lesson_parser
from lessons.kit import (draw, get_profile, get_teacher, load_split, profile_dir, score_against_teacher,
                         showdown_students, word_kd_choice)
from minikd.charts import markdown_table
from minikd.data import IGNORE_INDEX, collate
from minikd.losses import forward_kl, log_softmax_t
from minikd.tokenizer import Tokenizer
from minikd.verdict import by_prompt, by_seed, check, claim
from minikd.word_kd import kl_grad_norms, run_teacher

parser = lesson_parser(__doc__, "tiny models, few steps")
parser.add_argument("--task", default="sort", help="task family of the example walked through (step 1)")
parser.add_argument("--seeds", type=int, default=3, help="training seeds per method (the showdown's default 3)")
args = parser.parse_args()
seeds = list(range(args.seed, args.seed + args.seeds))  # the models walked through are the first seed's
profile = get_profile("quick" if args.fast else "default")
tok = Tokenizer.default()
train_set, test_set = load_split("train", profile, tok), load_split("test", profile, tok)
teacher, _ = get_teacher(profile, device=args.device, seed=args.seed)
chosen, word_kd_sweep = word_kd_choice(profile, device=args.device)  # cached: the showdown's own sweep (step 6)
temperature, alpha = chosen["temperature"], chosen["alpha"]
ENTROPY_TS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)  # temperatures of step 4's curve
GRAD_TS = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0)  # temperatures of step 5's curves
N_CURVE = 32  # test examples whose answer positions steps 4 and 5 average over
FLAT = 2.0  # "roughly flat": the norm stays within this factor from T = 1 to T = 8

# %% Step 1: one test example (no model trained on it): its answer positions, where KD is computed.
example = next((r for r in test_set if r["task"] == args.task), test_set[0])
print(f"\nStep 1: one test example ({example['task']}): the positions where KD is computed")
print(tok.draw_mask(example["ids"], example["mask"]))
batch = collate([example], tok.pad_id)  # inputs / targets (1, T)
answer_at = (batch["targets"][0] != IGNORE_INDEX).nonzero().flatten().tolist()

# %% Step 2: the showdown's students (cached; trained here first if the main job has not run): SFT and word-KD.
print(f"\nStep 2: the showdown's students ({profile.student_preset} preset, {profile.student_steps} steps), "
      f"seeds {seeds}: masked SFT on {len(train_set)} ground-truth examples, and word-KD (step 6)")
showdown = showdown_students(profile, ["gt", "word_kd"], seeds, args.device, models=True)
baseline = showdown[("gt", args.seed)]["model"]  # the baseline of steps 3-5: seed args.seed's SFT student
device = next(baseline.parameters()).device
inputs, targets, teacher = batch["inputs"].to(device), batch["targets"], teacher.to(device)


# %% Step 3: at each answer position, the teacher's and the student's top tokens and the KL between them.
def show(tok, token_id: int) -> str:
    """A token as the reader sees it: specials by name, others quoted (so spaces are visible)."""
    text = tok.decode([token_id])
    return text if text.startswith("<|") else repr(text)


def top_tokens(tok, logp: torch.Tensor, n: int = 3) -> str:
    """The n most likely tokens of one distribution (V,) as "'4'  93% '5'   5% ..."."""
    probs, ids = logp.exp().topk(n)
    return " ".join(f"{show(tok, i):>7s} {100 * p:3.0f}%" for p, i in zip(probs.tolist(), ids.tolist()))


with torch.no_grad():
    t_logits, s_logits = run_teacher(teacher, inputs)[0], baseline(inputs)[0]  # (T, V) each
t_logp, s_logp = log_softmax_t(t_logits), log_softmax_t(s_logits)  # (T, V) at T = 1
kl_at = forward_kl(t_logits, s_logits)  # (T,) KL(teacher || student) at every position
print("\nStep 3: prompt + previous tokens -> teacher distribution -> student distribution -> KL")
print(f"  {'...previous tokens':>18s} {'next':>7s} | {'teacher top 3':^38s} | {'GT student top 3':^38s} | KL(t||s)")
for pos in answer_at:
    before = tok.decode(inputs[0, max(0, pos - 3):pos + 1].tolist())  # the last 4 tokens the models read
    print(f"  {before!r:>18s} {show(tok, int(targets[0, pos])):>7s} | {top_tokens(tok, t_logp[pos])} | "
          f"{top_tokens(tok, s_logp[pos])} | {kl_at[pos]:7.3f}")
print(f"  sum of KL over the {len(answer_at)} answer positions: {kl_at[answer_at].sum():.3f} nats. "
      "Word-level KD pushes every one of these toward 0;")
print("  SFT sees only the 'next token' column — one id per position, not a distribution.")

# %% Step 4: the teacher's entropy against T over many answer positions; the verdict.
curve = collate(test_set[:N_CURVE], tok.pad_id)
with torch.no_grad():
    t_logits, s_logits = run_teacher(teacher, curve["inputs"].to(device)).cpu(), baseline(curve["inputs"].to(device)).cpu()
t_rows = t_logits[curve["targets"] != IGNORE_INDEX]  # (n, V): every answer position of the N_CURVE examples
temps = sorted({*ENTROPY_TS, temperature})
logp_by_t = {T: log_softmax_t(t_rows, T) for T in temps}  # (n, V) each
entropy_by_t = {T: float(-(lp.exp() * lp).sum(-1).mean()) for T, lp in logp_by_t.items()}  # H(p) in nats
uniform = math.log(t_rows.shape[-1])
print(f"\nStep 4: the teacher's entropy at temperature T ({t_rows.shape[0]} answer positions of "
      f"{N_CURVE} test examples)")
draw(profile_dir(profile) / "l06_entropy_vs_T.png", {"teacher entropy": (temps, list(entropy_by_t.values()))},
     "T", "entropy (nats)", "entropy of the teacher's distribution vs T", height=12,
     hline=(uniform, f"uniform over {t_rows.shape[-1]} tokens"))
print(f"  at the chosen T = {temperature:g} (step 6): {entropy_by_t[temperature]:.2f} nats, "
      f"{100 * entropy_by_t[temperature] / uniform:.0f}% of uniform")
values = list(entropy_by_t.values())
grows = all(b > a for a, b in zip(values, values[1:]))
check("a higher T flattens the teacher's distribution: its entropy grows with T", grows,
      f"entropy {values[0]:.2f} nats at T = {temps[0]:g}, {values[-1]:.2f} at T = {temps[-1]:g} "
      f"({'rising' if grows else 'not rising'} at every step up); uniform = {uniform:.2f}", fast=args.fast)


# %% Step 5: the soft term's gradient norm against T, with and without T^2; drawn and decided.
def spread(logits: torch.Tensor) -> float:
    """Mean over positions of (largest - smallest logit): how far from 'T large next to the logits' T is."""
    return float((logits.max(-1).values - logits.min(-1).values).mean())


def factor(rows: list[dict], key: str, lo: float = 1.0, hi: float = 8.0) -> float:
    """Largest / smallest gradient norm over lo <= T <= hi."""
    norms = [r[key] for r in rows if lo <= r["T"] <= hi]
    return max(norms) / min(norms)


def t_squared_verdicts(args, cases: dict, spreads: dict) -> list:
    """Step 5's verdicts, one per case: flat from T = 1 to 8? constant in the high-T limit? And without T^2."""
    claims = []
    for case, rows in cases.items():
        f_with, f_without = factor(rows, "with_t2"), factor(rows, "without_t2")
        claims.append(check(f"T^2 keeps the soft gradient's size roughly flat from T = 1 to 8 — {case}",
                            f_with <= FLAT, f"with T^2 the norm spans a factor {f_with:.1f} (flat: <= {FLAT:g}), "
                            f"without T^2 a factor {f_without:.0f}; logits spread {spreads[case]:.1f}",
                            fast=args.fast))
        high = rows[-2]["with_t2"] / rows[-1]["with_t2"]  # T = 16 vs T = 32
        claims.append(check(f"at high T (16 to 32) the norm with T^2 is constant within 25 % — {case}",
                            abs(high - 1) <= 0.25, f"norm at T = 16 / norm at T = 32 = {high:.2f}", fast=args.fast))
    falls = {case: factor(rows, "without_t2") for case, rows in cases.items()}
    claims.append(check("without T^2 the soft gradient fades about as 1/T^2 or faster from T = 1 to 8, in every case",
                        min(falls.values()) >= 32, "it falls by a factor " + ", ".join(
                            f"{v:.0f} ({c})" for c, v in falls.items()) + "; 1/T^2 gives 64 (>= 32 counts)",
                        fast=args.fast))
    return claims


keep = curve["targets"] != IGNORE_INDEX  # (B, T)
n = int(keep.sum())
g = torch.Generator().manual_seed(args.seed)
small_t, small_s = (torch.randn(1, n, t_logits.shape[-1], generator=g) for _ in range(2))  # (1, n, V)
cases = {"small random logits": kl_grad_norms(small_s, small_t, torch.zeros(1, n, dtype=torch.long), GRAD_TS),
         "real teacher vs baseline": kl_grad_norms(s_logits, t_logits, curve["targets"], GRAD_TS)}
spreads = {"small random logits": spread(small_t[0]), "real teacher vs baseline": spread(t_logits[keep])}
print(f"\nStep 5: gradient norm of the soft term (alpha = 1) w.r.t. the student's logits, {n} answer positions")
print(f"  {'':5s} " + " ".join(f"| {c:^23s} " for c in cases))
print(f"  {'T':>5s} " + " ".join(f"| {'with T^2':>11s} {'without':>11s} " for _ in cases))
for i, T in enumerate(GRAD_TS):
    print(f"  {T:5.1f} " + " ".join(f"| {rows[i]['with_t2']:11.4f} {rows[i]['without_t2']:11.5f} "
                                    for rows in cases.values()))
draw(profile_dir(profile) / "l06_grad_norm_vs_T.png",
     {f"{case}, {label}": ([math.log10(r["T"]) for r in rows], [math.log10(r[key]) for r in rows])
      for case, rows in cases.items() for key, label in (("with_t2", "with T^2"), ("without_t2", "without"))},
     "log10 T", "log10 gradient norm", "soft-term gradient norm vs T (log-log)", height=12)
print("  Why: d KL(p_t^T || p_s^T) / d z_s = (p_s^T - p_t^T) / T. Once T is large next to the spread of the logits,")
print("  softmax(z / T) ~ (1 + z / T) / V, so p_s^T - p_t^T shrinks as 1/T too: without T^2 the pull falls as 1/T^2,")
print("  with it it tends to a constant. Where T is NOT large next to the spread, nothing makes it flat. Verdicts:")
t_squared_verdicts(args, cases, spreads)

# %% Step 6: T and alpha by validation accuracy (the showdown's sweep, cached), and the word-KD student.
print(f"\nStep 6: T and alpha by validation accuracy ({profile.n_val} held-back training prompts): the showdown's")
print(markdown_table(["T", "alpha", "validation accuracy"],
                     [[f"{r['temperature']:g}", f"{r['alpha']:g}", f"{100 * r['val_acc']:.1f}%"
                       + ("  <- chosen" if (r["temperature"], r["alpha"]) == (temperature, alpha) else "")]
                      for r in word_kd_sweep]))
print(f"  word-KD (alpha {alpha:g}, T {temperature:g}): trained from the teacher's stored distributions (lesson 7)")
students = {"ground truth (SFT)": baseline, "word-KD": showdown[("word_kd", args.seed)]["model"]}

# %% Step 7: baseline vs word-KD on the test split, with the verdicts; KL per position of the example.
print(f"\nStep 7: the two students of seed {args.seed}, same preset, same {profile.student_steps} steps of "
      f"{profile.batch_size} sequences; test split ({len(test_set)} prompts), greedy decoding")
results = score_against_teacher({"teacher (reference)": teacher, **students}, teacher, tok, test_set)
families = list(results["teacher (reference)"]["acc_by_task"])
print(markdown_table(["model", *families, "test acc", "KL(teacher||model)/token", "NLL of test answers"],
                     [[name, *[f"{100 * r['acc_by_task'][f]:.1f}%" for f in families], f"{100 * r['acc']:.1f}%",
                       f"{r['kl_to_teacher']:.3f}", f"{r['nll_gt']:.3f}"] for name, r in results.items()]))
with torch.no_grad():
    t_logits = run_teacher(teacher, inputs)[0]  # (T, V)
    kls = {name: forward_kl(t_logits, m(inputs)[0])[answer_at] for name, m in students.items()}
print("  KL per answer position of the step-1 example:")
for name, kl in kls.items():
    print(f"    {name:20s} " + " ".join(f"{v:5.2f}" for v in kl.tolist()) + f"  | sum {kl.sum():.2f}")
base, kd = results["ground truth (SFT)"], results["word-KD"]
claim("this word-KD student is closer to the teacher than this ground-truth student", kd["kl_by_prompt"], base[
    "kl_by_prompt"], "<", by_prompt("word-KD − GT, KL(teacher||student) per answer token", args.seed), 1, "nats", args.fast)
acc = {m: [showdown[(m, s)]["metrics"]["greedy_acc"] for s in seeds] for m in ("gt", "word_kd")}  # as lesson 10
print("  test accuracy by training seed: " + ", ".join(f"seed {s}: GT {100 * g:.1f}%, word-KD {100 * w:.1f}%"
                                                    for s, g, w in zip(seeds, acc["gt"], acc["word_kd"])))
claim("word-level KD beats the ground-truth student (Hinton et al. 2015; Kim & Rush 2016)", acc["word_kd"], acc["gt"],
      ">", by_seed(f"word_kd − gt, test accuracy at {profile.student_steps} steps"), 100, "points", args.fast)

# %%
print("\nCheck yourself")
print("  1. How do the targets of word-level KD and sequence-level KD differ?")
print("     (what does the student see at each answer position — step 3 — and what would lesson 8 show it?)")
print("  2. Why is the KL multiplied by T^2, and when does that keep the soft gradient's size flat across T?")
print("  3. Why does a higher T show more of the teacher's 'dark knowledge'? (step 4)")
