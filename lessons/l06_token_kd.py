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
Which T and alpha? Not a guess and never the test set: every setting of a small grid trains a student
on the training set minus its last prompts, and the one most accurate on those held-back prompts is
used here AND in the showdown (lesson 10) — the same cached sweep (minikd.machinery.pipeline).

What to look at:
  1. one real test example, with its answer positions drawn under the tokens;
  2. a baseline student trained on the ground-truth answers alone;
  3. the picture, position by position: teacher's top tokens, student's top tokens, the KL between them;
  4. temperature: the teacher's entropy against T, drawn, and whether it grows with T;
  5. T^2: the soft term's gradient norm against T, with and without T^2, drawn on log-log axes, for
     small random logits and for the real teacher; whether T^2 keeps it flat is decided per case;
  6. T and alpha chosen on held-back training prompts, and the online word-KD student;
  7. baseline vs word-KD student: accuracy and distance to the teacher, each with its verdict.
What word-level KD costs — the teacher's top k stored once, training without the teacher, bytes and
time — is lesson 7 (python -m lessons.l07_token_kd_cost).

Run:  python -m lessons.l06_token_kd        (--fast: tiny models, seconds)
Charts are drawn in the terminal, and as PNGs under runs/<profile>/ when matplotlib is installed.

Check yourself (printed at the end; tests/exercises/test_ex_l06_token_kd.py answers them):
  1. How do the targets of word-level KD and sequence-level KD differ?
  2. Why is the KL multiplied by T^2, and when does that keep the soft gradient's size flat across T?
  3. Why does a higher T show more of the teacher's 'dark knowledge'?
"""

from __future__ import annotations

import math

import torch

from lessons import lesson_parser
from minikd.data import IGNORE_INDEX, collate
from minikd.evaluate import accuracy, answer_nll
from minikd.losses import forward_kl, log_softmax_t
from lessons.kit import get_profile, get_teacher, load_split, profile_dir, train_model, word_kd_choice
from minikd.charts import ascii_chart, markdown_table, save_line_plot
from minikd.tokenizer import Tokenizer
from minikd.train import sft_objective
from minikd.verdict import check, claim
from minikd.word_kd import kl_by_example, kl_grad_norms, run_teacher, word_kd_objective

ENTROPY_TS = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)  # temperatures of step 4's curve
GRAD_TS = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0)  # temperatures of step 5's curves
N_CURVE = 32  # test examples whose answer positions steps 4 and 5 average over
FLAT = 2.0  # "roughly flat": the norm stays within this factor from T = 1 to T = 8


def show(tok, token_id: int) -> str:
    """A token as the reader sees it: specials by name, others quoted (so spaces are visible)."""
    text = tok.decode([token_id])
    return text if text.startswith("<|") else repr(text)


def top_tokens(tok, logp: torch.Tensor, n: int = 3) -> str:
    """The n most likely tokens of one distribution (V,) as "'4'  93% '5'   5% ..."."""
    probs, ids = logp.exp().topk(n)
    return " ".join(f"{show(tok, i):>7s} {100 * p:3.0f}%" for p, i in zip(probs.tolist(), ids.tolist()))


def entropy(logp: torch.Tensor) -> torch.Tensor:
    """H(p) = -sum_v p(v) log p(v) in nats, (..., V) -> (...)."""
    return -(logp.exp() * logp).sum(-1)


def spread(logits: torch.Tensor) -> float:
    """Mean over positions of (largest - smallest logit): how far from 'T large next to the logits' T is."""
    return float((logits.max(-1).values - logits.min(-1).values).mean())


def draw(profile, name: str, series: dict, xlabel: str, ylabel: str, title: str, hline=None) -> str | None:
    """A chart in the terminal (always) and as a PNG under runs/<profile>/ (with matplotlib); the PNG's path."""
    print(ascii_chart(series, width=60, height=12, xlabel=xlabel, ylabel=ylabel, hline=hline))
    png = save_line_plot(profile_dir(profile) / name, series, xlabel, ylabel, title)
    if png:
        print(f"  (also drawn to {png})")
    return str(png) if png else None


# ---------------------------------------------------------------------------------------------------
# Steps 1-3: one example, the baseline, the picture position by position
# ---------------------------------------------------------------------------------------------------


