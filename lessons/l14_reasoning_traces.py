# %% [markdown]
"""Lesson 14 — reasoning traces: distil the worked solution, not only the final answer.

DeepSeek-AI (2025) made the small DeepSeek-R1 models by plain SFT on about 800k texts the big model wrote,
each its reasoning followed by its answer, kept only when a checker accepted them (rejection sampling). The
target is the worked solution: the small model is taught how the answer is reached, not only what it is.
Here, in miniature: the same 2-digit sums, labelled by the same teacher (it writes column-by-column worked
solutions), taught to the same student preset two ways — (a) the final answer only, to "What is a + b?",
and (b) the whole worked solution, to "Add a + b step by step." Then rejection sampling of the worked
solutions: K samples per prompt at temperature 1, keep the first the verifier AND the trace checker accept.

The core functions, in minikd.traces: answers_only (a worked solution cut down to its answer), trace_passes
(verifier and trace checker), first_wrong_step, grade, tokens_seen; minikd.seqkd.rejection_sample.

Run:  python -m lessons.l14_reasoning_traces      (--fast: tiny models, seconds; the default run needs the
      cached default teacher, runs/default/teacher.pt, and takes a few minutes: 3 seeds x 400 steps per arm)
"""

# %%
import time
from collections import Counter

from lessons import lesson_parser
from lessons.kit import draw, get_profile, get_teacher, save_lesson, train_student
from minikd.charts import ascii_bars
from minikd.data import read_jsonl
from minikd.evaluate import accuracy
from minikd.runtime import DATA_DIR, runs_dir
from minikd.seqkd import as_examples, decoding_settings, drop_reason, label_prompts, rejection_sample
from minikd.tokenizer import Tokenizer
from minikd.traces import (answers_only, first_wrong_step, grade, operands, sum_prompts, sum_sets, tokens_seen,
                           trace_passes)
from minikd.verdict import LOG, by_prompt, by_seed, check, claim, mean, mean_std

parser = lesson_parser(__doc__, "tiny models, a slice of the data")
parser.add_argument("--seeds", type=int, default=3, help="students per arm, seeds --seed, --seed + 1, ...")
parser.add_argument("--tries", type=int, default=None, help="K, samples per prompt in step 5 (default 4)")
parser.add_argument("--prompts", type=int, default=None, help="training sums (default 2000, --fast 64)")
args = parser.parse_args()
tok = Tokenizer.default()
n_claims, start = len(LOG), time.perf_counter()
profile = get_profile("quick" if args.fast else "default")
steps, limit, tries = profile.student_steps, (24 if args.fast else 48), args.tries or (2 if args.fast else 4)
seeds = [args.seed + i for i in range(args.seeds)]
seen = {r["prompt"] for r in read_jsonl(DATA_DIR / "train.jsonl")}  # the teacher trained on these: never reused
sets = sum_sets({"train": args.prompts or (64 if args.fast else 2000), "test": 24 if args.fast else 300,
                 "heldout": 12 if args.fast else 150}, 2, exclude=seen)  # train: for the teacher to label
curve = 24 if args.fast else 100  # prompts of the learning curve (a slice of the test set)


# %%
def as_direct(records: list[dict]) -> list[dict]:
    """The same sums asked directly ("What is a + b?"): the answers arm's test prompts."""
    return [{"id": r["id"], "task": "add", "prompt": sum_prompts(*operands(r["prompt"]))["answers"],
             "answer": r["answer"]} for r in records]


by_arm = {"traces": {"test": sets["test"], "heldout": sets["heldout"], "curve": sets["test"][:curve]},
          "answers": {"test": as_direct(sets["test"]), "heldout": as_direct(sets["heldout"]),
                      "curve": as_direct(sets["test"][:curve])}}

# %% Step 1: the teacher's greedy worked solutions; those cut off or without a readable answer are dropped.
teacher, _ = get_teacher(profile, device=args.device, seed=args.seed)
t = grade(teacher, tok, sets["test"], limit)
print(f"Step 1: the teacher ({teacher.num_params():,} parameters) writes worked solutions for "
      f"{len(sets['train'])} training sums (greedy); on fresh sums its answers are right "
      f"{100 * mean(t['answer_ok']):.1f}%, its whole traces {100 * mean(t['trace_ok']):.1f}%")
