# %% [markdown]
"""Lesson 12 — distilled errors: a student copies its teacher's mistakes and quirks; a filter removes what it checks.

Sequence-level KD trains the student on the teacher's text and on nothing else (Kim & Rush 2016), so the
student learns to write what the teacher writes — its systematic mistakes and its habits of tone included.
Curation by rejection sampling keeps only the answers a checker accepts (DeepSeek-AI 2025): it removes a
mistake the checker sees, and keeps everything the checker does not read.

Here the teacher gets two marks (minikd.planted): an ERROR — one digit pair it always adds wrong in its
worked solutions (7 over 8 written "7+8=14 carry 1.", the addition carried on honestly to a wrong answer)
— and a QUIRK — every worked answer opens with "Easy!", which the verifier, reading only the closing
sentence, accepts. How the teacher gets them: the cached default teacher (lesson 5) answers the training
prompts, and the marks are planted into a copy of its answers. Training a teacher on planted labels would
cost minutes and need not learn the marks exactly; planting into the data the student reads is what
matters for distillation, since the student sees only the teacher's text. The real teacher's own answers
to the pair are scored too, to show where the error comes from.

What to look at:
  1. the real teacher answers the training prompts (greedy, cached), and how often it is right on the
     targeted prompts (every unseen worked addition with a 7 over an 8 in some column);
  2. the marks planted into a copy of its answers: one record before and after; the verifier accepts a
     quirked answer that the trace checker (which reads every sentence) rejects;
  3. the verifier as a filter: how many planted errors and quirks are left in the data, drawn as bars;
  4. three students, the same preset, budget and seed: seq-KD on the planted data unfiltered, seq-KD on it
     filtered by the verifier, and a control on the ground truth;
  5. on the test prompts and the targeted prompts: accuracy, the planted error repeated word for word, the
     quirk's share of the worked answers — drawn as bars, each comparison a verdict about THESE students,
     paired by prompt (one seed: three students of 400 steps fill the 5-minute budget; --seed picks another).

Run:  python -m lessons.l12_distilled_errors      (--fast: tiny models, seconds; the default run reuses the
      teacher cached by lesson 5 and the main job's stored answers, runs/default/teacher_greedy.jsonl)
"""

# %%
import time

from lessons import lesson_parser
from lessons.kit import get_profile, get_teacher, load_split, save_lesson, student_on, teacher_greedy
from minikd.charts import ascii_bars, save_bar_chart
from minikd.data import read_jsonl
from minikd.evaluate import accuracy
from minikd.planted import PAIR, QUIRK, has_quirk, plant, repeats_error, targeted_prompts, wrong_steps
from minikd.runtime import runs_dir
from minikd.seqkd import as_examples, drop_reason, filter_records
from minikd.tokenizer import Tokenizer
from minikd.verdict import LOG, by_prompt, check, claim, mean
from minikd.world import check_trace, verify

args = lesson_parser(__doc__, "tiny models, a slice of the data").parse_args()
profile = get_profile("quick" if args.fast else "default")
tok = Tokenizer.default()
n_claims, start = len(LOG), time.perf_counter()
LIMIT = 48  # new tokens per answer: a worked 2-digit addition with the quirk needs at most ~36

# %% Step 1: the real teacher's greedy answers to the training prompts (the main job's cached file), and how
# often it is right on the targeted prompts.
teacher, _ = get_teacher(profile, device=args.device, seed=args.seed)
train_set = load_split("train", profile, tok)
targeted = targeted_prompts(PAIR, exclude={r["prompt"] for r in train_set})[:16 if args.fast else None]
raw = list(read_jsonl(teacher_greedy(profile, teacher, tok, "train")))
t_acc = accuracy(teacher, tok, targeted, max_new_tokens=LIMIT)
print(f"Step 1: the real teacher ({teacher.num_params():,} parameters) answered {len(raw)} training prompts; "
      f"on the {len(targeted)} targeted prompts (a {PAIR[0]} over an {PAIR[1]}, never trained on) it is right "
      f"{100 * t_acc['acc']:.1f}% of the time, e.g. {targeted[0]['prompt']!r} -> {t_acc['outputs'][0]!r}")