def step_example(tok, test_set: list[dict], task: str) -> tuple[dict, torch.Tensor, torch.Tensor, list[int]]:
    """Step 1: one test example (no model trained on it): inputs, targets (1, T) and its answer positions."""
    example = next((r for r in test_set if r["task"] == task), test_set[0])
    print(f"\nStep 1: one test example ({example['task']}): the positions where KD is computed")
    print(tok.draw_mask(example["ids"], example["mask"]))
    batch = collate([example], tok.pad_id)  # inputs / targets (1, T)
    answer_at = (batch["targets"][0] != IGNORE_INDEX).nonzero().flatten().tolist()
    return example, batch["inputs"], batch["targets"], answer_at


def step_picture(tok, teacher, student, inputs: torch.Tensor, targets: torch.Tensor, answer_at: list[int]):
    """Step 3: at each answer position, the teacher's and the student's top tokens and the KL between them."""
    with torch.no_grad():
        t_logits, s_logits = run_teacher(teacher, inputs)[0], student(inputs)[0]  # (T, V) each
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


# ---------------------------------------------------------------------------------------------------
# Steps 4-5: temperature and T^2, drawn
# ---------------------------------------------------------------------------------------------------


def step_temperature(args, profile, t_rows: torch.Tensor, chosen_t: float) -> tuple[dict, list]:
    """Step 4: the teacher's entropy against T over many answer positions t_rows (n, V); the verdict."""
    temps = sorted({*ENTROPY_TS, chosen_t})
    entropy_by_t = {T: float(entropy(log_softmax_t(t_rows, T)).mean()) for T in temps}
    uniform = math.log(t_rows.shape[-1])
    print(f"\nStep 4: the teacher's entropy at temperature T ({t_rows.shape[0]} answer positions of "
          f"{N_CURVE} test examples)")
    draw(profile, "l06_entropy_vs_T.png", {"teacher entropy": (temps, list(entropy_by_t.values()))},
         "T", "entropy (nats)", "entropy of the teacher's distribution vs T",
         hline=(uniform, f"uniform over {t_rows.shape[-1]} tokens"))
    print(f"  at the chosen T = {chosen_t:g} (step 6): {entropy_by_t[chosen_t]:.2f} nats, "
          f"{100 * entropy_by_t[chosen_t] / uniform:.0f}% of uniform")
    values = list(entropy_by_t.values())
    grows = all(b > a for a, b in zip(values, values[1:]))
    c = check("a higher T flattens the teacher's distribution: its entropy grows with T", grows,
              f"entropy {values[0]:.2f} nats at T = {temps[0]:g}, {values[-1]:.2f} at T = {temps[-1]:g} "
              f"({'rising' if grows else 'not rising'} at every step up); uniform = {uniform:.2f}", fast=args.fast)
    return entropy_by_t, [c]


def factor(rows: list[dict], key: str, lo: float = 1.0, hi: float = 8.0) -> float:
    """Largest / smallest gradient norm over lo <= T <= hi."""
    norms = [r[key] for r in rows if lo <= r["T"] <= hi]
    return max(norms) / min(norms)


def draw_grad_norms(profile, cases: dict) -> None:
    """Gradient norm against T, with and without T^2, for every case: log10 on both axes."""
    series = {}
    for case, rows in cases.items():
        for key, label in (("with_t2", "with T^2"), ("without_t2", "without")):
            series[f"{case}, {label}"] = ([math.log10(r["T"]) for r in rows], [math.log10(r[key]) for r in rows])
    draw(profile, "l06_grad_norm_vs_T.png", series, "log10 T", "log10 gradient norm",
         "soft-term gradient norm vs T (log-log)")


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


