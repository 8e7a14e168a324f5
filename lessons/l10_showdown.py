# %% [markdown]
"""Lesson 10 — the showdown: Kim & Rush (2016) in miniature, decided by seeds, not by one run.

Which method should I use, and what does each cost? One experiment: the same student preset, the same
budget (steps x sequences), the same never-trained-on test set, for

    gt                 the baseline: SFT on the ground-truth answers (40 % of them wrong)
    word_kd            token-level KD: the teacher's distribution at every answer position (Hinton et
                       al. 2015), stored once (k = V, lesson 7), T and α chosen on a validation slice
    seq_kd             sequence-level KD: SFT on the teacher's greedy answers  u = teacher(s)
    seq_kd_beam        the same on the teacher's beam-search answers (length-normalised)
    seq_kd+word        token-level KD on the teacher's answers (the combination)
    seq_inter          SFT on the teacher's beam candidate whose ANSWER is closest to the ground truth
    seq_kd_unlabelled  SFT on the teacher's answers to prompts that never had a label

Kim & Rush found, for translation: seq-KD beats word-KD and the baseline; the seq-KD student's greedy
output is nearly as good as its beam output (it learned one mode); the combination and seq-inter help
further. This lesson tests each claim on this run and prints the verdict the seeds allow: the mean paired
difference, its 95 % interval, and "not separable" when the interval holds 0. Two more things to look at:
the learning curves (a fixed budget measures speed; the curve shows where each method is heading), and
the data table, which puts the teacher's samples at T = 1 next to its greedy answers: token-level KD
copies the distribution the samples come from, sequence-level KD the greedy answer.

Run:  python -m lessons.l10_showdown       (the main job, `minikd`, reusing every cached stage; 3 seeds)
      --fast: the quick profile in seconds (tiny models: the verdicts there mean nothing)
      --full: also the beam-based methods (seq_kd_beam, seq_inter) and every method at 4x the budget;
      --seeds 5: the README's run (5 seeds, --full)
"""

# %%
from lessons import lesson_parser
from lessons.kit import run_main_job
from minikd.machinery import rendering
from minikd.verdict import say

parser = lesson_parser(__doc__, "the quick profile", seed=False)
parser.add_argument("--seeds", type=int, default=None, help="seeds per method (default 3; giving it means --full)")
parser.add_argument("--full", action="store_true", help="every method, and the plateau check (the README's run)")
args = parser.parse_args()

# %% Step 1: run (or reload from runs/) the whole experiment: the teacher, its data, every student.
results = run_main_job(args.fast, args.device, args.seeds, args.full)

# %% Step 2: how fast each method learns, and where it is heading.
print("\nStep 2: learning curves — test accuracy along each student's run (mean over seeds)")
print(rendering.curve_chart(results))
print(rendering.curve_table(results))
for m in results["methods"]:
    print(f"  {m:18s} reaches {rendering.REACH:.0%} of the teacher at step: "
          f"{rendering.reach_text(rendering.reach_steps(results, m))}")

# %% Step 3: Kim & Rush's claims, each decided by this run's seeds.
print("\nStep 3: the claims, decided by the seeds (paired differences, 95 % intervals)")
said = [say(c) for c in rendering.claims(results)]

# %% Step 4: what each student had to read (seed 0): teacher text, or teacher text and distributions.
print("\nStep 4: what each student read (the teacher is never in memory while a student trains)")
for m in results["methods"]:
    metrics = results["students"][f"{m}-seed{results['seeds'][0]}"]["metrics"]
    print(f"  {m:18s} {rendering.stored_signal(metrics)}")

# %%
print("\nCheck yourself")
print("  1. Kim & Rush found a seq-KD student's greedy answer about as good as its beam answer. Why would")
print("     that be, and what does this run's verdict say?")
print("  2. Compare the teacher's T = 1 samples with its greedy answers in the data table. Which of the two")
print("     does word-level KD copy, and which does sequence-level KD copy?")
print("  3. Why can a fixed step budget and a 4x budget give different verdicts?")
