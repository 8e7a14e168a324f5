# %% [markdown]
"""Lesson 11 — what sequence-level KD loses: the teacher's alternatives, the spread of phrasings, and the
student's own prefixes, measured.

Sequence-level KD (Kim & Rush 2016) gives the student one answer per prompt, the teacher's greedy one.
Word-level KD (Hinton, Vinyals & Dean 2015) gives it the teacher's whole next-token distribution at every
answer position. Lessons 8-10 measured what the single answer wins; this lesson measures what it loses:

  - the alternatives: where the teacher spreads probability over several next tokens, a student trained on
    one sampled path learns only that path;
  - the phrasings: the teacher's greedy answers pick one surface form, and the student locks onto it;
  - its own prefixes (exposure bias; Bengio et al. 2015, scheduled sampling; Ranzato et al. 2016): every
    student here is trained on prefixes someone else wrote (teacher forcing), never on its own; once its
    own greedy answer slips, it continues from a prefix it was never trained on.

The measures are in minikd/what_seqkd_loses.py: answer_entropy_kl, form_shares (alternative_share),
first_divergence, prefix_correct.

About length: the shipped world's answers are 7-11 tokens (sort) and 19-26 tokens (2-digit add_steps, one
carry adds a few). Longer, 3-digit additions would need a teacher trained on them: the cached teacher and the
students learned positions only up to the shipped lengths, so they would fail there for another reason than
exposure bias. The length axis here is the one the shipped world has.

The three students are the showdown's own of one seed (the main job's cached runs): every claim here is
about these three trained models, paired by test prompt; lesson 10 decides the methods over training seeds.

Run:  python -m lessons.l11_what_seqkd_loses      (--fast: tiny models, seconds; the default run reuses the
      cached teacher and the main job's students, or trains the three it needs, a few minutes on 2 cores)
"""

# %%
import time
from collections import Counter

from lessons import lesson_parser
from lessons.kit import (answer_limit, draw, form_entropy_bits, get_profile, get_teacher, load_split, save_lesson,
                         showdown_students, teacher_answers, word_kd_choice)
from minikd.charts import ascii_bars
from minikd.evaluate import decode_records, score
from minikd.runtime import runs_dir
from minikd.seqkd import as_examples
from minikd.tokenizer import Tokenizer
from minikd.verdict import LOG, by_prompt, check, claim, mean
from minikd.what_seqkd_loses import entropy_kl_by_example, first_divergence, forced_examples, form_shares, prefix_correct
from minikd.world import surface_form

args = lesson_parser(__doc__, "tiny models, a slice of the data").parse_args()
profile = get_profile("quick" if args.fast else "default")
tok = Tokenizer.default()
n_claims, start = len(LOG), time.perf_counter()
train_set = load_split("train", profile, tok)
test_set = load_split("test", profile, tok)[:24 if args.fast else None]
limit = 16 if args.fast else answer_limit(train_set)  # the longest training answer + a margin: longer is a runaway
STUDENTS = ("ground truth", "word-KD", "seq-KD")
FRACTIONS = (0.0, 0.25, 0.5, 0.75)  # how much of the teacher's answer the student is given before it writes

# %% Step 1: three students, the same preset, steps, batch and seed: ground truth, word-level KD, seq-KD.
teacher, _ = get_teacher(profile, device=args.device, seed=args.seed)
word = word_kd_choice(profile, device=args.device)[0]  # the main job's own choice (cached)
print(f"\nStep 1: the showdown's three students of seed {args.seed} ({profile.student_preset} preset, cached by the "
      f"main job or trained here for it); word-level KD with T = {word['temperature']}, α = {word['alpha']}")
_, raw, kept, counts = teacher_answers(profile, teacher, tok)  # seq-KD's data: the main job's stored answers
right = mean([float(score(r["prompt"], r["completion"], r["ended"])) for r in raw])
print(f"  the teacher answered {len(raw)} training prompts ({100 * right:.1f}% right); kept {counts['kept']}, "
      f"dropped {counts['truncated']} cut off, {counts['too_long']} too long, {counts['duplicate']} duplicates")
