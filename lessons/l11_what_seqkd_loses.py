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

What to look at:
  1. three students, the same preset, budget and seed: on the ground truth (SFT on the noisy labels), word-
     level KD (the teacher online; T and alpha as the main job chose them), seq-KD (SFT on the teacher's
     greedy answers to the training prompts);
  2. lost alternatives, on test prompts no model trained on: teacher-forced on the teacher's own answer, per
     answer position, the entropy of each student's next-token distribution and its KL(teacher || student);
     per prompt, the share of the probability on the valid forms of the true answer that is off the
     student's top form;
  3. locked phrasing: the entropy (bits) of the answer forms in the ground truth, the teacher's data, each
     student's greedy answers and its samples at T = 1, per family, drawn as bars;
  4. exposure bias: accuracy when the student continues from 1/4, 1/2, 3/4 of the teacher's answer against
     from its own start; where its greedy answer first leaves the teacher's; error rate against answer
     length, drawn.

About length: the shipped world's answers are 7-11 tokens (sort) and 19-26 tokens (2-digit add_steps, one
carry adds a few). Longer, 3-digit additions would need a teacher trained on them: the cached teacher and the
students learned positions only up to the shipped lengths, so they would fail there for another reason than
exposure bias. The length axis here is the one the shipped world has.

Run:  python -m lessons.l11_what_seqkd_loses      (--fast: tiny models, seconds; the default run reuses the
      cached teacher and word-KD choice and trains three students, a few minutes on 2 cores)
"""

from __future__ import annotations

import time
from collections import Counter

from lessons import lesson_parser
from minikd.machinery import rendering
from minikd.runtime import runs_dir
from minikd.data import read_jsonl
from minikd.evaluate import decode_records, score
from lessons.kit import answer_limit, form_entropy_bits, get_profile, get_teacher, load_split, teacher_greedy, train_model, word_kd_choice
from minikd.charts import ascii_bars, ascii_chart, save_line_plot
from minikd.verdict import mean
from minikd.seqkd import as_examples, drop_reason, filter_records
from minikd.what_seqkd_loses import entropy_kl_by_example, first_divergence, form_shares, prefix_correct
from minikd.world import surface_form
from minikd.tokenizer import Tokenizer
from minikd.verdict import LOG, check, claim
from minikd.word_kd import word_kd_objective

STUDENTS = ("ground truth", "word-KD", "seq-KD")
FRACTIONS = (0.0, 0.25, 0.5, 0.75)  # how much of the teacher's answer the student is given before it writes


def by_family(records: list[dict], values: list[float]) -> dict[str, float]:
    """The mean of per-prompt values in each task family (every prompt weighs the same)."""
    groups: dict[str, list[float]] = {}
    for r, v in zip(records, values):
        groups.setdefault(r["task"], []).append(v)
    return {t: mean(v) for t, v in sorted(groups.items())}


def word_kd_setting(profile, args) -> tuple[dict, str]:
    """Word-level KD's T and alpha: the main job's choice (its validation sweep, cached under runs/); --fast
    takes T = 1, alpha = 0.5 instead of training the sweep's four students."""
    if args.fast:
        return {"temperature": 1.0, "alpha": 0.5}, "--fast: fixed, the main job's sweep is not run"
    word, _ = word_kd_choice(profile, device=args.device)
    return word, "chosen on a validation slice by the main job"


def seq_kd_data(teacher, tok, profile) -> list[dict]:
    """Step 1b: the teacher's greedy answers to the training prompts (the main job's cached file, made by
    the same seqkd.label_prompts), cut-off and too-long answers dropped (wrong ones stay: plain seq-KD
    distils the teacher's errors too)."""
    raw = list(read_jsonl(teacher_greedy(profile, teacher, tok, "train")))
    kept, counts = filter_records(raw, lambda r: drop_reason(r, tok, profile.block_size, verify=False))
    right = mean([float(score(r["prompt"], r["completion"], r["ended"])) for r in raw])
    print(f"  the teacher answered {len(raw)} training prompts ({100 * right:.1f}% right); kept {counts['kept']}, "
          f"dropped {counts['truncated']} cut off, {counts['too_long']} too long, {counts['duplicate']} duplicates")
    if not kept:  # only the --fast teacher (a few steps) never stops
        print("  (no answer ended: the --fast teacher is barely trained; the student trains on the cut-off "
              "answers so that the same path runs — never do this for real)")
        kept = raw
    return as_examples(kept, tok)


