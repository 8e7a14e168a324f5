# %% [markdown]
"""Lesson 13 — on-policy distillation, taught fairly: where it helps, why it fails here, each arm at its best lr.

Sequence-level KD (lesson 8; Kim & Rush 2016) trains on the teacher's text, but at test time the student
continues its own prefixes (exposure bias, lesson 11). On-policy distillation lets the student write and the
frozen teacher grade every token it wrote: KL(p_student || p_teacher) at each sampled position (MiniLLM, Gu et
al. 2024; GKD, Agarwal et al. 2024, whose lambda mixes on-policy and seq-KD batches; Thinking Machines' 2025
recipe). Those recipes warm-start from a supervised student already close to the teacher and tune each arm.
So every seed's full-budget seq-KD run gives a weak base (its weights at half the budget) and a strong one
(its end); four arms continue each at EQUAL counted compute (minikd.on_policy.Compute: 2N FLOPs per forward
token-pass, 4N per backward, sampling and teacher included), EACH at its own peak lr, chosen from a grid on
a validation slice of the training prompts (seed 0):
    seq-KD            more steps on the teacher's text (SFT loss)
    on-policy         reverse KL to the teacher at T = 1
    on-policy, sharp  reverse KL to softmax(z_teacher / 0.1): the teacher near its greedy answer
    GKD lambda = 0.5  every other step on-policy (T = 1), the others seq-KD batches
Look at: the teacher greedy vs sampled; each lr grid and choice; why on-policy can fail (the student's own samples
right, the teacher right from the midpoint of a WRONG one); accuracy, exposure bias per base; curves; verdicts.

Run:  python -m lessons.l13_on_policy   (--fast or MINIKD_FAST=1: tiny, seconds;
      --full: also the teacher at T = 0.5 and a clean-label teacher as arms, 5 seeds; --seeds N)
"""

# %%
import copy
import dataclasses
import os
import sys
import time

import torch

from lessons import lesson_parser
from lessons.kit import get_profile, get_teacher, load_split, profile_dir, save_lesson, teacher_greedy, train_model
from minikd.charts import ascii_bars, ascii_chart, save_line_plot
from minikd.data import read_jsonl
from minikd.evaluate import accuracy
from minikd.on_policy import (Arm, Continuation, OnPolicyData, best_lr, continue_student, exposure, rescue_rates,
                              sampled_answers, seq_kd_flops, show_batch_row, steps_for_budget)
from minikd.runtime import runs_dir
from minikd.seqkd import as_examples, drop_reason, filter_records
from minikd.tokenizer import Tokenizer
from minikd.verdict import LOG, by_prompt, by_seed, check, claim, mean, mean_std

parser = lesson_parser(__doc__, "tiny models, a slice of the data, 2 seeds")
parser.add_argument("--full", action="store_true", help="adds arms (teacher at T = 0.5, clean-label teacher), 5 seeds")
parser.add_argument("--seeds", type=int, default=None, help="seeds (default 3; --full 5; --fast 2)")
args = parser.parse_args([] if "ipykernel" in sys.modules else sys.argv[1:])
if os.environ.get("MINIKD_FAST") == "1" and not args.fast:  # a notebook kernel's way to say --fast
    args.fast, args.argv = True, args.argv + ["--fast"]
    torch.set_num_threads(1)
FAST, T0 = args.fast, time.perf_counter()
SEEDS = [args.seed + i for i in range(2 if FAST else args.seeds or (5 if args.full else 3))]
LR_GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)  # every arm's choices (the seq-KD base trained at 1e-2)
TEMPERATURES = (0, 1.0, 0.5, 0.1)  # the teacher greedy (0) and sampled at each: how good a target is it?
ARMS = [Arm("seq-KD", 0.0), Arm("on-policy", 1.0), Arm("on-policy, sharp (T = 0.1)", 1.0, 0.1),
        Arm("GKD lambda = 0.5", 0.5)] + ([Arm("on-policy, T = 0.5", 1.0, 0.5)] if args.full else [])
N_VAL, N_TEST, LIMIT = (16, 16, 16) if FAST else (200, 300, 40)  # prompts; answer tokens (the longest: 27)
n_claims = len(LOG)

