# %% [markdown]
"""Lesson 16 — another tokenizer, and ULD: a student with ANOTHER tokenizer learns from the teacher's stored answers.

Sequence-level KD (Kim & Rush 2016) stores the teacher's answers as text, (s, u) pairs. Text carries no
token ids, so the student need not share the teacher's tokenizer: it re-tokenizes u with its own and
trains on it. Word-level KD (Hinton, Vinyals & Dean 2015) cannot: it compares two distributions id by
id, and the same id means different text under two tokenizers. Universal Logit Distillation (ULD;
Boizard et al. 2024) is a token-level loss that needs no shared vocabulary: it compares the two
distributions sorted by probability, so it keeps how sure the teacher is and drops which token it is
sure of (minikd/uld.py).

What to look at, one cell each: (1) the shipped tokenizer (the teacher's) and a second one trained by the same
BPE code with another split rule and 16 merges (data/tokenizer2.tiktoken), one stored answer under each, and
word-level KD between them refused by fingerprint, even at the same size; (2) the teacher's stored answers
re-tokenized for the student, nothing regenerated; (3) ULD's teacher side, computed ONCE, offline: its sorted
top-k probabilities (no ids), positions paired by answer-token index; (4) three students of the second
tokenizer (ground truth, seq-KD, ULD), same preset, steps and seeds; (5) accuracy, and verdicts about the methods
decided over training seeds, paired by seed (a per-prompt interval would leave the seed's variation out); (6) what ULD can and cannot carry.

Run:  python -m lessons.l16_another_tokenizer     (--fast: tiny models, seconds; the default run reuses the
      teacher of lesson 5 and the main job's stored answers to the training prompts, under runs/default/)
"""

# %%
import time

import torch

from lessons import lesson_parser
from lessons.kit import (draw, get_profile, get_teacher, load_split, save_lesson, SLACK, teacher_answers,
                         teacher_sorted_topk, train_student)
from minikd.charts import ascii_bars
from minikd.data import collate, read_jsonl, read_meta
from minikd.evaluate import accuracy
from minikd.losses import masked_nll
from minikd.runtime import DATA_DIR, runs_dir
from minikd.seqkd import as_examples
from minikd.tokenizer import Tokenizer
from minikd.uld import aligned_rows, teacher_rows, uld_by_example, uld_distance, uld_objective
from minikd.verdict import LOG, by_seed, check, claim, mean
from minikd.word_kd import TokenizerMismatch, check_same_tokenizer, topk_mass, word_kd_objective

parser = lesson_parser(__doc__, "tiny models, a slice of the data, 2 seeds")
parser.add_argument("--seeds", type=int, default=3, help="seeds (each: the three students)")
args = parser.parse_args()
profile = get_profile("quick" if args.fast else "default")
tok, tok2 = Tokenizer.default(), Tokenizer.second()
seeds = [args.seed + i for i in range(2 if args.fast else args.seeds)]
n_claims, start = len(LOG), time.perf_counter()
teacher, _ = get_teacher(profile, device=args.device, seed=0)
path, raw, kept, counts = teacher_answers(profile, teacher, tok, tok2)  # the main job's stored answers, filtered
METHODS = ("ground truth", "seq-KD", "ULD")
K = 16  # the teacher's sorted probabilities kept per answer position (ULD's store)
WEIGHT = 1.0  # ULD's weight on the distance (lambda; not tuned here)
STEPS = 300  # every student's steps in the default run (not the profile's 400: 3 x 3 students fit 5 min on 2 cores)


# %% Step 1: one stored answer under each tokenizer; word-level KD between them is refused, by fingerprint.
def stored_data_preview(records, tok, tok2) -> dict:
    """The first stored answer whose tokens differ in the two tokenizations (steps 1 and 3 draw it)."""
    return next((r for r in records if [tok.token_label(i) for i in tok.encode(r["completion"])]
                 != [tok2.token_label(i) for i in tok2.encode(r["completion"])]), records[0])