def train_students(profile, tok, teacher, data: dict[str, list[dict]], word: dict, args) -> dict:
    """Step 1c: one student per data set / objective, the same preset, steps, batch and seed."""
    objectives = {"word-KD": word_kd_objective(teacher, temperature=word["temperature"], alpha=word["alpha"])}
    models = {}
    for name in STUDENTS:
        print(f"  {name} student: {len(data[name])} examples, {profile.student_steps} steps x {profile.batch_size}, "
              f"seed {args.seed}")
        kw = {"objective": objectives[name]} if name in objectives else {}
        models[name], _ = train_model(profile.student_config(tok.vocab_size), data[name], profile.student_steps,
                                      profile, lr=profile.student_lr, seed=args.seed, device=args.device, tok=tok,
                                      log_every=0, **kw)
    return models


def forced_examples(tok, records: list[dict], gens: list) -> list[dict]:
    """The teacher's own answers, rendered for teacher forcing (the token ids it wrote, not re-encoded text):
    mask 1 on the answer tokens and on the end token when it wrote one."""
    out = []
    for r, g in zip(records, gens):
        prompt = tok.render_prompt(r["prompt"])
        tail = g.tokens + ([tok.end_id] if g.ended else [])
        out.append({"ids": prompt + tail, "mask": [0] * len(prompt) + [1] * len(tail)})
    return out


def alternatives_table(test_set: list[dict], rows: dict[str, dict[str, list[float]]]) -> dict:
    """Print the per-family means of each measure for every model; return them."""
    tasks = sorted({r["task"] for r in test_set})
    table = {name: {m: by_family(test_set, v) for m, v in measures.items()} for name, measures in rows.items()}
    head = "".join(f"{m + ' ' + t:>22s}" for m in ("entropy", "KL", "share") for t in tasks)
    print(f"  {'':24s}{head}")
    for name, measures in table.items():
        print(f"  {name:24s}" + "".join(f"{measures[m][t]:22.3f}" for m in ("entropy", "KL", "share") for t in tasks))
    return table


def lost_alternatives(teacher, students: dict, tok, test_set: list[dict], gens: list, fast: bool) -> dict:
    """Step 3: teacher-forced on the teacher's own answers, how spread each student's next-token distributions
    are, how far from the teacher's; and how much of the valid forms' probability is off its top form."""
    examples = forced_examples(tok, test_set, gens)
    models = {"teacher (reference)": teacher, **{f"{n} student": m for n, m in students.items()}}
    rows = {}
    for name, model in models.items():
        per_prompt = entropy_kl_by_example(teacher, model, examples, tok.pad_id)
        rows[name] = {"entropy": [mean(e) for e, _ in per_prompt], "KL": [mean(k) for _, k in per_prompt],
                      "share": [s["share"] for s in form_shares(model, tok, test_set)]}
    print(f"\nStep 3: lost alternatives on {len(test_set)} test prompts, per family (mean per prompt). entropy: of the "
          "next-token distribution (nats per answer position), KL: KL(teacher || student) (nats per position),\n"
          "  both teacher-forced on the teacher's own answer; share: of the probability on the valid forms of the "
          "true answer, the share off the model's top form (0 = one form; 0.5 / 0.67 = 2 / 3 forms evenly)")
    table = alternatives_table(test_set, rows)
    seq, word, gt = rows["seq-KD student"], rows["word-KD student"], rows["ground truth student"]
    per_prompt = "per test prompt"
    claim("the seq-KD student's next-token distributions are sharper (lower entropy) than the word-KD student's",
          seq["entropy"], word["entropy"], "<", f"seq-KD − word-KD, entropy per answer position, {per_prompt}",
          unit="nats", fast=fast)
    claim("the word-KD student is closer to the teacher's distributions (lower KL) than the seq-KD student",
          word["KL"], seq["KL"], "<", f"word-KD − seq-KD, KL(teacher || student) per position, {per_prompt}",
          unit="nats", fast=fast)
    for other, values in (("word-KD", word), ("ground-truth", gt)):
        claim(f"the seq-KD student spreads less probability over valid forms than the {other} student",
              seq["share"], values["share"], "<", f"seq-KD − {other}, share off the top valid form, {per_prompt}",
              scale=100, unit="points", fast=fast)
    return table