# %% Step 1: the teacher (lesson 5's), its greedy answers to the unlabelled prompts (lesson 8's seq-KD data);
# the last N_VAL of them are held back: the validation slice every learning rate is chosen on.
profile, tok = get_profile("quick" if FAST else "default"), Tokenizer.default()
teacher, _ = get_teacher(profile, device=args.device, seed=0)
raw = list(read_jsonl(teacher_greedy(profile, teacher, tok, "unlabelled")))
# cut-off answers are dropped, except by --fast: its teacher (a few steps) rarely stops (lesson 8 does the same)
kept, _ = filter_records(raw, lambda r: drop_reason(r, tok, profile.block_size, False, drop_truncated=not FAST))
examples, val = as_examples(kept[:-N_VAL], tok), kept[-N_VAL:]
test = load_split("test", profile, tok)[:N_TEST]
BASE_STEPS = profile.student_steps // 2  # the weak base; the strong one is the end of the same run
setup = Continuation(teacher, tok, examples, [tok.render_prompt(e["prompt"]) for e in examples], profile.batch_size,
                     BASE_STEPS, LIMIT, args.device, profile.length_groups)
print(f"Step 1: {len(examples)} seq-KD examples, {len(val)} validation prompts, {len(test)} test prompts")
if args.full:  # a teacher of the same size trained only on the right labels: is the noise what on-policy copies?
    clean = [r for r in load_split("train", profile, tok) if not r["label_noisy"]]
    ARMS.append(Arm("on-policy, clean-label teacher", 1.0, 1.0, train_model(  # cached: a finished checkpoint
        profile.teacher_config(tok.vocab_size), clean, profile.teacher_steps, profile, lr=profile.teacher_lr, seed=0,
        device=args.device, tok=tok, ckpt_path=profile_dir(profile) / "teacher_clean.pt", resume=True,
        meta={"data": f"{len(clean)} training records with right labels"})[0]))

# %% Step 2: the teacher as a target. Greedy vs sampled: on-policy pulls the student toward the teacher's
# distribution, and a teacher trained on noisy labels may hold the noise as probability.
print("\nStep 2: how often the teacher is right, greedy and sampled, on the test prompts")
samples = {T: sampled_answers(teacher, tok, test, T, seed=0, max_new_tokens=LIMIT) for T in TEMPERATURES}
teacher_answers = samples[0][0]  # its greedy answers: the exposure-bias probe continues their first half
target = {("greedy" if T == 0 else f"sampled at T = {T:g}"): [float(x) for x in s[1]] for T, s in samples.items()}
print(ascii_bars({k: round(100 * mean(v), 1) for k, v in target.items()}, width=30, unit="%"))
for a, b, expect in (("sampled at T = 1", "greedy", "<"), ("sampled at T = 0.1", "sampled at T = 1", ">")):
    claim(f"the teacher is right {'less' if expect == '<' else 'more'} often {a} than {b}", target[a], target[b],
          expect, by_prompt(f"{a} − {b}", args.seed, "this teacher"), 100, "points", FAST)

# %% Step 3: the bases. One full-budget seq-KD run per seed (lesson 8's student); a copy of its weights at
# half the budget is the weak base, its end the strong one. Each continues on the batches its run had not used.
STARTS = {"weak": BASE_STEPS, "strong": profile.student_steps}
CONT_STEPS = BASE_STEPS // 4  # every arm gets the compute of this many more seq-KD steps
bases = {}  # seed -> {"weak": model, "strong": model}
for seed in SEEDS:
    halfway = []  # eval_fn runs at step BASE_STEPS and at the end: it keeps a copy of the weights
    strong, _ = train_model(profile.student_config(tok.vocab_size), examples, profile.student_steps, profile,
                            lr=profile.student_lr, seed=seed, device=args.device, tok=tok, log_every=0,
                            eval_fn=lambda m: halfway.append(copy.deepcopy(m).eval()) or {}, eval_every=BASE_STEPS)
    bases[seed] = {"weak": halfway[0], "strong": strong}
print(f"\nStep 3: seq-KD bases, seeds {SEEDS}: weak = step {BASE_STEPS}, strong = step {profile.student_steps}")

# %% Step 4: one on-policy batch of the weak base: its own answer, the mask under it, the reverse KL per token.
student = bases[SEEDS[0]]["weak"]
batch = OnPolicyData(student, setup.prompts, tok, batch_size=2, seed=0, max_new_tokens=LIMIT).get_batch(0)
print("\nStep 4: one on-policy batch row (the weak base wrote it)\n" + show_batch_row(teacher, student, batch, tok))