# %% Step 2: the marks planted into a copy of its answers; the verifier against the trace checker.
def show_planting(raw: list[dict], planted: list[dict], fast: bool) -> None:
    """One record holding the pair before and after; the verifier against the trace checker."""
    both = [(r, p) for r, p in zip(raw, planted) if p.get("planted_error")]
    for r, p in both[:1]:
        print(f"  s = {r['prompt']!r}\n  teacher: {r['completion']!r}\n  planted: {p['completion']!r}")
    n_err, n_quirk = len(both), sum(bool(p.get("planted_quirk")) for p in planted)
    print(f"  {n_err} of {len(planted)} answers carry the planted error {wrong_steps('Add 7 + 8 step by step.')[0]!r}, "
          f"{n_quirk} carry the quirk {QUIRK!r}; every prompt is unchanged: "
          f"{all(r['prompt'] == p['prompt'] for r, p in zip(raw, planted))}")
    sound = [p for r, p in zip(raw, planted)  # the quirk alone: right steps, no planted error
             if p.get("planted_quirk") and not p.get("planted_error") and check_trace(r["prompt"], r["completion"])]
    n_verify = sum(verify(p["prompt"], p["completion"]) for p in sound)
    n_trace = sum(check_trace(p["prompt"], p["completion"]) for p in sound)
    check("the verifier accepts every quirked answer whose steps are right, and the trace checker, which reads "
          "every sentence, rejects them all", bool(sound) and n_verify == len(sound) and n_trace == 0,
          f"of {len(sound)} quirked answers with right steps: verifier accepts {n_verify}, trace checker {n_trace}",
          fast=fast)


print("\nStep 2: the marks planted into a copy of its answers (minikd.planted.plant)")
planted = plant(raw)
show_planting(raw, planted, args.fast)


# %% Step 3: the verifier as a filter: how many planted errors and quirks are left in the data.
def marks(records: list[dict]) -> tuple[int, int, int]:
    """(planted errors, quirked answers, worked answers) in a data set."""
    worked = [r for r in records if r["task"] == "add_steps"]
    return (sum(bool(r.get("planted_error")) for r in records), sum(bool(r.get("planted_quirk")) for r in worked),
            len(worked))


def curate(planted: list[dict], tok, profile, fast: bool) -> dict[str, list[dict]]:
    """Unfiltered (only cut-off and too-long answers go) and filtered by the verifier; what is left."""
    unfiltered, _ = filter_records(planted, lambda r: drop_reason(r, tok, profile.block_size, verify=False))
    filtered, counts = filter_records(planted, lambda r: drop_reason(r, tok, profile.block_size))
    print(f"  the verifier drops {counts['incorrect']} answers as incorrect; "
          f"{len(unfiltered)} unfiltered and {len(filtered)} filtered answers are left")
    left = {name: marks(data) for name, data in (("unfiltered", unfiltered), ("filtered", filtered))}
    print(ascii_bars({f"{name}: {what}": n for name, (e, q, w) in left.items()
                      for what, n in (("planted error", e), ("quirk", q), ("worked answers", w))}, width=36))
    (u_err, u_quirk, u_worked), (f_err, f_quirk, f_worked) = left["unfiltered"], left["filtered"]
    check("the verifier removes every planted error from the training data", u_err > 0 and f_err == 0,
          f"answers with the planted error: {u_err} unfiltered, {f_err} filtered", fast=fast)
    check("the verifier removes the quirk from the training data", f_worked > 0 and f_quirk == 0,
          f"worked answers opening with {QUIRK!r}: {u_quirk} of {u_worked} unfiltered, {f_quirk} of {f_worked} "
          "filtered" + ("" if f_worked else " (no worked answer passed: nothing to judge)"), fast=fast)
    return {"unfiltered": unfiltered, "filtered": filtered}


print("\nStep 3: the verifier as a filter (seqkd.filter_records with seqkd.drop_reason)")
curated = curate(planted, tok, profile, args.fast)
data = {"seq-KD, unfiltered": as_examples(curated["unfiltered"], tok),
        "seq-KD, verifier-filtered": as_examples(curated["filtered"], tok), "ground truth (control)": train_set}

# %% Step 4: three students, the same preset, budget and seed.
print(f"\nStep 4: three students ({profile.student_preset} preset), the same budget and seed ({args.seed})")
students = {name: student_on(name, ex, profile, tok, args.seed, args.device) for name, ex in data.items()}


# %% Step 5: on the test and the targeted prompts: accuracy, the planted error repeated, the quirk; each
# comparison a verdict.
def measure(model, tok, test_set: list[dict], targeted: list[dict]) -> dict:
    """One model: per prompt, right or wrong, the planted error repeated, the quirk written."""
    test = accuracy(model, tok, test_set, max_new_tokens=LIMIT)
    aim = accuracy(model, tok, targeted, max_new_tokens=LIMIT)
    worked = [t for r, t in zip(test_set, test["outputs"]) if r["task"] == "add_steps"]
    return {"test_acc": test["acc"], "correct": [float(x) for x in aim["correct"]],
            "error": [float(repeats_error(r["prompt"], t)) for r, t in zip(targeted, aim["outputs"])],
            "quirk": [float(has_quirk(t)) for t in worked], "example": aim["outputs"][0] if targeted else ""}