def form_bits(records: list[dict], texts: list[str]) -> dict[str, float]:
    """Per family, the entropy (bits) of the surface forms the texts use (unreadable: a form of its own)."""
    groups: dict[str, list] = {}
    for r, text in zip(records, texts):
        groups.setdefault(r["task"], []).append(surface_form(r["task"], text))
    return {t: abs(form_entropy_bits(forms)) for t, forms in sorted(groups.items())}  # abs: no "-0.00"


def locked_phrasing(train_set, seq_data, greedy: dict, samples: dict, test_set, fast: bool) -> dict:
    """Step 4: the spread of surface forms in each target and in each student's answers, per family, drawn."""
    sources = {"ground truth (train labels)": form_bits(train_set, [r["completion"] for r in train_set]),
               "teacher's data (train, greedy)": form_bits(seq_data, [r["completion"] for r in seq_data])}
    for name in STUDENTS:
        sources[f"{name} student, greedy"] = form_bits(test_set, [g.text if g.ended else "" for g in greedy[name]])
        sources[f"{name} student, T = 1"] = form_bits(test_set, [g.text if g.ended else "" for g in samples[name]])
    print("\nStep 4: locked phrasing — entropy of the answer forms, per family (0 bits = one phrasing always, "
          "1.58 = three equally often); students on the test prompts")
    for task in sorted(sources["ground truth (train labels)"]):
        print(f"  {task}:")
        print(ascii_bars({name: round(bits.get(task, 0.0), 2) for name, bits in sources.items()}, width=30,
                         unit=" bits"))
    for how, word in (("greedy", "greedy answers"), ("T = 1", "samples at T = 1")):
        seq, gt = sources[f"seq-KD student, {how}"], sources[f"ground truth student, {how}"]
        check(f"the seq-KD student's {word} use fewer phrasings than the ground-truth student's, in every family",
              all(seq[t] < gt[t] for t in gt), "form entropy, seq-KD vs ground-truth student: "
              + ", ".join(f"{t} {seq[t]:.2f} vs {gt[t]:.2f} bits" for t in gt), fast=fast)
    return sources


def teacher_right(test_set: list[dict], gens: list, tok) -> list[int]:
    """The test prompts whose teacher answer is right: there its prefix is a correct start to continue from."""
    right = [i for i, (r, g) in enumerate(zip(test_set, gens)) if score(r["prompt"], tok.decode(g.tokens), g.ended)]
    if not right:  # only the --fast teacher
        print("  (the --fast teacher gets no test prompt right: its prefixes are used anyway, to run the path)")
        return list(range(len(test_set)))
    return right


def prefix_gains(students: dict, tok, records: list[dict], answers: list[list[int]], limit: int, fast: bool) -> dict:
    """Step 5a: accuracy when the student continues from a growing share of the teacher's (right) answer."""
    acc = {name: {f: prefix_correct(m, tok, records, answers, f, limit) for f in FRACTIONS}
           for name, m in students.items()}
    print(f"  accuracy (%) on the {len(records)} test prompts the teacher gets right, continuing after the first "
          "share of the teacher's answer (0 = the student's own start):")
    print(f"  {'':22s}" + "".join(f"{f:>8.2f}" for f in FRACTIONS))
    for name, by_f in acc.items():
        print(f"  {name + ' student':22s}" + "".join(f"{100 * mean(by_f[f]):8.1f}" for f in FRACTIONS))
    for name, by_f in acc.items():
        claim(f"the {name} student is right more often continuing from half of the teacher's answer than "
              "from its own start", [float(x) for x in by_f[0.5]], [float(x) for x in by_f[0.0]], ">",
              f"teacher prefix (1/2) − own start, {name} student, per prompt", scale=100, unit="points", fast=fast)
    return acc


def with_end(g, end_id: int) -> list[int]:
    """A generation's tokens, and its end token when it wrote one: stopping is part of the answer."""
    return g.tokens + ([end_id] if g.ended else [])


