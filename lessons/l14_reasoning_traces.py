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

What to look at:
  1. one sum, two targets: the teacher's worked solution, and the answers-only record cut from it;
  2. the token budget: both arms take the same optimizer steps of the same batch size, but a worked
     solution is longer, so the traces arm reads more tokens (counted) — and what equal tokens would mean;
  3. learning curves: test accuracy vs step for both arms (mean over seeds);
  4. final-answer accuracy on fresh sums and on held-out cases (a carry out of every column), paired by seed;
     trace correctness (a right answer after a wrong step is a wrong trace), and where wrong traces first
     go wrong;
  5. rejection sampling: how many prompts greedy decoding got wrong that sampling rescued, and a traces
     student trained on the kept set vs on the greedy set.

Run:  python -m lessons.l14_reasoning_traces      (--fast: tiny models, seconds; the default run needs the
      cached default teacher, runs/default/teacher.pt, and takes a few minutes: 3 seeds x 400 steps per arm)
"""

from __future__ import annotations

import time
from collections import Counter

from lessons import lesson_parser
from minikd.machinery import rendering
from minikd.runtime import DATA_DIR, runs_dir
from minikd.data import read_jsonl
from minikd.evaluate import accuracy
from lessons.kit import get_profile, get_teacher, train_model
from minikd.charts import ascii_bars, ascii_chart, save_line_plot
from minikd.verdict import mean, mean_std
from minikd.seqkd import as_examples, decoding_settings, drop_reason, label_prompts, rejection_sample
from minikd.tokenizer import Tokenizer
from minikd.traces import (answers_only, first_wrong_step, grade, operands, sum_prompts, sum_sets, tokens_seen,
                           trace_passes)
from minikd.verdict import LOG, check, claim


def make_prompts(n_train: int, n_test: int, n_heldout: int, digits: int) -> dict[str, list[dict]]:
    """add_steps prompts from the task world: training sums for the teacher to label, fresh test sums and
    held-out ones (a carry out of every column) — none of them in the teacher's own training set."""
    seen = {r["prompt"] for r in read_jsonl(DATA_DIR / "train.jsonl")}  # the teacher trained on these
    return sum_sets({"train": n_train, "test": n_test, "heldout": n_heldout}, digits, exclude=seen)


def as_direct(records: list[dict]) -> list[dict]:
    """The same sums asked directly ("What is a + b?"): the answers arm's test prompts."""
    return [{"id": r["id"], "task": "add", "prompt": sum_prompts(*operands(r["prompt"]))["answers"],
             "answer": r["answer"]} for r in records]


def teacher_traces(teacher, tok, prompts: list[dict], limit: int, block_size: int, fast: bool) -> list[dict]:
    """Step 1: the teacher's greedy worked solutions; those cut off or without a readable answer are dropped."""
    raw = label_prompts(teacher, tok, prompts, decoding_settings("greedy"), limit)
    kept = [r for r in raw if drop_reason(r, tok, block_size, verify=False) is None and answers_only(r)]
    if not kept and fast:  # only the --fast teacher (a few steps) is this bad
        print("  (no worked solution ended: the --fast teacher is barely trained. To run the same path anyway "
              "both arms train on the task world's own worked solutions — never do this for real.)")
        kept = [{**r, "completion": r["ground_truth"], "ended": True} for r in raw]
    right = sum(trace_passes(r["prompt"], r["completion"], r["ended"]) for r in kept)
    print(f"  {len(kept)} of {len(raw)} worked solutions ended with a readable answer; {right} of them pass the "
          "verifier and the trace checker")
    return kept


def show_pair(trace: dict, tok) -> None:
    """The two targets of one sum, with the loss mask under each."""
    direct = answers_only(trace)
    for name, r in (("traces arm", trace), ("answers arm", direct)):
        ids, mask = tok.render(r["prompt"], r["completion"])
        print(f"  {name}: {r['prompt']!r} -> {r['completion']!r}")
        print("    " + tok.draw_mask(ids, mask).replace("\n", "\n    "))