def step_t_squared(args, profile, t_logits: torch.Tensor, s_logits: torch.Tensor, targets: torch.Tensor):
    """Step 5: the soft term's gradient norm against T, with and without T^2; drawn and decided."""
    keep = targets != IGNORE_INDEX  # (B, T)
    n = int(keep.sum())
    g = torch.Generator().manual_seed(args.seed)
    small_t, small_s = (torch.randn(1, n, t_logits.shape[-1], generator=g) for _ in range(2))  # (1, n, V)
    cases = {"small random logits": kl_grad_norms(small_s, small_t, torch.zeros(1, n, dtype=torch.long), GRAD_TS),
             "real teacher vs baseline": kl_grad_norms(s_logits, t_logits, targets, GRAD_TS)}
    spreads = {"small random logits": spread(small_t[0]), "real teacher vs baseline": spread(t_logits[keep])}
    print(f"\nStep 5: gradient norm of the soft term (alpha = 1) w.r.t. the student's logits, {n} answer positions")
    print(f"  {'':5s} " + " ".join(f"| {c:^23s} " for c in cases))
    print(f"  {'T':>5s} " + " ".join(f"| {'with T^2':>11s} {'without':>11s} " for _ in cases))
    for i, T in enumerate(GRAD_TS):
        print(f"  {T:5.1f} " + " ".join(f"| {rows[i]['with_t2']:11.4f} {rows[i]['without_t2']:11.5f} "
                                        for rows in cases.values()))
    draw_grad_norms(profile, cases)
    print("  Why: d KL(p_t^T || p_s^T) / d z_s = (p_s^T - p_t^T) / T. Once T is large next to the spread of the")
    print("  logits, softmax(z / T) ~ (1 + z / T) / V, so p_s^T - p_t^T shrinks as 1/T too: without T^2 the pull")
    print("  falls as 1/T^2, with it it tends to a constant. Where T is NOT large next to the spread, nothing")
    print("  makes it flat. Verdicts, per case:")
    return cases, t_squared_verdicts(args, cases, spreads)


# ---------------------------------------------------------------------------------------------------
# Steps 6-7: the choice of T and alpha, the word-KD student, and the comparison
# ---------------------------------------------------------------------------------------------------


def print_sweep(profile, sweep: list[dict], chosen: dict) -> None:
    """Step 6: the validation sweep that chose T and alpha (the showdown's, cached)."""
    print(f"\nStep 6: T and alpha by validation accuracy ({profile.n_val} held-back training prompts, "
          f"{profile.student_steps} steps each); the showdown uses the same choice")
    pick = (chosen["temperature"], chosen["alpha"])
    print(markdown_table(["T", "alpha", "validation accuracy"],
                         [[f"{r['temperature']:g}", f"{r['alpha']:g}", f"{100 * r['val_acc']:.1f}%"
                           + ("  <- chosen" if (r["temperature"], r["alpha"]) == pick else "")] for r in sweep]))


def score(models: dict, teacher, tok, test_set: list[dict]) -> dict:
    """Accuracy per prompt and per family, KL to the teacher per prompt and per token, NLL of the answers."""
    results = {}
    for name, model in models.items():
        acc = accuracy(model, tok, test_set)
        kl_rows = kl_by_example(teacher, model, test_set, tok.pad_id)  # (KL sum, positions) per prompt
        results[name] = {"acc": acc["acc"], "acc_by_task": acc["acc_by_task"], "correct": acc["correct"],
                         "kl_by_prompt": [kl / max(n, 1) for kl, n in kl_rows],
                         "kl_to_teacher": sum(kl for kl, _ in kl_rows) / max(sum(n for _, n in kl_rows), 1),
                         "nll_gt": answer_nll(model, test_set, tok.pad_id)}
    return results


def print_scores(results: dict) -> None:
    families = list(next(iter(results.values()))["acc_by_task"])
    header = ["model", *families, "test acc", "KL(teacher||model)/token", "NLL of test answers"]
    rows = [[name, *[f"{100 * r['acc_by_task'][f]:.1f}%" for f in families], f"{100 * r['acc']:.1f}%",
             f"{r['kl_to_teacher']:.3f}", f"{r['nll_gt']:.3f}"] for name, r in results.items()]
    print(markdown_table(header, rows))


def step_compare(args, profile, tok, teacher, students: dict, test_set: list[dict], example_batch) -> tuple:
    """Step 7: baseline vs word-KD on the test split, with the verdicts; KL per position of the example."""
    print(f"\nStep 7: the two students, same preset, same {profile.student_steps} steps of "
          f"{profile.batch_size} sequences; test split ({len(test_set)} prompts), greedy decoding")
    results = score({"teacher (reference)": teacher, **students}, teacher, tok, test_set)
    print_scores(results)
    inputs, answer_at = example_batch
    with torch.no_grad():
        t_logits = run_teacher(teacher, inputs)[0]  # (T, V)
        kls = {name: forward_kl(t_logits, m(inputs)[0])[answer_at] for name, m in students.items()}
    print("  KL per answer position of the step-1 example:")
    for name, kl in kls.items():
        print(f"    {name:20s} " + " ".join(f"{v:5.2f}" for v in kl.tolist()) + f"  | sum {kl.sum():.2f}")
    base, kd = results["ground truth (SFT)"], results["online word-KD"]
    claims = [claim("the word-KD student is closer to the teacher than the baseline", kd["kl_by_prompt"],
                    base["kl_by_prompt"], "<", what="word-KD − baseline, KL(teacher||student) per answer token, "
                    "paired by test prompt", unit="nats", fast=args.fast),
              claim("word-level KD beats the ground-truth student on test accuracy", kd["correct"], base["correct"],
                    ">", what="word-KD − baseline, paired by test prompt", scale=100, unit="points", fast=args.fast)]
    return results, claims