record = stored_data_preview(raw, tok, tok2)
print(f"Step 1: the teacher's tokenizer {tok!r}\n        the student's tokenizer {tok2!r}")
for name, t in (("teacher", tok), ("student", tok2)):
    print(f"\n  {record['prompt']!r} -> {record['completion']!r} in the {name}'s tokens:")
    print("  " + t.draw_mask(*t.render(record["prompt"], record["completion"])).replace("\n", "\n  "))
print(f"\n  the student's <|end|> is id {tok2.end_id}; to the teacher, id {tok2.end_id} is "
      f"{tok.token_label(tok2.end_id)}: ids mean nothing without their tokenizer")
try:
    word_kd_objective(teacher, tokenizers=(tok, tok2))
    refused = ""
except TokenizerMismatch as e:
    refused = str(e)
print(f"  word-level KD asked for between them: {refused or 'accepted'}")
check("word-level KD between the two tokenizers is refused, naming both", bool(refused) and
      tok.fingerprint in refused and tok2.fingerprint in refused, f"the error names {tok.fingerprint} and "
      f"{tok2.fingerprint}" if refused else "no error was raised", fast=args.fast)
# two tokenizers of the SAME size, trained on the sort prompts and on the addition prompts: refused too
train_records = list(read_jsonl(DATA_DIR / "train.jsonl"))
by_task = {t: "\n".join(r["prompt"] + "\n" + r["completion"] for r in train_records if r["task"] == t)
           for t in ("sort", "add_steps")}
a, b = (Tokenizer.train(by_task[t], 256 + 4) for t in ("sort", "add_steps"))  # 4 merges each
try:
    check_same_tokenizer(a, b)
    refused = False
except TokenizerMismatch:
    refused = True
print(f"  two tokenizers of {a.vocab_size} tokens, trained on the sort and on the addition prompts: 'Sorted' "
      f"takes {len(a.encode('Sorted'))} and {len(b.encode('Sorted'))} tokens, ' step' {len(a.encode(' step'))} "
      f"and {len(b.encode(' step'))}")
check("two tokenizers of the same size with different merges are refused too (fingerprints, not sizes)",
      refused and a.vocab_size == b.vocab_size, f"both {a.vocab_size} tokens, fingerprints {a.fingerprint} "
      f"and {b.fingerprint}", fast=args.fast)

# %% Step 2: the stored (s, u) file, re-tokenized for the student (nothing regenerated). Cut-off answers and
# answers too long for the student's context are dropped; wrong ones stay (plain seq-KD copies the teacher's errors)
meta = read_meta(path)
note = "" if counts["kept"] else " (no answer ended: the --fast teacher is barely trained; its cut-off answers are kept)"
settings = meta["settings"]
print(f"\nStep 2: the stored file {path.name}: {len(raw)} records; a record's fields: {sorted(raw[0])}")
print(f"  its sidecar: decoding {settings['method']}, max_new_tokens {settings['max_new_tokens']}, teacher "
      f"weights {settings['teacher']}, teacher tokenizer {meta['teacher_tokenizer']}")
t_len = mean(len(tok.encode(r["completion"])) for r in kept)
s_len = mean(len(tok2.encode(r["completion"])) for r in kept)
print(f"  re-tokenized for the student: {t_len:.1f} answer tokens on average for the teacher, {s_len:.1f} for "
      f"the student; kept {len(kept)}, dropped {counts['truncated']} cut off, {counts['too_long']} too long, "
      f"{counts['duplicate']} duplicates{note}")


# %% Step 3: ULD's teacher side, once, offline: the teacher reads the answers in its own tokens.
def paired(r: dict) -> list[tuple[int, int]]:
    """ULD's pairing of one answer: the teacher's i-th token with the student's i-th, cut to the shorter answer."""
    return list(zip(tok.encode(r["completion"]) + [tok.end_id], tok2.encode(r["completion"]) + [tok2.end_id]))


