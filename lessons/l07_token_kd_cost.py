# %% [markdown]
"""Lesson 7 — what token-level KD costs: the teacher online or stored offline; bytes, time and memory.

Lesson 6 trained a student on the teacher's whole distribution at every answer position (the soft
targets of Hinton, Vinyals & Dean 2015). That signal has to reach the student at every step:

  - online: the teacher runs next to the student on every batch (eval mode, no gradient). Its weights
    sit in memory and its forward pass is paid at every step;
  - offline: the teacher runs ONCE over the training set and its top-k token ids and log-probs are
    stored (k = 8 here, fp16 log-probs, int16 ids, with k, T and the tokenizer fingerprint recorded);
    the student then trains from the store with no teacher loaded (minikd/word_kd.py). The probability
    mass OUTSIDE the top k is dropped: the k stored probabilities are renormalised to sum to 1 and the
    KL is taken over those k tokens. With k = V nothing is dropped and offline equals online.

Kim & Rush (2016, "Sequence-Level Knowledge Distillation") weigh word-level KD against sequence-level
KD partly on this cost: with long answers and a large vocabulary every position carries a distribution
over the whole vocabulary, so storage, transfer and training cost grow together, while sequence-level
KD (lesson 8) stores only the teacher's text. Here each cost is measured on our data
(minikd/kd_cost.py), and every statement about it is a verdict computed from the measurement.

What to look at:
  1. the top-k store: its layout, how much of the teacher's probability the top k hold (drawn against
     k), and whether with k = V the offline loss equals the online loss;
  2. an online and an offline student, same seed, same batches: accuracy and distance to the teacher;
  3. bytes per example: full logits vs top-k vs the text, measured and computed, and what a modern
     LLM's vocabulary would make of the same answers;
  4. time per optimizer step (repeats paired: same batch, same moment), the teacher signal each step
     reads, the teacher weights it holds, and on CUDA the memory the step allocates at its peak.

Run:  python -m lessons.l07_token_kd_cost        (--fast: tiny models, seconds)
The top-k store is written under runs/<profile>/; the chart also as a PNG when matplotlib is installed.

"""

# %%
import math
import tempfile
import time
from pathlib import Path

import torch

from lessons import lesson_parser
from lessons.kit import draw, get_profile, get_teacher, load_split, profile_dir, score_against_teacher, train_student, word_kd_choice
from minikd.charts import markdown_table
from minikd.data import SFTData
from minikd.kd_cost import step_costs, storage_costs
from minikd.model import GPT
from minikd.runtime import get_device
from minikd.tokenizer import Tokenizer
from minikd.verdict import by_prompt, check, claim
from minikd.word_kd import build_topk_store, load_topk_store, teacher_topk, topk_mass, topk_objective, word_kd_objective

args = lesson_parser(__doc__, "tiny models, few steps").parse_args()
profile = get_profile("quick" if args.fast else "default")
tok = Tokenizer.default()
train_set, test_set = load_split("train", profile, tok), load_split("test", profile, tok)
device = get_device(args.device)
teacher, _ = get_teacher(profile, device=args.device, seed=args.seed)
teacher.to(device)
chosen, _ = word_kd_choice(profile, device=args.device)  # lesson 6's T and alpha (the showdown's sweep)
T, alpha = chosen["temperature"], chosen["alpha"]
print(f"\nT = {T:g}, alpha = {alpha:g}: chosen on held-back training prompts (lesson 6, step 6)")
K = 8  # the store keeps the teacher's 8 most likely tokens per answer position
N_MASS = 256  # training examples whose answer positions the top-k mass curve averages over
FAR = 10  # "far larger": at least this many times


# %% Step 1: run the teacher once over the training set and store its top K; show what the file holds.
def mb(n: float) -> str:
    return f"{n / 1e6:,.2f} MB"


store_path = profile_dir(profile) / f"teacher_top{K}_T{T:g}.pt"
t0 = time.perf_counter()
build_topk_store(teacher, train_set, tok.pad_id, K, T, store_path, tok.fingerprint)
store_seconds = time.perf_counter() - t0
store = load_topk_store(store_path, expect_fingerprint=tok.fingerprint, expect_examples=train_set)
mass = topk_mass(store)
print(f"\nStep 1: the teacher's top {K} at T = {T:g}, stored once: {store_path.name} ({mb(store_path.stat().st_size)}, "
      f"built in {store_seconds:.1f} s: one teacher pass over the {len(train_set)} training examples)")