def token_budget(data: dict[str, list[dict]], profile, steps: int, seed: int) -> dict[str, dict]:
    """Step 2: tokens each arm reads in `steps` batches (replayed exactly), and what equal tokens would mean."""
    seen = {arm: tokens_seen(ex, profile.batch_size, steps, seed) for arm, ex in data.items()}
    for arm, s in seen.items():
        print(f"  {arm:8s}: {steps} steps x {profile.batch_size} sequences = {s['tokens']:,} tokens read, "
              f"{s['answer_tokens']:,} of them answer tokens (the loss is on these)")
    ratio = seen["traces"]["tokens"] / seen["answers"]["tokens"]
    graded = seen["traces"]["answer_tokens"] / seen["answers"]["answer_tokens"]
    print(f"  Equal steps is this lesson's comparison. Equal tokens would give the answers arm {ratio:.2f}x the "
          f"steps ({round(steps * ratio)}; {graded:.2f}x to equal the answer tokens), or the traces arm "
          f"{1 / ratio:.2f}x ({round(steps / ratio)}); one answers student is trained for {round(steps * ratio)} "
          "steps too (steps 3-4).")
    return {"seen": seen, "ratio": ratio}


def train_arm(profile, tok, examples: list[dict], curve_set: list[dict], steps: int, seed: int, device: str,
              limit: int):
    """One student of the profile's preset on `examples`; its accuracy on `curve_set` is measured along the
    run (train_model's eval_fn) — the learning curve. Returns (model, (steps, accuracy in %))."""
    def eval_fn(model):
        return {"curve_acc": accuracy(model, tok, curve_set, max_new_tokens=limit)["acc"]}

    model, history = train_model(profile.student_config(tok.vocab_size), examples, steps, profile,
                                 lr=profile.student_lr, seed=seed, device=device, tok=tok, log_every=0,
                                 eval_fn=eval_fn, eval_every=max(1, steps // profile.curve_points))
    points = [h for h in history if "curve_acc" in h]
    return model, ([h["step"] for h in points], [100 * h["curve_acc"] for h in points])


def run_seeds(data, sets, profile, tok, seeds: list[int], ctx: dict) -> dict:
    """Step 3: both arms, seed by seed (same prompts, same steps): curves, then the graded test answers."""
    runs = {"answers": [], "traces": []}
    for seed in seeds:
        for arm in runs:
            model, curve = train_arm(profile, tok, data[arm], sets[arm]["curve"], ctx["steps"], seed,
                                     ctx["device"], ctx["limit"])
            graded = {split: grade(model, tok, sets[arm][split], ctx["limit"]) for split in ("test", "heldout")}
            runs[arm].append({"seed": seed, "curve": curve, "model": model, **graded})
            print(f"  seed {seed} {arm:8s}: {100 * mean(graded['test']['answer_ok']):5.1f}% of fresh sums right, "
                  f"{100 * mean(graded['heldout']['answer_ok']):5.1f}% of held-out ones")
    return runs


def draw_curves(runs: dict, teacher_acc: float) -> None:
    """Step 3, drawn: accuracy vs step for each arm, the mean over seeds (terminal chart and PNG)."""
    series = {}
    for arm, seeds in runs.items():
        xs = seeds[0]["curve"][0]
        ys = [mean(s["curve"][1][i] for s in seeds) for i in range(len(xs))]
        series[f"{arm} ({len(seeds)} seeds)"] = (xs, ys)
    print(ascii_chart(series, width=60, height=10, xlabel="optimizer step", ylabel="% of curve prompts right",
                      hline=(teacher_acc, "teacher, fresh sums")))
    png = save_line_plot(runs_dir() / "plots" / "l14_learning_curves.png", series, "optimizer step",
                         "% right (greedy)", "Final answers only vs worked solutions")
    if png:
        print(f"  (also drawn to {png})")


def equal_tokens(examples: list[dict], sets: dict, profile, tok, seed: int, ratio: float, ctx: dict) -> dict:
    """Step 3, the other budget: one answers-only student trained for as many TOKENS as a traces student."""
    steps = round(ctx["steps"] * ratio)
    print(f"  one more answers-only student, seed {seed}, for {steps} steps (as many tokens as the traces arm)")
    model, _ = train_arm(profile, tok, examples, sets["curve"], steps, seed, ctx["device"], ctx["limit"])
    graded = grade(model, tok, sets["test"], ctx["limit"])
    print(f"    {100 * mean(graded['answer_ok']):.1f}% of fresh sums right")
    return {"steps": steps, "test": graded}


def compare_arms(runs: dict, eq: dict | None, fast: bool) -> dict:
    """Step 4: final-answer accuracy of the two arms, paired by seed; the longer answers run, per prompt."""
    test = {arm: [mean(s["test"]["answer_ok"]) for s in seeds] for arm, seeds in runs.items()}
    held = {arm: [mean(s["heldout"]["answer_ok"]) for s in seeds] for arm, seeds in runs.items()}
    claim("the student taught worked solutions gets more fresh sums right than the one taught final answers "
          "only (same prompts, same steps)", test["traces"], test["answers"], ">",
          "traces − answers, test accuracy per seed", scale=100, unit="points", fast=fast)
    claim("... and more of the held-out sums (a carry out of every column)", held["traces"], held["answers"], ">",
          "traces − answers, held-out accuracy per seed", scale=100, unit="points", fast=fast)
    claim("direct addition is unlearnable for this student without the worked solution (under 10 % of fresh sums "
          "right)", test["answers"], 0.1, "<", "answers-only accuracy − 10 %, fresh sums, per seed", scale=100,
          unit="points", fast=fast)
    claim("... and it does not learn the rule: under 10 % of the held-out sums right", held["answers"], 0.1, "<",
          "answers-only accuracy − 10 %, held-out sums, per seed", scale=100, unit="points", fast=fast)
    if eq:
        claim(f"even with as many tokens as the traces arm ({eq['steps']} steps), the answers-only student "
              "gets fewer fresh sums right", [float(x) for x in runs["traces"][0]["test"]["answer_ok"]],
              [float(x) for x in eq["test"]["answer_ok"]], ">",
              f"traces − answers at equal tokens, seed {runs['traces'][0]['seed']}, per test prompt",
              scale=100, unit="points", fast=fast)
    return {"test": test, "heldout": held}


def trace_correctness(runs: dict, test_records: list[dict], fast: bool) -> dict:
    """Step 4, the traces arm: a right answer counts as a right trace only if every step is right too."""
    answer = [mean(s["test"]["answer_ok"]) for s in runs["traces"]]
    trace = [mean(s["test"]["trace_ok"]) for s in runs["traces"]]
    lucky = [sum(a and not t for a, t in zip(s["test"]["answer_ok"], s["test"]["trace_ok"])) for s in runs["traces"]]
    for s, a, t, n in zip(runs["traces"], answer, trace, lucky):
        print(f"  seed {s['seed']}: final answer right {100 * a:5.1f}%, whole trace right {100 * t:5.1f}%, "
              f"right answer after a wrong step: {n} of {len(s['test']['answer_ok'])}")
    claim("the traces student's right answers come with right worked solutions (trace correctness ≈ answer "
          "accuracy)", trace, answer, "≈", "trace right − answer right, test, per seed", scale=100,
          unit="points", fast=fast)
    where = Counter()
    for s in runs["traces"]:
        for r, text, ok in zip(test_records, s["test"]["outputs"], s["test"]["trace_ok"]):
            if not ok:
                k = first_wrong_step(r["prompt"], text)  # None: the text is right but was cut off
                n = len(str(max(operands(r["prompt"]))))
                where["cut off" if k is None else f"step {k}" if k <= n else "after the steps"] += 1
    if where:
        print("  where the traces students' wrong solutions first go wrong (step 1 = the units column):")
        print(ascii_bars(dict(sorted(where.items())), width=30))
    return {"answer": answer, "trace": trace, "right_answer_wrong_trace": lucky}


def rejection(teacher, tok, prompts: list[dict], greedy: list[dict], ctx: dict) -> list[dict]:
    """Step 5: K samples at temperature 1 per prompt, the first that passes both checks kept (seqkd's
    rejection_sample with trace_passes as the test); what it rescued from greedy decoding's mistakes."""
    def passes(r):
        return trace_passes(r["prompt"], r["completion"], r["ended"])

    found = rejection_sample(teacher, tok, prompts, passes, ctx["tries"], decoding_settings("sample", temperature=1.0),
                             ctx["seed"], ctx["limit"])
    greedy_ok = {r["prompt"] for r in greedy if passes(r)}
    wrong = [i for i, p in enumerate(prompts) if p["prompt"] not in greedy_ok]
    rescued = sum(found[i] is not None for i in wrong)
    lost = sum(f is None for p, f in zip(prompts, found) if p["prompt"] in greedy_ok)
    first = sum(f is not None and f["regenerated"] == 1 for f in found)
    print(f"  one T = 1 sample passes for {100 * first / len(prompts):.1f}% of the prompts; with up to {ctx['tries']} "
          f"tries {sum(f is not None for f in found)} of {len(prompts)} prompts keep a solution")
    print(ascii_bars({"greedy solution wrong": len(wrong), "... rescued by sampling": rescued,
                      "greedy right, no sample passed": lost}, width=30))
    check("rejection sampling rescues prompts whose greedy worked solution was wrong", rescued > 0,
          f"{rescued} of the {len(wrong)} prompts greedy decoding got wrong (of {len(prompts)}) now have a solution "
          f"that passes both checks; {lost} prompts greedy got right have none", fast=ctx["fast"])
    return [f for f in found if f is not None]


def rejection_student(kept: list[dict], runs: dict, sets: dict, profile, tok, ctx: dict) -> dict:
    """Step 5, the student: the traces arm's first seed again, trained on the kept samples instead of greedy."""
    base = runs["traces"][0]
    if not kept:
        check("a student on rejection-sampled solutions beats the one on greedy solutions", False,
              "no sampled solution passed both checks: nothing to train on", fast=ctx["fast"])
        return {}
    model, _ = train_arm(profile, tok, as_examples(kept, tok), sets["traces"]["curve"], ctx["steps"], base["seed"],
                         ctx["device"], ctx["limit"])
    graded = grade(model, tok, sets["traces"]["test"], ctx["limit"])
    print(f"  seed {base['seed']}: on {len(kept)} kept samples {100 * mean(graded['answer_ok']):.1f}% of fresh sums "
          f"right ({100 * mean(graded['trace_ok']):.1f}% whole traces); on greedy solutions "
          f"{100 * mean(base['test']['answer_ok']):.1f}% ({100 * mean(base['test']['trace_ok']):.1f}%)")
    claim("the traces student on rejection-sampled solutions gets more whole traces right than the one on "
          "greedy solutions", [float(x) for x in graded["trace_ok"]], [float(x) for x in base["test"]["trace_ok"]],
          ">", f"sampled − greedy, seed {base['seed']}, per test prompt", scale=100, unit="points", fast=ctx["fast"])
    return {"acc": mean(graded["answer_ok"]), "trace_acc": mean(graded["trace_ok"]), "n_kept": len(kept)}


def setup(args) -> tuple:
    """The profile, the sizes of this run, and the prompt sets in both forms."""
    profile = get_profile("quick" if args.fast else "default")
    ctx = {"steps": profile.student_steps, "device": args.device, "limit": 24 if args.fast else 48,
           "tries": args.tries or (2 if args.fast else 4), "seed": args.seed, "fast": args.fast}
    sets = make_prompts(args.prompts or (64 if args.fast else 2000), 24 if args.fast else 300,
                        12 if args.fast else 150, digits=2)
    curve = 24 if args.fast else 100  # prompts of the learning curve (a slice of the test set)
    by_arm = {"traces": {"test": sets["test"], "heldout": sets["heldout"], "curve": sets["test"][:curve]},
              "answers": {"test": as_direct(sets["test"]), "heldout": as_direct(sets["heldout"]),
                          "curve": as_direct(sets["test"][:curve])}}
    return profile, ctx, sets, by_arm


def main(argv=None):
    parser = lesson_parser(__doc__, "tiny models, a slice of the data")
    parser.add_argument("--seeds", type=int, default=3, help="students per arm, seeds --seed, --seed + 1, ...")
    parser.add_argument("--tries", type=int, default=None, help="K, samples per prompt in step 5 (default 4)")
    parser.add_argument("--prompts", type=int, default=None, help="training sums (default 2000, --fast 64)")
    args = parser.parse_args(argv)
    tok = Tokenizer.default()
    n_claims, start = len(LOG), time.perf_counter()
    profile, ctx, sets, by_arm = setup(args)
    teacher, _ = get_teacher(profile, device=args.device, seed=args.seed)
    t = grade(teacher, tok, sets["test"], ctx["limit"])
    print(f"Step 1: the teacher ({teacher.num_params():,} parameters) writes worked solutions for "
          f"{len(sets['train'])} training sums (greedy); on fresh sums its answers are right "
          f"{100 * mean(t['answer_ok']):.1f}%, its whole traces {100 * mean(t['trace_ok']):.1f}%")
    traces = teacher_traces(teacher, tok, sets["train"], ctx["limit"], profile.block_size, args.fast)
    show_pair(traces[0], tok)
    data = {"answers": as_examples([answers_only(r) for r in traces], tok), "traces": as_examples(traces, tok)}

    print(f"\nStep 2: the token budget — the same {len(traces)} sums, the same student preset "
          f"({profile.student_preset}), the same optimizer steps")
    budget = token_budget(data, profile, ctx["steps"], args.seed)

    seeds = [args.seed + i for i in range(args.seeds)]
    print(f"\nStep 3: both arms, seeds {seeds}, learning curves on {len(by_arm['traces']['curve'])} test sums")
    runs = run_seeds(data, by_arm, profile, tok, seeds, ctx)
    draw_curves(runs, 100 * mean(t["answer_ok"]))
    eq = equal_tokens(data["answers"], by_arm["answers"], profile, tok, seeds[0], budget["ratio"], ctx)

    print(f"\nStep 4: fresh sums ({len(sets['test'])}) and held-out sums ({len(sets['heldout'])}), greedy")
    acc = compare_arms(runs, eq, args.fast)
    traces_acc = trace_correctness(runs, sets["test"], args.fast)

    print(f"\nStep 5: rejection sampling — up to {ctx['tries']} teacher samples per training sum at T = 1")
    kept = rejection(teacher, tok, sets["train"], traces, ctx)
    rs = rejection_student(kept, runs, by_arm, profile, tok, ctx)
    check_yourself()
    rendering.save_lesson("l14_reasoning_traces", args, LOG[n_claims:], seeds=seeds, seconds=time.perf_counter() - start,
                         table=results_table(runs, budget["seen"], t, rs))
    return {"n_train": len(traces), "tokens": budget["seen"], "acc": acc, "traces": traces_acc,
            "equal_tokens": {"steps": eq["steps"], "acc": mean(eq["test"]["answer_ok"])}, "rejection": rs,
            "teacher": {"acc": mean(t["answer_ok"]), "trace_acc": mean(t["trace_ok"])}, "claims": LOG[n_claims:]}


def results_table(runs: dict, seen: dict, teacher: dict, rs: dict) -> tuple[list[str], list[list]]:
    """The README's table: each arm's tokens read, answer accuracy and whole-trace accuracy, mean ± sd over seeds."""
    def pm(arm, split, key):
        m, sd = mean_std([100 * mean(s[split][key]) for s in runs[arm]])
        return f"{m:.1f} ± {sd:.1f}"

    header = ["student taught", "tokens read", "fresh sums right %", "held-out sums right %", "whole trace right %"]
    rows = [[f"{arm} ({len(runs[arm])} seeds)", f"{seen[arm]['tokens']:,}", pm(arm, "test", "answer_ok"),
             pm(arm, "heldout", "answer_ok"), pm(arm, "test", "trace_ok") if arm == "traces" else "—"]
            for arm in runs]
    if rs:
        rows.append([f"traces, rejection-sampled (seed {runs['traces'][0]['seed']}, {rs['n_kept']} kept)", "",
                     f"{100 * rs['acc']:.1f}", "", f"{100 * rs['trace_acc']:.1f}"])
    rows.append(["(the teacher, greedy)", "", f"{100 * mean(teacher['answer_ok']):.1f}", "",
                 f"{100 * mean(teacher['trace_ok']):.1f}"])
    return header, rows


def check_yourself() -> None:
    print("\nCheck yourself")
    print("  1. Both arms read the same teacher's answers. What does the worked solution give the student that")
    print("     the final answer alone does not — think of the order in which a sum's digits are written?")
    print("  2. Why can a solution with a right final answer still be a wrong training target?")
    print("  3. The traces arm reads more tokens per step. Which comparison would be unfair to it, and which to")
    print("     the answers arm?")
    print("  4. Which prompts can rejection sampling never rescue, however large K is?")


if __name__ == "__main__":
    main()