train_gt, test = load_split("train", profile, tok2), load_split("test", profile, tok2)[:24 if args.fast else None]
print("\nStep 3: ULD's teacher side, once, offline: the teacher reads the answers in its own tokens")
store, test_store = (teacher_sorted_topk(teacher, tok, recs, name, profile, K)
                      for recs, name in ((kept, "train"), (test, "test")))
same = [float(tok.token_label(x) == tok2.token_label(y)) for r in kept for x, y in paired(r)]
print(f"  of the positions ULD pairs, {100 * mean(same):.1f} % hold the same text in "
      "both tokenizations (the rest compare a teacher token with another piece of text)")
shown = next((i for i, r in enumerate(kept) if r["id"] == stored_data_preview(kept, tok, tok2)["id"]), 0)
record, rows = kept[shown], teacher_rows(store, torch.tensor([shown]))[0]  # the sorted top probabilities (n, k)
n_t, n_s = len(tok.encode(record["completion"])) + 1, len(tok2.encode(record["completion"])) + 1
print(f"  {record['completion']!r}: {n_t} teacher positions, {n_s} student positions, {min(n_t, n_s)} "
      "paired; * = the paired tokens are different text")
for i, (x, y) in enumerate(paired(record)):
    print(f"    {i:2d} {' ' if tok.token_label(x) == tok2.token_label(y) else '*'} teacher {tok.token_label(x):>14s}   "
          f"student {tok2.token_label(y):>14s}   teacher's sorted top 3: {', '.join(f'{p:.2f}' for p in rows[i, :3].tolist())}")
seq, test_examples = as_examples(kept, tok2), as_examples(test, tok2)
data = {"ground truth": train_gt, "seq-KD": seq, "ULD": seq}
limit = 16 if args.fast else max(sum(e["mask"]) for e in train_gt + seq) + SLACK
steps = profile.student_steps if args.fast else STEPS

# %% Step 4: three students of the second tokenizer per seed; greedy test accuracy, ULD distance to the teacher.
print(f"\nStep 4: three students ({profile.student_preset} preset, {tok2.vocab_size} tokens), "
      f"{steps} steps x {profile.batch_size}, seeds {seeds}; ULD weight {WEIGHT}, top {K}")
results = []
for seed in seeds:
    results.append({})
    for method in METHODS:
        t0 = time.perf_counter()
        kw = {"objective": uld_objective(store, WEIGHT)} if method == "ULD" else {}
        model, history = train_student(profile, tok2, data[method], seed, args.device, steps=steps, log_every=0, **kw)
        acc = accuracy(model, tok2, test, max_new_tokens=limit)
        distance = uld_by_example(model, test_examples, test_store, tok2.pad_id)
        results[-1][method] = {"model": model, "history": history, "correct": [float(c) for c in acc["correct"]],
                               "by_task": acc["acc_by_task"], "distance": distance}
        print(f"  seed {seed} {method:13s} {time.perf_counter() - t0:5.1f} s | test {100 * acc['acc']:5.1f}% | "
              f"ULD distance to the teacher {mean(distance):.3f}")

# %% Step 5: accuracy per family, the loss curves of seed 0; every pair of methods decided, by seed and by prompt.
tasks = sorted(results[0]["seq-KD"]["by_task"])
table = {m: {t: mean(r[m]["by_task"][t] for r in results) for t in tasks} for m in METHODS}
for m in METHODS:
    table[m]["all"] = mean(mean(r[m]["correct"]) for r in results)
print(f"\nStep 5: greedy accuracy on the test prompts (%, mean of {len(results)} seeds)")
print(f"  {'':14s}" + "".join(f"{t:>12s}" for t in tasks + ["all"]))
for m in METHODS:
    print(f"  {m:14s}" + "".join(f"{100 * table[m][t]:12.1f}" for t in tasks + ["all"]))