if not counts["kept"]:  # only the --fast teacher (a few steps) never stops
    print("  (no answer ended: the --fast teacher is barely trained; the student trains on the cut-off "
          "answers so that the same path runs — never do this for real)")
seq_data = as_examples(kept, tok)
METHOD = {"ground truth": "gt", "word-KD": "word_kd", "seq-KD": "seq_kd"}  # the main job's names
showdown = showdown_students(profile, list(METHOD.values()), [args.seed], args.device, models=True)
students = {name: showdown[(METHOD[name], args.seed)]["model"] for name in STUDENTS}  # the models themselves
print(f"  {profile.student_steps} steps x {profile.batch_size} each; claims below are about THESE three students "
      "(one seed, paired by test prompt); lesson 10 decides the methods over seeds")

# %% Step 2: every model's greedy answer to the test prompts, and each student's samples at T = 1.
def by_family(records: list[dict], values: list[float]) -> dict[str, float]:
    """The mean of per-prompt values in each task family (every prompt weighs the same)."""
    return {t: mean([v for r, v in zip(records, values) if r["task"] == t]) for t in sorted({r["task"] for r in records})}


gens = {"teacher": decode_records(teacher, tok, test_set, max_new_tokens=limit)}
gens.update({name: decode_records(m, tok, test_set, max_new_tokens=limit) for name, m in students.items()})
samples = {name: decode_records(m, tok, test_set, method="sample", seed=args.seed, max_new_tokens=limit)
           for name, m in students.items()}
print(f"\nStep 2: greedy accuracy on {len(test_set)} test prompts no model trained on")
acc = {}
for name, g in gens.items():
    ok = [float(score(r["prompt"], x.text, x.ended)) for r, x in zip(test_set, g)]
    acc[name] = mean(ok)
    label = name if name == "teacher" else f"{name} student"
    print(f"  {label:22s} {100 * acc[name]:5.1f}%  ("
          + ", ".join(f"{t} {100 * a:.1f}%" for t, a in by_family(test_set, ok).items()) + ")")


# %% Step 3: teacher-forced on the teacher's own answers: how spread each student's next-token distributions
# are, how far from the teacher's; and how much of the valid forms' probability is off its top form.
examples = forced_examples(tok, test_set, gens["teacher"])
rows = {}
for name, model in {"teacher (reference)": teacher, **{f"{n} student": m for n, m in students.items()}}.items():
    per_prompt = entropy_kl_by_example(teacher, model, examples, tok.pad_id)
    rows[name] = {"entropy": [mean(e) for e, _ in per_prompt], "KL": [mean(k) for _, k in per_prompt],
                  "share": [s["share"] for s in form_shares(model, tok, test_set)]}
print(f"\nStep 3: lost alternatives on {len(test_set)} test prompts, per family (mean per prompt). entropy: of the "
      "next-token distribution (nats per answer position), KL: KL(teacher || student) (nats per position),\n"
      "  both teacher-forced on the teacher's own answer; share: of the probability on the valid forms of the "
      "true answer, the share off the model's top form (0 = one form; 0.5 / 0.67 = 2 / 3 forms evenly)")
tasks = sorted({r["task"] for r in test_set})
alternatives = {name: {m: by_family(test_set, v) for m, v in measures.items()} for name, measures in rows.items()}
print(f"  {'':24s}" + "".join(f"{m + ' ' + t:>22s}" for m in ("entropy", "KL", "share") for t in tasks))
for name, measures in alternatives.items():
    print(f"  {name:24s}" + "".join(f"{measures[m][t]:22.3f}" for m in ("entropy", "KL", "share") for t in tasks))
seq, word_s, gt = rows["seq-KD student"], rows["word-KD student"], rows["ground truth student"]
claim("the seq-KD student's next-token distributions are sharper (lower entropy) than the word-KD student's",
      seq["entropy"], word_s["entropy"], "<", by_prompt("seq-KD − word-KD, entropy per answer position", args.seed),
      unit="nats", fast=args.fast)
claim("the word-KD student is closer to the teacher's distributions (lower KL) than the seq-KD student",
      word_s["KL"], seq["KL"], "<", by_prompt("word-KD − seq-KD, KL(teacher || student) per position", args.seed),
      unit="nats", fast=args.fast)
