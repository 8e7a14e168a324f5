# %% [markdown]
"""Lesson 9 — curation: filter and regenerate the teacher's answers, and what a poor teacher passes on.

The offline recipe of sequence-level KD (Kim & Rush 2016): generate the teacher's answers once, filter out
the poor ones or sample them again, train the student on what is stored, never run the teacher during student
training. What it costs: when the teacher's answers are poor, its errors (and its phrasing) are distilled
too. DeepSeek-AI (2025) trained DeepSeek-R1's distilled models on a set curated this way: sample the teacher,
keep what a checker accepts (rejection sampling), train the small model on what is left.

The core functions, all in minikd.seqkd: drop_reason (why one answer must go), filter_records (keep what
passes, count the rest), rejection_sample (sample again for the dropped prompts).

What to look at:
  1. a deliberately weakened teacher: the teacher preset trained for half of its steps on the noisy
     training set (20% wrong labels) — cached like the real one;
  2. its answers to the prompt set, stored (greedy);
  3. the filter: every dropped answer counted by reason (cut off, too long, rejected by the verifier,
     duplicate), drawn as bars, and by task family;
  4. regeneration: each dropped prompt is sampled again, up to N tries, and the first answer the checks
     accept is kept — and where that cannot help (a family the teacher never gets right);
  5. students with the same budget on unfiltered / filtered / regenerated data (and, as a control, on the
     ground truth): accuracy, error rate next to the teacher's, and how many of the teacher's own wrong
     answers each student repeats word for word.

Run:  python -m lessons.l09_curation      (--fast: tiny models, seconds; the default run caches the weak
      teacher and its data under runs/default/)
"""

# %%
from collections import Counter

from lessons import lesson_parser
from lessons.kit import get_profile, label_to_file, load_split, profile_dir, student_on, weak_teacher
from minikd.charts import ascii_bars
from minikd.data import read_jsonl
from minikd.evaluate import accuracy
from minikd.seqkd import DROP_REASONS, as_examples, decoding_settings, drop_reason, filter_records, rejection_sample
from minikd.tokenizer import Tokenizer
from minikd.verdict import by_prompt, check, claim
from minikd.world import extract_answer

parser = lesson_parser(__doc__, "tiny models, a slice of the data")
parser.add_argument("--prompts", type=int, default=None,
                    help="how many unlabelled prompts the weak teacher labels (default 2000, --fast 48)")
parser.add_argument("--tries", type=int, default=None, help="regeneration samples per dropped prompt (default 3)")
args = parser.parse_args()
profile = get_profile("quick" if args.fast else "default")
tok = Tokenizer.default()
tries = args.tries or (2 if args.fast else 3)
limit = 16 if args.fast else 48  # --fast: the barely trained teacher rarely stops; keep its answers short

# %% Step 1: a weak teacher: the teacher preset after half of the real teacher's steps.
teacher, teacher_path, steps = weak_teacher(profile, tok, args.device, args.seed)
test_set = load_split("test", profile, tok)[:16 if args.fast else None]
t_acc = accuracy(teacher, tok, test_set, max_new_tokens=limit)
print(f"\nStep 1: weak teacher ({teacher.num_params():,} parameters, {steps} steps): "
      f"{100 * t_acc['acc']:.1f}% right on the {len(test_set)} test prompts")

# %% Step 2: the weak teacher answers unlabelled prompts, stored as a file with its sidecar.
prompts = load_split("unlabelled", profile, tok)[:args.prompts or (48 if args.fast else 2000)]
raw_path = profile_dir(profile) / f"weak_teacher_unlabelled{len(prompts)}.jsonl"
print(f"\nStep 2: the weak teacher answers {len(prompts)} unlabelled prompts -> {raw_path}")
label_to_file(teacher, tok, prompts, raw_path, teacher_path, limit)
raw = list(read_jsonl(raw_path))


# %% Steps 3-4: three curations of the same stored answers: unfiltered, verifier-filtered, regenerated.
def curate(raw: list[dict], tok, profile, teacher, tries: int, limit: int, seed: int) -> dict:
    """Three curations of the same stored answers: name -> (records to train on, counts)."""
    def reason(r, verify=True):
        return drop_reason(r, tok, profile.block_size, verify=verify)

    unfiltered = filter_records(raw, lambda r: reason(r, verify=False))  # only cut-off / too long answers go
    filtered = filter_records(raw, reason)
    retry = [i for i, r in enumerate(raw) if reason(r) is not None]
    found = rejection_sample(teacher, tok, [raw[i] for i in retry], lambda r: reason(r) is None, tries,
                             decoding_settings("sample", temperature=1.0), seed, limit)
    fills, kept = dict(zip(retry, found)), {id(r) for r in filtered[0]}
    regenerated = [fills[i] or None if i in fills else (r if id(r) in kept else None) for i, r in enumerate(raw)]
    regenerated = [r for r in regenerated if r is not None]  # input order, as the filter keeps it
    counts = Counter(filtered[1], regenerated_ok=sum(f is not None for f in found))
    counts["regenerate_failed"] = len(retry) - counts["regenerated_ok"]
    return {"unfiltered": unfiltered, "filtered": filtered, "regenerated": (regenerated, counts)}


