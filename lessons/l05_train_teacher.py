# %% [markdown]
"""Lesson 5 — train the teacher (and show there is something to distil).

Distillation needs a teacher that knows more than the student can learn on its own. Here both are
trained the same way — masked SFT on the labelled training set (with its wrong labels and its mixed
surface forms) — and scored on the test set by the verifiers, which recompute every answer from the
prompt:

    teacher = the `teacher` preset (several times the student's parameters), trained once and cached
              under runs/<profile>/teacher.pt — every later lesson loads it instead of retraining;
    student = the `student` preset, the same data, the student's training budget.

What to look at:
  1. the teacher's and the student's loss curves, one point per step;
  2. accuracy per task family, teacher vs student, on the test set and on the held-out split
     (cases of the same size kept out of training: a carry in every column, a digit three times);
  3. whether the teacher beats its own data, and the student — verdicts computed from the numbers
     (minikd.verdict.claim), per prompt with a 95 % interval;
  4. the gap between the two models is what lessons 6-10 try to close by distillation.

Run:  python -m lessons.l05_train_teacher        (--fast: tiny models, seconds; --retrain: ignore the cache)
With the `plot` extra (matplotlib) the curves are also saved to runs/<profile>/teacher_loss.png.
"""

# %%
from lessons import lesson_parser
from lessons.kit import get_profile, get_teacher, load_split, profile_dir, train_student
from minikd.charts import ascii_chart, save_line_plot
from minikd.evaluate import accuracy
from minikd.tokenizer import Tokenizer
from minikd.verdict import by_prompt, claim
from minikd.world import verify

parser = lesson_parser(__doc__, "tiny models, few steps")
parser.add_argument("--retrain", action="store_true", help="train the teacher even if one is cached")
args = parser.parse_args()
profile = get_profile("quick" if args.fast else "default")
tok = Tokenizer.default()
train_set = load_split("train", profile, tok)
test_set, heldout = load_split("test", profile, tok), load_split("heldout", profile, tok)

# %% Step 1: the data the teacher learns from — and how often it is wrong.
wrong = sum(not verify(r["prompt"], r["completion"]) for r in train_set)
label_acc = 1 - wrong / len(train_set)
print(f"Step 1: {len(train_set)} labelled training examples; the verifier rejects {wrong} of them "
      f"({100 * wrong / len(train_set):.1f}% label noise)\n")

# %% Step 2: the teacher (trained once, then cached).
teacher, info = get_teacher(profile, device=args.device, retrain=args.retrain, seed=args.seed)
print(f"\nStep 2: teacher = {profile.teacher_preset} preset, {teacher.num_params():,} parameters, "
      f"{profile.teacher_steps} steps ({info.get('train_seconds', 0):.0f} s when it was trained)")

# %% Step 3: a student trained exactly the same way, on its own budget; both curves on one chart.
print(f"\nStep 3: student = {profile.student_preset} preset, the same data, {profile.student_steps} steps")
student, student_history = train_student(profile, tok, train_set, args.seed, args.device)
series = {name: ([r["step"] for r in h], [r["loss"] for r in h])
          for name, h in [("teacher", info["history"]), ("student", student_history)]}
print("\n  training loss per answer token (each on its own training batches)")
print(ascii_chart(series, width=60, height=10, xlabel="step", ylabel="nats"))
png = save_line_plot(profile_dir(profile) / "teacher_loss.png", series, "step", "loss per answer token",
                     "training loss: teacher and student")
if png:
    print(f"  (also drawn to {png})")

# %% Step 4: verified accuracy per task family (greedy decoding), on the test set and the held-out split.
print("\nStep 4: verified accuracy (greedy decoding)")
rows = {name: {"params": model.num_params(), "test": accuracy(model, tok, test_set),
               "heldout": accuracy(model, tok, heldout)} for name, model in [("teacher", teacher), ("student", student)]}
families = list(rows["teacher"]["test"]["acc_by_task"])
print(f"  {'model':8s} {'params':>9s} " + " ".join(f"{f:>10s}" for f in families) + f" {'test':>7s} {'held-out':>9s}")
for name, r in rows.items():
    print(f"  {name:8s} {r['params']:9,d} " + " ".join(f"{100 * r['test']['acc_by_task'][f]:9.1f}%" for f in families)
          + f" {100 * r['test']['acc']:6.1f}% {100 * r['heldout']['acc']:8.1f}%")

# %% Step 5: what the numbers allow one to say, paired by prompt (1 = right, 0 = wrong).
print("\nStep 5: verdicts (paired by prompt, 95 % intervals)")
right = {split: {name: [float(ok) for ok in r[split]["correct"]] for name, r in rows.items()}
         for split in ("test", "heldout")}
claim("the teacher is right more often than its training labels", right["test"]["teacher"], label_acc, ">",
      by_prompt(f"teacher test accuracy − label accuracy ({100 * label_acc:.1f} %)", args.seed, "this teacher"), scale=100,
      unit="points", fast=args.fast)
claim("the teacher is right more often than a student trained the same way", right["test"]["teacher"],
      right["test"]["student"], ">", by_prompt("teacher − student, test accuracy", args.seed, "this teacher and student"),
      scale=100, unit="points", fast=args.fast)
claim("the teacher is right more often than the student on held-out cases", right["heldout"]["teacher"],
      right["heldout"]["student"], ">", by_prompt("teacher − student, held-out accuracy", args.seed,
                                                  "this teacher and student"), scale=100, unit="points", fast=args.fast)
print()

# %%
print("Check yourself")
print("  1. How can the teacher be right more often than the labels it was trained on?")
print("  2. Why must the teacher clearly beat the student before distillation is worth trying?")
print("  3. The held-out cases have the same size as the training cases. What does a model need to have")
print("     learned to get them right, when it never saw one of them?")