def where_they_leave(greedy: dict, teacher_gens: list, tok, test_set: list[dict], idx: list[int], fast: bool) -> dict:
    """Step 5b: the first position where each student's greedy answer leaves the teacher's (on the prompts
    the teacher gets right); as a share of the teacher's answer length, 1 = it never leaves."""
    print("\n  where each student's greedy answer first leaves the teacher's (token position, end token included):")
    print(f"  {'':22s}{'identical %':>12s}{'leaves at (mean)':>18s}{'wrong answers leave at':>24s}")
    out = {}
    for name in STUDENTS:
        rel, leave, wrong_leave = [], [], []
        for i in idx:
            t_ids, s_ids = with_end(teacher_gens[i], tok.end_id), with_end(greedy[name][i], tok.end_id)
            d = first_divergence(s_ids, t_ids)
            rel.append(1.0 if d is None else d / len(t_ids))
            if d is not None:
                leave.append(d)
                if not score(test_set[i]["prompt"], greedy[name][i].text, greedy[name][i].ended):
                    wrong_leave.append(d)
        out[name] = {"relative": rel, "identical": rel.count(1.0) / len(rel), "leaves_at": mean(leave),
                     "wrong_leave_at": mean(wrong_leave)}
        print(f"  {name + ' student':22s}{100 * out[name]['identical']:12.1f}{mean(leave):18.2f}"
              f"{mean(wrong_leave):24.2f}")
    claim("the seq-KD student stays on the teacher's answer longer than the word-KD student",
          out["seq-KD"]["relative"], out["word-KD"]["relative"], ">",
          "seq-KD − word-KD, first divergence as a share of the teacher's answer (1 = never leaves), per prompt",
          scale=100, unit="points", fast=fast)
    return out


def error_by_length(greedy: dict, teacher_gens: list, test_set: list[dict], fast: bool) -> dict:
    """Step 5c: error rate of each student's greedy answers against the length of the teacher's answer
    (tokens, end included), drawn; and, within add_steps, longer answers against shorter ones."""
    lengths = [len(g.tokens) + g.ended for g in teacher_gens]
    wrong = {name: [float(not score(r["prompt"], g.text, g.ended)) for r, g in zip(test_set, greedy[name])]
             for name in STUDENTS}
    counts = Counter(lengths)
    xs = sorted(n for n, c in counts.items() if c >= (1 if fast else 5))  # lengths with a few prompts at least
    series = {name: (xs, [100 * mean([w for w, n in zip(wrong[name], lengths) if n == x]) for x in xs])
              for name in STUDENTS}
    print(f"\n  error rate (%) against answer length (prompts per length: "
          + ", ".join(f"{x}: {counts[x]}" for x in xs) + ")")
    print(ascii_chart(series, height=10, xlabel="length of the teacher's answer (tokens)", ylabel="error rate %"))
    png = save_line_plot(runs_dir() / "plots" / "l11_error_by_length.png", series,
                         "length of the teacher's answer (tokens)", "error rate %", "Students' errors by answer length")
    if png:
        print(f"  (also drawn to {png})")
    steps = [i for i, r in enumerate(test_set) if r["task"] == "add_steps"]
    cut = (min(lengths[i] for i in steps) + max(lengths[i] for i in steps)) / 2
    for name in STUDENTS:
        long = [wrong[name][i] for i in steps if lengths[i] > cut]
        short = [wrong[name][i] for i in steps if lengths[i] <= cut]
        check(f"the {name} student is wrong more often on the longer add_steps answers than on the shorter ones",
              bool(long) and bool(short) and mean(long) > mean(short),
              f"error rate above {cut:g} tokens {100 * mean(long):.1f}% ({len(long)} prompts), at most {cut:g} "
              f"tokens {100 * mean(short):.1f}% ({len(short)} prompts)", fast=fast)
    return {"lengths": xs, "error_pct": {name: ys for name, (_, ys) in series.items()}}