# %% Step 5: why, measured (seed 0). The reverse KL teaches what the teacher would write NEXT on the student's
# prefix; that helps only if the teacher can still reach a right answer from there.
print("\nStep 5: each base's own samples (T = 1) right; on its wrong ones, the teacher right continuing greedily")
why = {}
for b in STARTS:
    own = sampled_answers(bases[SEEDS[0]][b], tok, test, 1.0, seed=0, max_new_tokens=LIMIT)
    rescued, from_own = rescue_rates(teacher, tok, test, own, samples[1.0], LIMIT)
    why[b] = {"own samples right": mean(own[1]), "rescued": mean(rescued or [0]),
              "from its own": mean(from_own or [0])}  # rescued / from its own: of its wrong samples
    print(f"  {b:6s} base: {100 * why[b]['own samples right']:5.1f}% right | {len(rescued)} wrong: from their midpoint "
          f"{100 * why[b]['rescued']:5.1f}%, from its own sample's midpoint {100 * why[b]['from its own']:5.1f}%")
    pair = by_prompt("student − teacher", SEEDS[0], f"the {b} base and the teacher")
    claim(f"the {b} base's own samples are right less often than the teacher's (both at T = 1)",
          [float(x) for x in own[1]], target["sampled at T = 1"], "<", pair, 100, "points", FAST)
    if len(rescued) >= 2:
        claim(f"the teacher rescues a wrong sample of the {b} base less often than it completes its own sample",
              [float(x) for x in rescued], [float(x) for x in from_own], "<", by_prompt("from the student's half − "
              "from its own, on the prompts it got wrong", args.seed, f"this teacher on the {b} base"), 100, "points", FAST)

# %% Step 6: each arm's learning rate, chosen from LR_GRID on the validation prompts (seed 0), per base; every
# arm spends the compute of CONT_STEPS seq-KD steps. The chosen run of seed 0 is kept; Step 7 adds the others.
def val_accuracy(model) -> dict:
    return {"val": mean(accuracy(model, tok, val, max_new_tokens=LIMIT)["correct"])}


def run_arm(b: str, arm: Arm, seed: int, lr: float, curve: bool) -> dict:
    """Arm `arm` continued from base `b` of `seed` at peak lr `lr`, at the budget; curve: validation points."""
    where, base = dataclasses.replace(setup, start=STARTS[b]), bases[seed][b]
    budget = seq_kd_flops(where, base.num_params(), CONT_STEPS, seed)
    steps = steps_for_budget(base, arm, where, budget, seed)
    model, history, compute = continue_student(base, arm, where, steps, lr, seed, val_accuracy if curve else None)
    return {"model": model, "history": history, "steps": steps, "lr": lr,
            "spent": compute.flops(base.num_params(), teacher.num_params()) / budget}


print(f"\nStep 6: validation accuracy % ({len(val)} prompts) after each arm's continuation at each peak lr (seed 0)")
runs, grid = {}, {}  # (base, arm, seed) -> run; (base, arm) -> {lr: validation accuracy}
for b in STARTS:
    for arm in ARMS:
        tried = {lr: run_arm(b, arm, SEEDS[0], lr, curve=True) for lr in LR_GRID}
        grid[b, arm.name] = scores = {lr: r["history"][-1]["val"] for lr, r in tried.items()}
        runs[b, arm.name, SEEDS[0]] = tried[best_lr(scores)]
        print(f"  {b:6s} {arm.name:30s}" + "".join(f"  lr {lr:.0e}: {100 * v:5.1f}" for lr, v in scores.items())
              + f"  -> {best_lr(scores):.0e}")

# %% Step 7: every other seed at the chosen learning rates; every model measured on the test prompts.
for b, arm, seed in [(b, arm, seed) for b in STARTS for arm in ARMS for seed in SEEDS[1:]]:
    runs[b, arm.name, seed] = run_arm(b, arm, seed, runs[b, arm.name, SEEDS[0]]["lr"], curve=False)
measured = {(b, "base", s): exposure(bases[s][b], tok, test, teacher_answers, LIMIT) for b in STARTS for s in SEEDS}
measured |= {key: exposure(r["model"], tok, test, teacher_answers, LIMIT) for key, r in runs.items()}
NAMES, KEYS = ["base"] + [arm.name for arm in ARMS], ("own start", "teacher prefix", "same as teacher")
print(f"\nStep 7: test accuracy % (mean of {len(SEEDS)} seeds): from its own start (= test accuracy), continuing "
      "the teacher's first half, token for token the teacher's")
for b, name in [(b, name) for b in STARTS for name in NAMES]:
    print(f"  {b:6s} {name:30s}" + "".join(f"{100 * mean(measured[b, name, s][k] for s in SEEDS):12.1f}" for k in KEYS))
spent = [r["spent"] for r in runs.values()]
check("every arm spent the seq-KD continuation's compute to within 15% (its step cost is estimated), every base and "
      "seed", all(abs(x - 1) <= 0.15 for x in spent), f"spent / budget: {min(spent):.3f} to {max(spent):.3f}", FAST)