raw = label_prompts(teacher, tok, sets["train"], decoding_settings("greedy"), limit)
traces = [r for r in raw if drop_reason(r, tok, profile.block_size, verify=False) is None and answers_only(r)]
if not traces and args.fast:  # only the --fast teacher (a few steps) is this bad
    print("  (no worked solution ended: the --fast teacher is barely trained. To run the same path anyway "
          "both arms train on the task world's own worked solutions — never do this for real.)")
    traces = [{**r, "completion": r["ground_truth"], "ended": True} for r in raw]
right = sum(trace_passes(r["prompt"], r["completion"], r["ended"]) for r in traces)
print(f"  {len(traces)} of {len(raw)} worked solutions ended with a readable answer; {right} of them pass the "
      "verifier and the trace checker")
for name, r in (("traces arm", traces[0]), ("answers arm", answers_only(traces[0]))):  # one sum, two targets
    print(f"  {name}: {r['prompt']!r} -> {r['completion']!r}")
    print("    " + tok.draw_mask(*tok.render(r["prompt"], r["completion"])).replace("\n", "\n    "))
data = {"answers": as_examples([answers_only(r) for r in traces], tok), "traces": as_examples(traces, tok)}

# %% Step 2: tokens each arm reads in `steps` batches (replayed exactly), and what equal tokens would mean.
print(f"\nStep 2: the token budget — the same {len(traces)} sums, the same student preset "
      f"({profile.student_preset}), the same optimizer steps")
tokens = {arm: tokens_seen(ex, profile.batch_size, steps, args.seed) for arm, ex in data.items()}
for arm, s in tokens.items():
    print(f"  {arm:8s}: {steps} steps x {profile.batch_size} sequences = {s['tokens']:,} tokens read, "
          f"{s['answer_tokens']:,} of them answer tokens (the loss is on these)")
ratio = tokens["traces"]["tokens"] / tokens["answers"]["tokens"]
graded = tokens["traces"]["answer_tokens"] / tokens["answers"]["answer_tokens"]
print(f"  Equal steps is this lesson's comparison. Equal tokens would give the answers arm {ratio:.2f}x the "
      f"steps ({round(steps * ratio)}; {graded:.2f}x to equal the answer tokens), or the traces arm "
      f"{1 / ratio:.2f}x ({round(steps / ratio)}); one answers student is trained for {round(steps * ratio)} "
      "steps too (steps 3-4).")