print(f"  ids {tuple(store['ids'].shape)} {store['ids'].dtype}, log-probs {tuple(store['logprobs'].shape)} "
      f"{store['logprobs'].dtype}, k {store['k']}, T {store['temperature']:g}, vocab {store['vocab_size']}, "
      f"{store['n_examples']} examples, tokenizer {store['fingerprint'][:12]}...")
print(f"  the top {K} hold {100 * mass:.2f}% of the teacher's probability on average; the other "
      f"{100 * (1 - mass):.2f}% is dropped and the {K} are renormalised to sum to 1")

# %% How much the teacher's k most likely tokens hold, for k = 1, 2, 4, ..., V; drawn against log2 k.
V, few = teacher.config.vocab_size, train_set[:N_MASS]
_, logprobs = teacher_topk(teacher, few, tok.pad_id, V, T, torch.float32)  # (N, V), most likely first
cumulative = logprobs.exp().cumsum(dim=-1).mean(dim=0)  # (V,) mass of the top 1, 2, ..., V
ks = sorted({*(2 ** i for i in range(int(math.log2(V)) + 1)), V})
mass_by_k = {k: float(cumulative[k - 1]) for k in ks}
print(f"  how much the top k hold, against log2 k ({logprobs.shape[0]} answer positions of {len(few)} "
      f"training examples):")
draw(profile_dir(profile) / "l07_topk_mass_vs_k.png",
     {f"mass in the top k at T = {T:g}": ([math.log2(k) for k in ks], [100 * m for m in mass_by_k.values()])},
     "log2 k", "% of the probability", "probability the teacher's top k hold")

# %% With k = V and fp32 log-probs nothing is dropped: the offline loss of a batch is the online loss.
torch.manual_seed(args.seed)
fresh = GPT(profile.student_config(tok.vocab_size)).to(device).eval()
with tempfile.TemporaryDirectory() as tmp:
    full = build_topk_store(teacher, train_set[:16], tok.pad_id, tok.vocab_size, T, Path(tmp) / "full.pt",
                            tok.fingerprint, logprob_dtype=torch.float32)
batch = {k: v.to(device) for k, v in SFTData(train_set[:16], tok.pad_id, 8, seed=args.seed).get_batch(0).items()}
with torch.no_grad():
    full_online = float(word_kd_objective(teacher, T, alpha)(fresh, batch))
    full_offline = float(topk_objective(full, T, alpha)(fresh, batch))
check(f"with k = V = {tok.vocab_size} (nothing dropped, fp32) the offline loss equals the online loss",
      math.isclose(full_offline, full_online, rel_tol=1e-5, abs_tol=1e-6),
      f"one batch of 8: offline {full_offline:.5f}, online {full_online:.5f}", fast=args.fast)

# %% Step 2: an online and an offline student (same seed, same batches); scored; the verdicts.
objectives = {"online word-KD": word_kd_objective(teacher, T, alpha), f"offline top-{K} KD": topk_objective(store, T, alpha)}
print(f"\nStep 2: an online and an offline student, {profile.student_steps} steps of {profile.batch_size} "
      f"sequences each, same seed and batches")
students = {}
for name, objective in objectives.items():
    print(f"  {name}:")
    students[name], _ = train_student(profile, tok, train_set, args.seed, args.device, objective=objective)
results = score_against_teacher({"teacher (reference)": teacher, **students}, teacher, tok, test_set)
print(f"\n  test split ({len(test_set)} prompts), greedy decoding")
print(markdown_table(["model", "test acc", "KL(teacher||model)/token"],
                     [[n, f"{100 * r['acc']:.1f}%", f"{r['kl_to_teacher']:.3f}"] for n, r in results.items()]))
on, off = results["online word-KD"], results[f"offline top-{K} KD"]
claim(f"the offline top-{K} student is as accurate as the online one", off["correct"], on["correct"], "≈",
      by_prompt("offline − online", args.seed, "these two students"), scale=100, unit="points", fast=args.fast)
claim(f"the offline top-{K} student is as close to the teacher as the online one", off["kl_by_prompt"],
      on["kl_by_prompt"], "≈", by_prompt("offline − online, KL(teacher||student) per answer token", args.seed,
                                         "these two students"), unit="nats", fast=args.fast)

# %% Step 3: bytes per example of every kind of teacher signal; the verdicts on how they compare.
storage = storage_costs(train_set, tok.vocab_size, ks=(1, K, 20), tokenizer=tok, store_path=store_path)
print(f"\nStep 3: bytes per training example ({len(train_set)} examples, V = {tok.vocab_size})")
print(markdown_table(["stored per example", "bytes/example", "whole set", "how"],
                     [[r["what"], f"{r['bytes_per_example']:,.0f}", mb(r["total_bytes"]), r["how"]] for r in storage]))
