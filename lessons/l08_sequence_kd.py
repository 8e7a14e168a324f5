# %% [markdown]
"""Lesson 8 — sequence-level KD: the teacher writes the answers, the student learns them by SFT.

Kim & Rush (2016), "Sequence-Level Knowledge Distillation", in four steps:

    1. a prompt set s
    2. the teacher writes a complete answer u = teacher(s)             minikd.seqkd.label_prompts
    3. the pairs (s, u) are stored: offline training data             lessons.kit.label_to_file
    4. the student learns -log p(u | s), on the answer tokens only    minikd.seqkd.as_examples + train_model

The student never sees the teacher's distribution over next tokens (that was word-level KD, lesson 6): it
takes the teacher's actual sequence as the answer and learns it by next-token prediction. So sequence-level
KD is supervised fine-tuning on teacher text, and the teacher is not loaded while the student trains.

What to look at:
  1. the prompt set: the shipped unlabelled prompts — nothing to train on until the teacher answers;
  2. u = teacher(s) for a few prompts, with log p_teacher(u | s) and whether each answer ended;
  3. the stored (s, u) file: one JSON line per prompt and a sidecar saying how it was made; cut-off
     answers are dropped (seqkd.filter_records), never silently kept;
  4. the student trained on that text with the response mask, next to a student on the ground truth:
     both loss curves, then verified accuracy on test prompts neither saw;
  5. Kim & Rush's observation: the teacher gives its own outputs a higher log-probability than the
     ground-truth answers, and its answers use fewer phrasings — an easier target to fit.

Run:  python -m lessons.l08_sequence_kd      (--fast: tiny models, seconds; the default run reuses the
      teacher cached by lesson 5 and caches the generated data under runs/default/)
"""

# %%
from collections import Counter

from lessons import lesson_parser
from lessons.kit import draw, form_entropy_bits, get_profile, get_teacher, label_to_file, load_split, profile_dir, train_student
from minikd.charts import ascii_bars
from minikd.data import read_jsonl, read_meta
from minikd.evaluate import accuracy, score
from minikd.runtime import runs_dir
from minikd.seqkd import as_examples, decoding_settings, drop_reason, filter_records, label_prompts, sequence_logprobs
from minikd.tokenizer import Tokenizer
from minikd.verdict import by_prompt, check, claim
from minikd.world import surface_form

args = lesson_parser(__doc__, "tiny models, a slice of the data").parse_args()
profile = get_profile("quick" if args.fast else "default")
tok = Tokenizer.default()
limit = 16 if args.fast else None  # --fast: the barely trained teacher rarely stops; keep its answers short

# %% Step 1: the prompt set s: the shipped unlabelled prompts — nothing to train on until the teacher answers.
prompts = load_split("unlabelled", profile, tok)
print(f"Step 1: the prompt set s: {len(prompts)} unlabelled prompts "
      f"({dict(Counter(p['task'] for p in prompts))}), e.g. {prompts[0]['prompt']!r}")

# %% Step 2: u = teacher(s) for a few prompts (the core function, in memory).
teacher, _ = get_teacher(profile, device=args.device, seed=args.seed)
print(f"\nStep 2: u = teacher(s) — the {profile.teacher_preset} preset ({teacher.num_params():,} parameters), "
      "greedy decoding (seqkd.label_prompts)")
for r in label_prompts(teacher, tok, prompts[:4], decoding_settings("greedy"), limit or 48):
    right = "right" if score(r["prompt"], r["completion"], r["ended"]) else "wrong"
    print(f"  s = {r['prompt']!r}\n  u = {r['completion']!r}\n      log p(u | s) = {r['teacher_logprob']:.3f}, "
          f"ended: {r['ended']}, verifier: {right}")

# %% Step 3: label every prompt as a stored file (with its sidecar), then keep the answers that ended.
raw_path = profile_dir(profile) / "seqkd_unlabelled_greedy.jsonl"
print(f"\nStep 3: the teacher labels all {len(prompts)} prompts -> {raw_path}")
label_to_file(teacher, tok, prompts, raw_path, profile_dir(profile) / "teacher.pt", limit)
meta = read_meta(raw_path)
print(f"  {raw_path.stat().st_size:,} bytes of text, {meta['n_records']} lines ({meta['seconds']:.1f} s of "
      f"teacher generation); sidecar: decoding {meta['settings']['method']}, max_new_tokens "
      f"{meta['settings']['max_new_tokens']}, teacher weights {meta['settings']['teacher']}. The first line:")
print("  " + raw_path.read_text(encoding="utf-8").split("\n", 1)[0])
raw = list(read_jsonl(raw_path))
stored, counts = filter_records(raw, lambda r: drop_reason(r, tok, profile.block_size, verify=False))
print(f"  kept {counts['kept']} of {counts['input']} answers; dropped: "
      + ", ".join(f"{why} {counts[why]}" for why in ("truncated", "empty", "too_long", "duplicate"))
      + " (the verifier is lesson 9's business)")
if not stored:  # only the --fast teacher (a few steps) is this bad
    print("  (no answer ended: the --fast teacher is barely trained. To run the same path anyway the student "
          "trains on the cut-off answers — never do this for real.)")
    stored, _ = filter_records(raw, lambda r: drop_reason(r, tok, profile.block_size, False, drop_truncated=False))