print(ascii_bars({m: round(100 * table[m]["all"], 1) for m in METHODS}, width=30, unit="% test"))
draw(runs_dir() / "plots" / "l16_another_tokenizer_losses.png",
     {m: ([h["step"] for h in results[0][m]["history"]], [h["loss"] for h in results[0][m]["history"]]) for m in METHODS},
     "step", "loss per answer token (ULD: CE + distance)", "Students of another tokenizer (seed 0)", width=64)
per_seed = lambda m, key="correct": [mean(r[m][key]) for r in results]  # noqa: E731  (one value per training seed)
for a, b in (("seq-KD", "ground truth"), ("ULD", "ground truth"), ("ULD", "seq-KD")):
    claim(f"{a} beats {b} for a student with its own tokenizer (test accuracy)", per_seed(a), per_seed(b), ">",
          by_seed(f"{a} − {b}, test accuracy"), scale=100, unit="points", fast=args.fast)
claim("ULD students' sorted distributions are closer to the teacher's than seq-KD students'",
      per_seed("ULD", "distance"), per_seed("seq-KD", "distance"), "<",
      by_seed("ULD − seq-KD, ULD distance per position, teacher-forced on the test answers"), fast=args.fast)


# %% Step 6: what ULD cannot carry: permute the student's vocabulary; only the CE on the text sees it.
def which_token(model, examples: list[dict], store: dict, pad_id: int, fast: bool) -> None:
    """Permute the student's vocabulary: its ULD distance to the teacher must not move, its CE on the text must.
    The batch comes from `collate` on the CPU: every tensor goes to the model's device (a GPU student, too)."""
    examples = examples[:32]
    device = next(model.parameters()).device
    batch = {k: v.to(device) for k, v in collate(examples, pad_id).items()}
    with torch.no_grad():
        logits = model(batch["inputs"])  # (B, T, V)
    perm = torch.randperm(logits.shape[-1], generator=torch.Generator().manual_seed(0)).to(device)
    rows = teacher_rows(store, torch.arange(len(examples)))
    d, ce = [], []
    for z in (logits, logits[..., perm]):
        s_rows, t_rows = aligned_rows(z, batch["targets"], rows)  # (M, V), (M, k)
        d.append(uld_distance(torch.softmax(s_rows.float(), dim=-1), t_rows).mean())
        ce.append(float(masked_nll(z, batch["targets"])))
    print("\nStep 6: what ULD can and cannot carry")
    check("permuting the student's vocabulary leaves its ULD distance to the teacher unchanged; the CE on the "
          "text changes", torch.allclose(d[0], d[1], atol=1e-4) and abs(ce[0] - ce[1]) > 1e-3,
          f"distance {float(d[0]):.4f} vs {float(d[1]):.4f} per position over {len(examples)} test answers; "
          f"CE {ce[0]:.3f} vs {ce[1]:.3f} nats per token", fast=fast)
    print("  So ULD can carry how sure the teacher is at each position (the shape of its distribution: a near-one")
    print("  top probability where the answer is forced, a spread where it hesitates), but not which token it is")
    print("  sure of: that comes from the CE on the text alone, i.e. from the same data seq-KD trains on.")


which_token(results[0]["ULD"]["model"], test_examples, test_store, tok2.pad_id, args.fast)
print(f"\n  ({time.perf_counter() - start:.0f} s in all)")
rows = [[f"{m} ({tok2.vocab_size}-token student)"] + [f"{100 * table[m][c]:.1f}" for c in table[m]] for m in table]
save_lesson("l16_another_tokenizer", args, LOG[n_claims:], seconds=time.perf_counter() - start, seeds=seeds,
                      table=(["student"] + [f"{c} %" for c in table[METHODS[0]]], rows))

# %%
print("\nCheck yourself")
print("  1. The student re-tokenizes the teacher's stored text. Why can word-level KD not do the same with the")
print("     teacher's stored distributions, and why must the check compare fingerprints, not vocabulary sizes?")
print("  2. ULD pairs the i-th answer token of the teacher with the i-th of the student. Where in Step 3's")
print("     example does that pair different text, and what does sorting make of such a pair?")