# ---------------------------------------------------------------------------------------------------
# The lesson
# ---------------------------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = lesson_parser(__doc__, "tiny models, few steps")
    parser.add_argument("--task", default="sort", help="task family of the example walked through (step 1)")
    return parser.parse_args(argv)


def train_student(profile, tok, train_set: list[dict], objective, args):
    """A student of the profile's preset and budget, trained with `objective` (same seed, same batches)."""
    model, _ = train_model(profile.student_config(tok.vocab_size), train_set, profile.student_steps, profile,
                           lr=profile.student_lr, seed=args.seed, objective=objective, device=args.device, tok=tok)
    return model


def curve_logits(teacher, student, examples: list[dict], pad_id: int):
    """Teacher and student logits (B, T, V) and targets (B, T) of `examples`, for steps 4 and 5."""
    batch = collate(examples, pad_id)
    inputs = batch["inputs"].to(next(teacher.parameters()).device)
    with torch.no_grad():
        return run_teacher(teacher, inputs).cpu(), student(inputs.to(next(student.parameters()).device)).cpu(), \
            batch["targets"]


def main(argv=None):
    args = parse_args(argv)
    profile = get_profile("quick" if args.fast else "default")
    tok = Tokenizer.default()
    train_set, test_set = load_split("train", profile, tok), load_split("test", profile, tok)
    teacher, _ = get_teacher(profile, device=args.device, seed=args.seed)
    chosen, sweep = word_kd_choice(profile, device=args.device)  # cached: the showdown's own sweep (step 6)
    T, alpha = chosen["temperature"], chosen["alpha"]

    _, inputs, targets, answer_at = step_example(tok, test_set, args.task)
    print(f"\nStep 2: baseline student ({profile.student_preset} preset), masked SFT on {len(train_set)} "
          f"ground-truth examples, {profile.student_steps} steps")
    baseline = train_student(profile, tok, train_set, sft_objective, args)
    device = next(baseline.parameters()).device
    inputs = inputs.to(device)
    step_picture(tok, teacher.to(device), baseline, inputs, targets, answer_at)

    t_logits, s_logits, curve_targets = curve_logits(teacher, baseline, test_set[:N_CURVE], tok.pad_id)
    entropy_by_t, claims = step_temperature(args, profile, t_logits[curve_targets != IGNORE_INDEX], T)
    cases, t2_claims = step_t_squared(args, profile, t_logits, s_logits, curve_targets)

    print_sweep(profile, sweep, chosen)
    print(f"  online word-KD (alpha {alpha:g}, T {T:g}): the teacher runs on every batch")
    online = train_student(profile, tok, train_set, word_kd_objective(teacher, T, alpha), args)
    students = {"ground truth (SFT)": baseline, "online word-KD": online}
    results, student_claims = step_compare(args, profile, tok, teacher, students, test_set, (inputs, answer_at))

    print("\nCheck yourself")
    print("  1. How do the targets of word-level KD and sequence-level KD differ?")
    print("     (what does the student see at each answer position — step 3 — and what would lesson 8 show it?)")
    print("  2. Why is the KL multiplied by T^2, and when does that keep the soft gradient's size flat across T?")
    print("  3. Why does a higher T show more of the teacher's 'dark knowledge'? (step 4)")
    return {"acc": {name: r["acc"] for name, r in results.items()},
            "kl_to_teacher": {name: r["kl_to_teacher"] for name, r in results.items()},
            "entropy_by_t": entropy_by_t, "grad_norms": cases["real teacher vs baseline"],
            "grad_norms_small_logits": cases["small random logits"], "temperature": T, "alpha": alpha,
            "word_kd_sweep": sweep, "claims": claims + t2_claims + student_claims}


if __name__ == "__main__":
    main()