# %% Step 3: both arms, seed by seed (same prompts, same steps): learning curves, then the graded answers.
def train_arm(examples: list[dict], curve_set: list[dict], n_steps: int, seed: int):
    """One student on `examples`; its accuracy on `curve_set` is measured along the run (the learning curve).
    Returns (model, (steps, accuracy in %))."""
    model, history = train_student(profile, tok, examples, seed, args.device, steps=n_steps, log_every=0,
                                   eval_fn=lambda m: {"curve_acc": accuracy(m, tok, curve_set, max_new_tokens=limit)["acc"]},
                                   eval_every=max(1, n_steps // profile.curve_points))
    points = [h for h in history if "curve_acc" in h]
    return model, ([h["step"] for h in points], [100 * h["curve_acc"] for h in points])


print(f"\nStep 3: both arms, seeds {seeds}, learning curves on {len(by_arm['traces']['curve'])} test sums")
runs = {"answers": [], "traces": []}
for seed in seeds:
    for arm in runs:
        model, arm_curve = train_arm(data[arm], by_arm[arm]["curve"], steps, seed)
        graded = {split: grade(model, tok, by_arm[arm][split], limit) for split in ("test", "heldout")}
        runs[arm].append({"seed": seed, "curve": arm_curve, "model": model, **graded})
        print(f"  seed {seed} {arm:8s}: {100 * mean(graded['test']['answer_ok']):5.1f}% of fresh sums right, "
              f"{100 * mean(graded['heldout']['answer_ok']):5.1f}% of held-out ones")
draw(runs_dir() / "plots" / "l14_learning_curves.png",
     {f"{arm} ({len(rs)} seeds)": (rs[0]["curve"][0], [mean(s["curve"][1][i] for s in rs)
                                                        for i in range(len(rs[0]["curve"][0]))]) for arm, rs in runs.items()},
     "optimizer step", "% of curve prompts right", "Final answers only vs worked solutions",
     hline=(100 * mean(t["answer_ok"]), "teacher, fresh sums"))
eq_steps = round(steps * ratio)  # the other budget: one answers-only student for as many TOKENS as a traces one
print(f"  one more answers-only student, seed {seeds[0]}, for {eq_steps} steps (as many tokens as the traces arm)")
eq = grade(train_arm(data["answers"], by_arm["answers"]["curve"], eq_steps, seeds[0])[0], tok,
           by_arm["answers"]["test"], limit)
print(f"    {100 * mean(eq['answer_ok']):.1f}% of fresh sums right")


# %% Step 4: final-answer accuracy of the arms, paired by seed; trace correctness; where wrong traces go wrong.
print(f"\nStep 4: fresh sums ({len(sets['test'])}) and held-out sums ({len(sets['heldout'])}), greedy")
test = {arm: [mean(s["test"]["answer_ok"]) for s in seeds] for arm, seeds in runs.items()}
held = {arm: [mean(s["heldout"]["answer_ok"]) for s in seeds] for arm, seeds in runs.items()}
claim("the student taught worked solutions gets more fresh sums right than the one taught final answers "
      "only (same prompts, same steps)", test["traces"], test["answers"], ">",
      by_seed("traces − answers, test accuracy"), scale=100, unit="points", fast=args.fast)
claim("... and more of the held-out sums (a carry out of every column)", held["traces"], held["answers"], ">",
      by_seed("traces − answers, held-out accuracy"), scale=100, unit="points", fast=args.fast)
claim("direct addition is unlearnable for this student without the worked solution (under 10 % of fresh sums "
      "right)", test["answers"], 0.1, "<", by_seed("answers-only accuracy − 10 %, fresh sums"), scale=100,
      unit="points", fast=args.fast)
claim("... and it does not learn the rule: under 10 % of the held-out sums right", held["answers"], 0.1, "<",
      by_seed("answers-only accuracy − 10 %, held-out sums"), scale=100, unit="points", fast=args.fast)
claim(f"even with as many tokens as the traces arm ({eq_steps} steps), this answers-only student gets fewer fresh "
      "sums right than this traces student", [float(x) for x in runs["traces"][0]["test"]["answer_ok"]],
      [float(x) for x in eq["answer_ok"]], ">", by_prompt("traces − answers at equal tokens", runs["traces"][0]["seed"]),
      scale=100, unit="points", fast=args.fast)
answer = [mean(s["test"]["answer_ok"]) for s in runs["traces"]]
trace = [mean(s["test"]["trace_ok"]) for s in runs["traces"]]
lucky = [sum(a and not t for a, t in zip(s["test"]["answer_ok"], s["test"]["trace_ok"])) for s in runs["traces"]]
for run, a, tr, n in zip(runs["traces"], answer, trace, lucky):
    print(f"  seed {run['seed']}: final answer right {100 * a:5.1f}%, whole trace right {100 * tr:5.1f}%, "
          f"right answer after a wrong step: {n} of {len(run['test']['answer_ok'])}")
claim("the traces student's right answers come with right worked solutions (trace correctness ≈ answer "
      "accuracy)", trace, answer, "≈", by_seed("trace right − answer right, test"), scale=100,
      unit="points", fast=args.fast)
where = Counter()
for run in runs["traces"]:
    for r, text, ok in zip(sets["test"], run["test"]["outputs"], run["test"]["trace_ok"]):
        if not ok:
            k = first_wrong_step(r["prompt"], text)  # None: the text is right but was cut off
            n = len(str(max(operands(r["prompt"]))))
            where["cut off" if k is None else f"step {k}" if k <= n else "after the steps"] += 1
if where:
    print("  where the traces students' wrong solutions first go wrong (step 1 = the units column):")
    print(ascii_bars(dict(sorted(where.items())), width=30))

# %% Step 5: rejection sampling: K samples at T = 1 per prompt, the first passing both checks kept; a student.
passes = lambda r: trace_passes(r["prompt"], r["completion"], r["ended"])  # noqa: E731  (verifier + trace checker)
print(f"\nStep 5: rejection sampling — up to {tries} teacher samples per training sum at T = 1")
prompts = sets["train"]
found = rejection_sample(teacher, tok, prompts, passes, tries, decoding_settings("sample", temperature=1.0),
                         args.seed, limit)
greedy_ok = {r["prompt"] for r in traces if passes(r)}
wrong = [i for i, p in enumerate(prompts) if p["prompt"] not in greedy_ok]
rescued = sum(found[i] is not None for i in wrong)
lost = sum(f is None for p, f in zip(prompts, found) if p["prompt"] in greedy_ok)
first = sum(f is not None and f["regenerated"] == 1 for f in found)
print(f"  one T = 1 sample passes for {100 * first / len(prompts):.1f}% of the prompts; with up to {tries} "
      f"tries {sum(f is not None for f in found)} of {len(prompts)} prompts keep a solution")
print(ascii_bars({"greedy solution wrong": len(wrong), "... rescued by sampling": rescued,
                  "greedy right, no sample passed": lost}, width=30))
check("rejection sampling rescues prompts whose greedy worked solution was wrong", rescued > 0,
      f"{rescued} of the {len(wrong)} prompts greedy decoding got wrong (of {len(prompts)}) now have a solution "
      f"that passes both checks; {lost} prompts greedy got right have none", fast=args.fast)
kept, base, rs = [f for f in found if f is not None], runs["traces"][0], {}
if not kept:
    check("a student on rejection-sampled solutions beats the one on greedy solutions", False,
          "no sampled solution passed both checks: nothing to train on", fast=args.fast)
else:  # the traces arm's first seed again, trained on the kept samples instead of greedy
    rs_graded = grade(train_arm(as_examples(kept, tok), by_arm["traces"]["curve"], steps, base["seed"])[0], tok,
                      by_arm["traces"]["test"], limit)
    print(f"  seed {base['seed']}: on {len(kept)} kept samples {100 * mean(rs_graded['answer_ok']):.1f}% of fresh sums "
          f"right ({100 * mean(rs_graded['trace_ok']):.1f}% whole traces); on greedy solutions "
          f"{100 * mean(base['test']['answer_ok']):.1f}% ({100 * mean(base['test']['trace_ok']):.1f}%)")
    claim("this traces student on rejection-sampled solutions gets more whole traces right than this one on "
          "greedy solutions", [float(x) for x in rs_graded["trace_ok"]], [float(x) for x in base["test"]["trace_ok"]],
          ">", by_prompt("sampled − greedy, whole trace right", base["seed"]), scale=100, unit="points", fast=args.fast)
    rs = {"acc": mean(rs_graded["answer_ok"]), "trace_acc": mean(rs_graded["trace_ok"]), "n_kept": len(kept)}

# %% The README's table: each arm's tokens read, answer and whole-trace accuracy, mean ± sd over seeds.
pm = lambda arm, split, key: "{:.1f} ± {:.1f}".format(*mean_std([100 * mean(s[split][key]) for s in runs[arm]]))  # noqa: E731
rows = [[f"{arm} ({len(runs[arm])} seeds)", f"{tokens[arm]['tokens']:,}", pm(arm, "test", "answer_ok"),
         pm(arm, "heldout", "answer_ok"), pm(arm, "test", "trace_ok") if arm == "traces" else "—"] for arm in runs]
if rs:
    rows.append([f"traces, rejection-sampled (seed {runs['traces'][0]['seed']}, {rs['n_kept']} kept)", "",
                 f"{100 * rs['acc']:.1f}", "", f"{100 * rs['trace_acc']:.1f}"])
rows.append(["(the teacher, greedy)", "", f"{100 * mean(t['answer_ok']):.1f}", "", f"{100 * mean(t['trace_ok']):.1f}"])
table = (["student taught", "tokens read", "fresh sums right %", "held-out sums right %", "whole trace right %"], rows)
save_lesson("l14_reasoning_traces", args, LOG[n_claims:], seeds=seeds, seconds=time.perf_counter() - start,
                      table=table)

# %%
print("\nCheck yourself")
print("  1. Both arms read the same teacher's answers. What does the worked solution give the student that")
print("     the final answer alone does not — think of the order in which a sum's digits are written?")
print("  2. Why can a solution with a right final answer still be a wrong training target?")
print("  3. The traces arm reads more tokens per step. Which comparison would be unfair to it, and which to")
print("     the answers arm?")
print("  4. Which prompts can rejection sampling never rescue, however large K is?")