for other, values in (("word-KD", word_s), ("ground-truth", gt)):
    claim(f"the seq-KD student spreads less probability over valid forms than the {other} student",
          seq["share"], values["share"], "<", by_prompt(f"seq-KD − {other}, share off the top valid form", args.seed),
          scale=100, unit="points", fast=args.fast)


# %% Step 4: locked phrasing: the spread of surface forms in each target and each student's answers, per family.
def form_bits(records: list[dict], texts: list[str]) -> dict[str, float]:
    """Per family, the entropy (bits) of the surface forms the texts use (unreadable: a form of its own)."""
    return {t: abs(form_entropy_bits([surface_form(t, x) for r, x in zip(records, texts) if r["task"] == t]))
            for t in sorted({r["task"] for r in records})}  # abs: no "-0.00"


form_bits_by = {"ground truth (train labels)": form_bits(train_set, [r["completion"] for r in train_set]),
                "teacher's data (train, greedy)": form_bits(seq_data, [r["completion"] for r in seq_data])}
for name in STUDENTS:
    form_bits_by[f"{name} student, greedy"] = form_bits(test_set, [g.text if g.ended else "" for g in gens[name]])
    form_bits_by[f"{name} student, T = 1"] = form_bits(test_set, [g.text if g.ended else "" for g in samples[name]])
print("\nStep 4: locked phrasing — entropy of the answer forms, per family (0 bits = one phrasing always, "
      "1.58 = three equally often); students on the test prompts")
for task in sorted(form_bits_by["ground truth (train labels)"]):
    print(f"  {task}:")
    print(ascii_bars({name: round(bits.get(task, 0.0), 2) for name, bits in form_bits_by.items()}, width=30,
                     unit=" bits"))
for how, what in (("greedy", "greedy answers"), ("T = 1", "samples at T = 1")):
    seq_b, gt_b = form_bits_by[f"seq-KD student, {how}"], form_bits_by[f"ground truth student, {how}"]
    check(f"the seq-KD student's {what} use fewer phrasings than the ground-truth student's, in every family",
          all(seq_b[t] < gt_b[t] for t in gt_b), "form entropy, seq-KD vs ground-truth student: "
          + ", ".join(f"{t} {seq_b[t]:.2f} vs {gt_b[t]:.2f} bits" for t in gt_b), fast=args.fast)


# %% Step 5: exposure bias: teacher forcing up to a point against free running; where students leave; length.
print("\nStep 5: exposure bias — every student was trained on prefixes someone else wrote, never on its own")
# the test prompts whose teacher answer is right: there its prefix is a correct start to continue from
idx = [i for i, (r, g) in enumerate(zip(test_set, gens["teacher"])) if score(r["prompt"], tok.decode(g.tokens), g.ended)]
if not idx:  # only the --fast teacher
    print("  (the --fast teacher gets no test prompt right: its prefixes are used anyway, to run the path)")
    idx = list(range(len(test_set)))
records, answers = [test_set[i] for i in idx], [gens["teacher"][i].tokens for i in idx]
prefix = {name: {f: prefix_correct(m, tok, records, answers, f, limit) for f in FRACTIONS} for name, m in students.items()}
print(f"  accuracy (%) on the {len(records)} test prompts the teacher gets right, continuing after the first "
      "share of the teacher's answer (0 = the student's own start):")
print(f"  {'':22s}" + "".join(f"{f:>8.2f}" for f in FRACTIONS))
for name, by_f in prefix.items():
    print(f"  {name + ' student':22s}" + "".join(f"{100 * mean(by_f[f]):8.1f}" for f in FRACTIONS))
for name, by_f in prefix.items():
    claim(f"the {name} student is right more often continuing from half of the teacher's answer than "
          "from its own start", [float(x) for x in by_f[0.5]], [float(x) for x in by_f[0.0]], ">",
          by_prompt("teacher prefix (1/2) − own start", args.seed, f"this {name} student"), scale=100, unit="points",
          fast=args.fast)