def own_answers(teacher, students: dict, tok, test_set: list[dict], limit: int, seed: int) -> tuple:
    """Step 2: every model's greedy answer to the test prompts, and each student's samples at T = 1."""
    gens = {"teacher": decode_records(teacher, tok, test_set, max_new_tokens=limit)}
    gens.update({name: decode_records(m, tok, test_set, max_new_tokens=limit) for name, m in students.items()})
    samples = {name: decode_records(m, tok, test_set, method="sample", seed=seed, max_new_tokens=limit)
               for name, m in students.items()}
    print(f"\nStep 2: greedy accuracy on {len(test_set)} test prompts no model trained on")
    acc = {}
    for name, g in gens.items():
        right = [score(r["prompt"], x.text, x.ended) for r, x in zip(test_set, g)]
        acc[name] = mean([float(ok) for ok in right])
        fams = by_family(test_set, [float(ok) for ok in right])
        label = name if name == "teacher" else f"{name} student"
        print(f"  {label:22s} {100 * acc[name]:5.1f}%  (" + ", ".join(f"{t} {100 * a:.1f}%" for t, a in fams.items())
              + ")")
    return gens, samples, acc


def exposure_bias(students: dict, gens: dict, tok, test_set: list[dict], limit: int, fast: bool) -> dict:
    """Step 5: teacher forcing up to a point against free running; where the students leave; length."""
    print("\nStep 5: exposure bias — every student was trained on prefixes someone else wrote, never on its own")
    idx = teacher_right(test_set, gens["teacher"], tok)
    records = [test_set[i] for i in idx]
    answers = [gens["teacher"][i].tokens for i in idx]
    acc = prefix_gains(students, tok, records, answers, limit, fast)
    leave = where_they_leave(gens, gens["teacher"], tok, test_set, idx, fast)
    lengths = error_by_length(gens, gens["teacher"], test_set, fast)
    return {"prefix_acc": {n: {f: mean([float(x) for x in v]) for f, v in by_f.items()} for n, by_f in acc.items()},
            "divergence": {n: {k: v for k, v in d.items() if k != "relative"} for n, d in leave.items()},
            "by_length": lengths}


def main(argv=None):
    args = lesson_parser(__doc__, "tiny models, a slice of the data").parse_args(argv)
    profile = get_profile("quick" if args.fast else "default")
    tok = Tokenizer.default()
    n_claims, start = len(LOG), time.perf_counter()
    train_set = load_split("train", profile, tok)
    test_set = load_split("test", profile, tok)[:24 if args.fast else None]
    # The longest training answer + a margin: longer is a runaway. --fast: the barely trained teacher rarely
    # stops; keep every answer short.
    limit = 16 if args.fast else answer_limit(train_set)

    teacher, _ = get_teacher(profile, device=args.device, seed=args.seed)
    word, how = word_kd_setting(profile, args)
    print(f"\nStep 1: three students ({profile.student_preset} preset), seed {args.seed}; word-level KD with "
          f"T = {word['temperature']}, α = {word['alpha']} ({how})")
    seq_data = seq_kd_data(teacher, tok, profile)
    data = {"ground truth": train_set, "word-KD": train_set, "seq-KD": seq_data}
    students = train_students(profile, tok, teacher, data, word, args)

    gens, samples, acc = own_answers(teacher, students, tok, test_set, limit, args.seed)
    alternatives = lost_alternatives(teacher, students, tok, test_set, gens["teacher"], args.fast)
    forms = locked_phrasing(train_set, seq_data, gens, samples, test_set, args.fast)
    exposure = exposure_bias(students, gens, tok, test_set, limit, args.fast)

    print("\nCheck yourself")
    print("  1. Both students can be right as often: why does the one trained on the teacher's greedy answers keep")
    print("     less of the teacher's uncertainty than the one trained on its distributions?")
    print("  2. Why can sampling the seq-KD student at T = 1 not bring back phrasings its training data never showed?")
    print("  3. Every student here was trained with teacher forcing. What does a correct prefix it did not write")
    print("     tell you about its own mistakes, and what would training on its own prefixes (on-policy")
    print("     distillation, lesson 13) change?")
    rendering.save_lesson("l11_what_seqkd_loses", args, LOG[n_claims:], seconds=time.perf_counter() - start,
                         table=(["student", "test accuracy %"], [[n, f"{100 * a:.1f}"] for n, a in acc.items()]))
    return {"seed": args.seed, "word_kd": word, "acc": acc, "alternatives": alternatives, "form_bits": forms,
            **exposure, "claims": LOG[n_claims:]}


if __name__ == "__main__":
    main()