big_v = 128_256  # a modern LLM's vocabulary (Llama 3), same answers: computed, not measured
big = {r["what"]: r["bytes_per_example"] for r in storage_costs(train_set, big_v, ks=(K,), tokenizer=tok)}
print(f"  With a {big_v:,}-token vocabulary the same answers would need {big['full logits fp16'] / 1e6:.1f} MB "
      f"per example as fp16 logits (computed), top-{K} {big[f'top-{K} (ids + fp16 log-probs)']:,.0f} B "
      f"(4-byte ids), the text {big['sequence text (seq-KD)']:.0f} B.")
per = {r["what"]: r["bytes_per_example"] for r in storage}
text, topk, full = per["sequence text (seq-KD)"], per[f"top-{K} (ids + fp16 log-probs)"], per["full logits fp16"]
check(f"storing the teacher's top {K} is far larger (at least {FAR}x) than storing its text", topk >= FAR * text,
      f"{topk:,.0f} B vs {text:,.0f} B per example: {topk / text:.0f}x", fast=args.fast)
check(f"storing full fp16 logits is far larger (at least {FAR}x) than the top {K}", full >= FAR * topk,
      f"{full:,.0f} B vs {topk:,.0f} B per example: {full / topk:.0f}x", fast=args.fast)


# %% Step 4: time per step, paired by repeat; the teacher signal and weights each method holds; the verdicts.
def print_costs(costs: list[dict], device, repeats: int, batch_size: int) -> None:
    base = costs[0]["ms_per_step"]
    print(f"\nStep 4: one optimizer step, batch {batch_size}, median of {repeats} repeats on {device} "
          f"(each repeat: the same batch for all three, in a rotating order)")
    rows = [[r["method"], f"{r['ms_per_step']:.1f}", f"{r['ms_per_step'] / base:.2f}x",
             mb(r["teacher_signal_bytes"]), mb(r["teacher_weight_bytes"]),
             mb(r["step_peak_bytes"]) if r["step_peak_bytes"] is not None else f"n/a ({device.type})"]
            for r in costs]
    print(markdown_table(["method", "ms/step", "vs SFT", "teacher signal/step", "teacher weights",
                          "step peak memory"], rows))
    print("  teacher signal/step: the teacher tensor the loss reads each step (online: logits B x T x V fp32;")
    print(f"  offline: top-{K} ids + log-probs B x T x k as stored). step peak memory: what the step allocates")
    print("  at its peak (activations, gradients, teacher logits), measured on CUDA only: CPU keeps no counter.")


repeats = 5 if args.fast else 20
data = SFTData(train_set, tok.pad_id, profile.batch_size, seed=args.seed)
config = profile.student_config(tok.vocab_size)
costs = step_costs(lambda: GPT(config), teacher, store, [data.get_batch(i) for i in range(repeats + 1)],
                   T, alpha, device=str(device), seed=args.seed)  # batch 0 warms up
print_costs(costs, device, repeats, profile.batch_size)
sft, on, off = costs
extra = (on["ms_per_step"] - off["ms_per_step"]) * profile.student_steps / 1000
print(f"  online − offline, median per step x {profile.student_steps} training steps: {extra:+.1f} s; "
      f"the store was built once in {store_seconds:.1f} s (step 1)")
claim(f"offline top-{K} KD is cheaper per step than online word-KD", off["ms_by_repeat"], on["ms_by_repeat"], "<",
      what="offline − online, ms per step, paired by repeat", unit="ms", fast=args.fast)
claim("online word-KD costs more per step than plain SFT (it runs the teacher too)", on["ms_by_repeat"],
      sft["ms_by_repeat"], ">", what="online − SFT, ms per step, paired by repeat", unit="ms", fast=args.fast)
check("offline KD reads a smaller teacher signal per step than online KD",
      off["teacher_signal_bytes"] < on["teacher_signal_bytes"],
      f"{mb(off['teacher_signal_bytes'])} (k = {K} per position) vs {mb(on['teacher_signal_bytes'])} "
      f"(V = {tok.vocab_size} per position), and no teacher weights vs {mb(on['teacher_weight_bytes'])}",
      fast=args.fast)

# %%
print("\nCheck yourself")
print(f"  1. What does the top-{K} store drop, how does the loss handle it, and when is offline = online?")
print("  2. What does each kind of teacher signal cost on disk — full logits, top-k, text — and why?")
print("  3. When does offline top-k KD save time per step over online KD, and what does it pay once instead?")