prefix_acc = {n: {f: mean([float(x) for x in v]) for f, v in by_f.items()} for n, by_f in prefix.items()}
print("\n  where each student's greedy answer first leaves the teacher's (token position, end token included):")
print(f"  {'':22s}{'identical %':>12s}{'leaves at (mean)':>18s}{'wrong answers leave at':>24s}")
with_end = lambda g: g.tokens + ([tok.end_id] if g.ended else [])  # noqa: E731  (stopping is part of the answer)
divergence, relative = {}, {}
for name in STUDENTS:
    relative[name], leave, wrong_leave = [], [], []
    for i in idx:
        d = first_divergence(with_end(gens[name][i]), with_end(gens["teacher"][i]))
        relative[name].append(1.0 if d is None else d / len(with_end(gens["teacher"][i])))
        leave += [] if d is None else [d]
        wrong_leave += [d] if d is not None and not score(test_set[i]["prompt"], gens[name][i].text,
                                                          gens[name][i].ended) else []
    divergence[name] = {"identical": relative[name].count(1.0) / len(idx), "leaves_at": mean(leave),
                        "wrong_leave_at": mean(wrong_leave)}
    print(f"  {name + ' student':22s}{100 * divergence[name]['identical']:12.1f}{mean(leave):18.2f}"
          f"{mean(wrong_leave):24.2f}")
claim("the seq-KD student stays on the teacher's answer longer than the word-KD student", relative["seq-KD"],
      relative["word-KD"], ">", by_prompt("seq-KD − word-KD, first divergence as a share of the teacher's answer (1 = "
                                          "never leaves)", args.seed), scale=100, unit="points", fast=args.fast)
lengths = [len(g.tokens) + g.ended for g in gens["teacher"]]
wrong = {name: [float(not score(r["prompt"], g.text, g.ended)) for r, g in zip(test_set, gens[name])]
         for name in STUDENTS}
n_at = Counter(lengths)
xs = sorted(n for n, c in n_at.items() if c >= (1 if args.fast else 5))  # lengths with a few prompts at least
series = {name: (xs, [100 * mean([w for w, n in zip(wrong[name], lengths) if n == x]) for x in xs]) for name in STUDENTS}
print("\n  error rate (%) against answer length (prompts per length: " + ", ".join(f"{x}: {n_at[x]}" for x in xs) + ")")
draw(runs_dir() / "plots" / "l11_error_by_length.png", series, "length of the teacher's answer (tokens)",
     "error rate %", "Students' errors by answer length", width=64)
by_length = {"lengths": xs, "error_pct": {name: ys for name, (_, ys) in series.items()}}
add = [i for i, r in enumerate(test_set) if r["task"] == "add_steps"]  # within add_steps: longer vs shorter
cut = (min(lengths[i] for i in add) + max(lengths[i] for i in add)) / 2
for name in STUDENTS:
    long, short = [wrong[name][i] for i in add if lengths[i] > cut], [wrong[name][i] for i in add if lengths[i] <= cut]
    check(f"the {name} student is wrong more often on the longer add_steps answers than on the shorter ones",
          bool(long) and bool(short) and mean(long) > mean(short),
          f"error rate above {cut:g} tokens {100 * mean(long):.1f}% ({len(long)} prompts), at most {cut:g} "
          f"tokens {100 * mean(short):.1f}% ({len(short)} prompts)", fast=args.fast)
save_lesson("l11_what_seqkd_loses", args, LOG[n_claims:], seconds=time.perf_counter() - start,
                      table=(["student", "test accuracy %"], [[n, f"{100 * a:.1f}"] for n, a in acc.items()]))

# %%
print("\nCheck yourself")
print("  1. Both students can be right as often: why does the one trained on the teacher's greedy answers keep")
print("     less of the teacher's uncertainty than the one trained on its distributions?")
print("  2. Why can sampling the seq-KD student at T = 1 not bring back phrasings its training data never showed?")
print("  3. Every student here was trained with teacher forcing. What does a correct prefix it did not write")
print("     tell you about its own mistakes, and what would training on its own prefixes (on-policy")
print("     distillation, lesson 13) change?")