def show_counts(curated: dict, raw: list[dict]) -> dict[str, tuple[float, float]]:
    """Steps 3-4 drawn: what each reason dropped, what regeneration put back; per family, the share of the
    teacher's answers the verifier accepts and the share of the rest that regeneration rescued."""
    kept, counts = curated["regenerated"]
    print(ascii_bars({"input": counts["input"], "kept as is": counts["kept"],
                      **{f"dropped: {why}": counts[why] for why in DROP_REASONS},
                      "regenerated (passed)": counts["regenerated_ok"],
                      "regeneration failed": counts["regenerate_failed"], "output": len(kept)}, width=36))
    accepted = {id(r) for r in curated["filtered"][0]}
    rates = {}
    for task in sorted({r["task"] for r in raw}):
        mine = [r for r in raw if r["task"] == task]
        ok = sum(id(r) in accepted for r in mine)
        rescued = sum(1 for r in kept if r["task"] == task and r.get("regenerated"))
        rates[task] = (ok / len(mine), rescued / max(1, len(mine) - ok))
        print(f"    {task:10s} {len(mine)} stored, {ok} accepted by the verifier, {rescued} of the "
              f"{len(mine) - ok} others rescued by regeneration")
    return rates


print(f"\nSteps 3-4: filter (verifier, truncation, length, duplicates), then sample again for the dropped "
      f"prompts (up to {tries} samples each at temperature 1)")
curated = curate(raw, tok, profile, teacher, tries, limit, args.seed)
rates = show_counts(curated, raw)
worst = min(rates, key=lambda t: rates[t][0])
check(f"rejection sampling rescues the fewest answers in the family the teacher is worst at ({worst})",
      all(rates[worst][1] < r for t, (_, r) in rates.items() if t != worst),
      "; ".join(f"{t}: {100 * a:.0f}% accepted, {100 * r:.0f}% of the rest rescued" for t, (a, r) in rates.items()),
      fast=args.fast)
counts = {name: {**c, "output": len(r)} for name, (r, c) in curated.items()}

# %% Step 5: one student per curation (and one on the ground truth), the same budget each.
print(f"\nStep 5: students ({profile.student_preset} preset), the same budget each")
data = {name: as_examples(records, tok) for name, (records, _) in curated.items()}
data["ground truth (control)"] = load_split("train", profile, tok)
evals = {}
for name, examples in data.items():
    model = student_on(name, examples, profile, tok, args.seed, args.device)
    evals[name] = accuracy(model, tok, test_set, max_new_tokens=limit)


# %% Step 6: accuracy, and how many of the teacher's own wrong answers each student repeats word for word.
def repeats(test_set: list[dict], mine: dict, teacher: dict) -> list[float]:
    """Per test prompt the teacher gets wrong: 1 when the student writes the very same wrong answer."""
    out = []
    for r, my_text, my_ok, t_text, t_ok in zip(test_set, mine["outputs"], mine["correct"], teacher["outputs"],
                                               teacher["correct"]):
        if t_ok:
            continue
        a, b = extract_answer(r["task"], my_text), extract_answer(r["task"], t_text)
        out.append(float(not my_ok and a is not None and a == b))
    return out


rep = {name: repeats(test_set, e, t_acc) for name, e in evals.items()}
print(f"\nStep 6: on {len(test_set)} test prompts (greedy). 'teacher errors repeated' = of the "
      f"{len(rep['unfiltered'])} prompts the teacher gets wrong, how often the student writes the same wrong answer")
print(f"  {'model':24s} {'train examples':>14s} {'accuracy':>9s} {'teacher errors repeated':>24s}")
print(f"  {'weak teacher':24s} {'':>14s} {100 * t_acc['acc']:8.1f}%")
students = {}
for name, e in evals.items():
    share = sum(rep[name]) / max(1, len(rep[name]))
    students[name] = {"acc": e["acc"], "n_train": len(data[name]), "teacher_errors_repeated": share}
    print(f"  {name:24s} {len(data[name]):14d} {100 * e['acc']:8.1f}% {100 * share:23.1f}%")
if rep["unfiltered"]:
    claim("the verifier stops this student from copying the teacher's errors", rep["filtered"], rep["unfiltered"], "<",
          by_prompt("filtered − unfiltered, teacher errors repeated", args.seed), scale=100, unit="points", fast=args.fast)
claim("this student on verified data is right more often than this one on unfiltered data",
      [float(x) for x in evals["filtered"]["correct"]], [float(x) for x in evals["unfiltered"]["correct"]],
      ">", by_prompt("filtered − unfiltered, right", args.seed), scale=100, unit="points", fast=args.fast)
print("  (two students of one seed, taught by a weak teacher: claims about them, not about curation in general)")

# %%
print("\nCheck yourself")
print("  1. Why must a cut-off answer (no end token) never be kept, even when its text looks right?")
print("  2. Which prompts does regeneration fail on, and what does that say about rejection sampling?")
print("  3. Why can a student on filtered data still repeat some of the teacher's errors?")