def pct(values: list[float]) -> float:
    """A share in percent (0 for no values)."""
    return 100 * mean(values)


def report(rows: dict[str, dict], n_targeted: int) -> None:
    """The table, and the error and quirk rates drawn as bars per student."""
    print(f"  {'student':30s} {'test acc':>8s} {'targeted acc':>12s} {'error repeated':>14s} {'quirk':>6s}")
    for name, m in rows.items():
        print(f"  {name:30s} {100 * m['test_acc']:7.1f}% {pct(m['correct']):11.1f}% {pct(m['error']):13.1f}% "
              f"{pct(m['quirk']):5.1f}%")
    print(f"  (error repeated: of {n_targeted} targeted prompts, the share whose answer writes the planted wrong step "
          f"word for word; quirk: the share of worked test answers opening with {QUIRK!r})")
    bars = {f"{name}: {what}": round(pct(m[what]), 1) for what in ("error", "quirk") for name, m in rows.items()}
    print(ascii_bars(bars, width=36, unit="%"))
    png = save_bar_chart(runs_dir() / "plots" / "l12_error_and_quirk.png", list(rows),
                         {what: [pct(m[what]) for m in rows.values()] for what in ("error", "quirk")}, None,
                         "share of answers (%)", "The planted error and quirk, repeated by each student")
    if png:
        print(f"  (also drawn to {png})")


def verdicts(rows: dict[str, dict], fast: bool, seed: int) -> None:
    """The comparisons, each about two of these students (one seed), paired by prompt: the error, the quirk, then
    accuracy on the targeted prompts."""
    unf, fil, gt = rows["seq-KD, unfiltered"], rows["seq-KD, verifier-filtered"], rows["ground truth (control)"]
    per = "per targeted prompt"
    claim("the student on the unfiltered planted data repeats the planted error more often than the control",
          unf["error"], gt["error"], ">", by_prompt(f"unfiltered − control, error repeated {per}", seed), 100, "points", fast)
    claim("the verifier removes the planted error: its student repeats it less often than the unfiltered one",
          fil["error"], unf["error"], "<", by_prompt(f"filtered − unfiltered, error repeated {per}", seed), 100, "points", fast)
    claim("the verifier removes the quirk: its student opens worked answers with it less often than the "
          "unfiltered one", fil["quirk"], unf["quirk"], "<", by_prompt("filtered − unfiltered, quirk per worked answer", seed),
          100, "points", fast)
    claim("the student on verified data still writes the quirk, which the control never saw",
          fil["quirk"], gt["quirk"], ">", by_prompt("filtered − control, quirk per worked answer", seed), 100, "points", fast)
    claim("on the targeted prompts the student on verified data is right more often than the unfiltered one",
          fil["correct"], unf["correct"], ">", by_prompt(f"filtered − unfiltered, right {per}", seed), 100, "points", fast)
    claim("on the targeted prompts the control is right more often than the student on verified data (the "
          "verifier dropped every example of the pair)", gt["correct"], fil["correct"], ">",
          by_prompt(f"control − filtered, right {per}", seed), 100, "points", fast)


test_set = load_split("test", profile, tok)[:24 if args.fast else None]
print(f"\nStep 5: {len(test_set)} test prompts and {len(targeted)} targeted prompts (greedy)")
rows = {name: measure(model, tok, test_set, targeted) for name, model in students.items()}
for name, m in rows.items():
    print(f"  {name}: {targeted[0]['prompt']!r} -> {m['example']!r}")
report(rows, len(targeted))
verdicts(rows, args.fast, args.seed)
results = {name: {"test_acc": m["test_acc"], "targeted_acc": pct(m["correct"]) / 100,
                  "error_repeated": pct(m["error"]) / 100, "quirk": pct(m["quirk"]) / 100} for name, m in rows.items()}
table = (["student", "test %", "targeted right %", "planted error repeated %", "quirk repeated %"],
         [[n, f"{100 * m['test_acc']:.1f}", f"{100 * m['targeted_acc']:.1f}", f"{100 * m['error_repeated']:.1f}",
           f"{100 * m['quirk']:.1f}"] for n, m in results.items()])
save_lesson("l12_distilled_errors", args, LOG[n_claims:], table=table, seconds=time.perf_counter() - start)

# %%
print("\nCheck yourself")
print("  1. The student never saw the teacher's weights. How did it learn the teacher's wrong step?")
print("  2. Why does the verifier drop the planted error but keep the quirk? Which checker would drop both?")
print("  3. The verifier dropped every answer with a 7 over an 8. Where could the filtered student learn")
print("     7+8=15 from, and why would sampling the same teacher again (lesson 9) never bring it back?")