# %% Step 4: the student learns -log p(u | s) on the stored answers, next to a student on the ground truth.
examples = as_examples(stored, tok)
print(f"\nStep 4: the student learns -log p(u | s) on {len(examples)} stored answers; the mask under one:")
print(tok.draw_mask(examples[0]["ids"], examples[0]["mask"]))
train_set = load_split("train", profile, tok)
students, histories = {}, {}
for name, data in {"ground truth": train_set, "teacher text (seq-KD)": examples}.items():
    print(f"  student on {name}: {len(data)} examples, {profile.student_steps} steps x {profile.batch_size}")
    students[name], histories[name] = train_student(profile, tok, data, args.seed, args.device, log_every=0)
draw(runs_dir() / "plots" / "l08_student_losses.png",
     {name: ([h["step"] for h in hist], [h["loss"] for h in hist]) for name, hist in histories.items()},
     "step", "training loss (nats per answer token)", "Students on ground truth vs on teacher text", width=64)
final = {name: sum(h["loss"] for h in hist[-10:]) / len(hist[-10:]) for name, hist in histories.items()}
check("the student on teacher text ends with a lower training loss (an easier target)",
      final["teacher text (seq-KD)"] < final["ground truth"],
      "mean loss of the last 10 steps: " + ", ".join(f"{n} {v:.3f}" for n, v in final.items()), fast=args.fast)

# %% Step 5: verified accuracy on test prompts no model trained on.
test_set = load_split("test", profile, tok)[:24 if args.fast else None]
print(f"\nStep 5: verified accuracy on {len(test_set)} test prompts no model trained on (greedy)")
rows = {"teacher": accuracy(teacher, tok, test_set, max_new_tokens=limit)}
rows.update({f"student on {name}": accuracy(m, tok, test_set, max_new_tokens=limit) for name, m in students.items()})
for name, r in rows.items():
    print(f"  {name:34s} {100 * r['acc']:5.1f}%  (" + ", ".join(f"{t} {100 * a:.1f}%"
                                                           for t, a in r["acc_by_task"].items()) + ")")
claim("this student on teacher text is right more often than this student on the ground truth",
      [float(x) for x in rows["student on teacher text (seq-KD)"]["correct"]],
      [float(x) for x in rows["student on ground truth"]["correct"]], ">",
      by_prompt("seq-KD student − ground-truth student", args.seed), scale=100, unit="points", fast=args.fast)
print("  (two students of one seed: whether seq-KD beats the ground truth as a METHOD is decided over training "
      "seeds in lesson 10)")


# %% Step 6: Kim & Rush — how likely is each target under the teacher, and how many phrasings does each use?
def form_shares(records: list[dict]) -> dict[str, Counter]:
    """Per task family, how many answers use each surface form ("unreadable": no form the verifier knows)."""
    by_task: dict[str, Counter] = {}
    for r in records:
        by_task.setdefault(r["task"], Counter())[surface_form(r["task"], r["completion"]) or "unreadable"] += 1
    return dict(sorted(by_task.items()))


print(f"\nStep 6: Kim & Rush — how likely is each target under the teacher? ({len(test_set)} test prompts)")
own = label_prompts(teacher, tok, test_set, decoding_settings("greedy"), limit or 48)
gt_lp, gt_n = sequence_logprobs(teacher, test_set, tok.pad_id)
pairs = [(o["teacher_logprob"] / (o["teacher_tokens"] + 1), lp / n) for o, lp, n in zip(own, gt_lp, gt_n) if o["ended"]]
if pairs:
    claim("the teacher finds its own answers more likely than the ground-truth answers", [a for a, _ in pairs],
          [b for _, b in pairs], ">", by_prompt("log p per token, own − ground truth (prompts whose answer ended)",
                                                args.seed, "this teacher"), unit="nats", fast=args.fast)
else:
    check("the teacher finds its own answers more likely than the ground-truth answers", False,
          "no teacher answer ended: nothing to compare", fast=args.fast)
gt, mine = form_shares(train_set), form_shares(stored)
for task in gt:
    bars = {f"truth {f}": round(100 * n / sum(gt[task].values()), 1) for f, n in gt[task].items()}
    bars.update({f"teacher {f}": round(100 * n / sum(mine[task].values()), 1) for f, n in mine.get(task, {}).items()})
    print(f"  {task}: share of each surface form, ground truth vs the teacher's stored answers")
    print(ascii_bars(bars, width=30, unit="%"))
both = [t for t in gt if mine.get(t)]
bits = {t: (form_entropy_bits(list(gt[t].elements())), form_entropy_bits(list(mine[t].elements()))) for t in both}
check("the teacher's answers use fewer phrasings than the ground truth, in every family",
      len(both) == len(gt) and all(tb < gb for gb, tb in bits.values()),
      "form entropy, ground truth vs teacher: " + ", ".join(f"{t} {g:.2f} vs {abs(tb):.2f} bits"
                                                            for t, (g, tb) in bits.items())
      + "".join(f", {t}: no stored answer" for t in gt if t not in both), fast=args.fast)

# %%
print("\nCheck yourself")
print("  1. Why is sequence-level distillation of an LLM implemented exactly like SFT?")
print("  2. Why is offline sequence-level distillation possible without the teacher's logits?")
print("  3. Which of the two students' curves in step 4 falls faster, and why does that not by itself")
print("     mean it will be right more often?")