# %% Step 8: validation accuracy against the compute spent (seed 0, chosen lrs), per base.
for b in STARTS:
    start = 100 * val_accuracy(bases[SEEDS[0]][b])["val"]  # every curve starts at its base's accuracy
    series = {name: ([0] + [100 * h["step"] / len(r["history"]) for h in r["history"] if "val" in h],
                     [start] + [100 * h["val"] for h in r["history"] if "val" in h])
              for (bb, name, s), r in runs.items() if bb == b and s == SEEDS[0]}
    print(f"\nStep 8: the {b} base's continuations")
    print(ascii_chart(series, height=8, xlabel="% of the compute budget", ylabel="validation accuracy %"))
    png = save_line_plot(runs_dir() / "plots" / f"l13_on_policy_{b}.png", series, "% of the compute budget",
                         "validation accuracy %", f"Continuations of the {b} seq-KD base at equal compute (seed 0)")
    print(f"  (also drawn to {png})" if png else "", end="")

# %% Step 9: the verdicts, paired by seed (a seed's arms share its base and its prompts), at equal compute.
print(f"\nStep 9: verdicts over {len(SEEDS)} seeds ({time.perf_counter() - T0:.0f} s so far)")


def per_seed(b, name, key="own start"):  # one value per seed
    return [measured[b, name, s][key] for s in SEEDS]


# exposure bias, per seed: right continuing the teacher's first half minus right from its own start
gap = {(b, n): [x - y for x, y in zip(per_seed(b, n, "teacher prefix"), per_seed(b, n))] for b in STARTS for n in NAMES}
for b in STARTS:
    for name in NAMES[2:]:
        claim(f"from the {b} base, {name} beats continued seq-KD (test accuracy)", per_seed(b, name), per_seed(
              b, "seq-KD"), ">", by_seed(f"{name} − seq-KD, equal compute"), scale=100, unit="points", fast=FAST)
    claim(f"the {b} base is right more often continuing the teacher's first half than from its own start",
          per_seed(b, "base", "teacher prefix"), per_seed(b, "base"), ">", by_seed("prefix − own start"), 100, "points", FAST)
    claim(f"from the {b} base, on-policy leaves a smaller exposure-bias gap than continued seq-KD", gap[b, "on-policy"],
          gap[b, "seq-KD"], "<", by_seed("gap on-policy − gap seq-KD"), 100, "points", FAST)
    if args.full:  # is the noise the default teacher learned what on-policy copies?
        claim(f"from the {b} base, a clean-label teacher makes on-policy more accurate", per_seed(b, NAMES[-1]),
              per_seed(b, "on-policy"), ">", by_seed("clean − default teacher"), 100, "points", FAST)

# %% Check yourself
print("\nCheck yourself\n  1. Why is the on-policy loss divided by the number of tokens the student sampled, and what"
      "\n     would a mean over every position (prompt and padding included) do to long and short answers?"
      "\n  2. Step 2 compares the teacher greedy with the teacher sampled at T = 1. What does the reverse KL to its"
      "\n     T = 1 distribution teach a student, and what changes at T = 0.1?"
      "\n  3. An on-policy step costs several seq-KD steps. Which counted parts make it expensive here, and which"
      "\n     of them would a larger teacher make worse?")
rows = [[b, name, f"{runs[b, name, SEEDS[0]]['lr']:.0e}" if name != "base" else "",
         str(runs[b, name, SEEDS[0]]["steps"]) if name != "base" else ""]
        + ["{:.1f} ± {:.1f}".format(*mean_std([100 * x for x in per_seed(b, name, k)])) for k in KEYS]
        for b in STARTS for name in NAMES]
notes = "; ".join([f"validation % at lr {'/'.join(f'{lr:.0e}' for lr in LR_GRID)}: " + ", ".join(
    f"{b} {a} " + "/".join(f"{100 * v:.1f}" for v in g.values()) for (b, a), g in grid.items())]
                  + [f"teacher {k}: {100 * mean(v):.1f} %" for k, v in target.items()]
                  + [f"{b} base: {', '.join(f'{k} {100 * v:.1f} %' for k, v in w.items())}" for b, w in why.items()])
save_lesson("l13_on_policy", args, LOG[n_claims:], seeds=SEEDS, seconds=time.perf_counter() - T0, notes=notes,
                      table=(["base", "arm", "lr (chosen)", "steps (seed 0)"] + [f"{k} %" for k in KEYS], rows))
