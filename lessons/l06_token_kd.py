"""Lesson 6 — token-level (word-level) KD: the teacher's whole distribution at every answer position.

The card, on word-level KD:

    "At each position the student matches the teacher's next-token distribution:

        prompt + previous tokens
        -> teacher distribution over vocabulary
        -> student distribution over vocabulary
        -> KL or cross-entropy between distributions

    It transfers 'dark knowledge' well, but for long answers every position carries a full-vocabulary
    distribution: with long answers and a large vocabulary, storage, transfer and training cost grow
    at once."

The loss (minikd.losses.kd_loss), over the answer positions only — the same mask as SFT (lesson 4):

    (1 - alpha) * CE(student, ground-truth token) + alpha * T^2 * KL(softmax(z_t / T) || softmax(z_s / T))

alpha sets how much of the pull comes from the teacher (alpha = 1: only the teacher; 0.5: half from the
label, and 40 % of our labels are wrong). T softens (T > 1) or sharpens (T < 1) the teacher's
distribution before it is matched; the T^2 factor keeps the soft term's gradient comparable across T
(step 5). Which T and alpha? Not a guess and never the test set: every setting of a small grid trains a
student on the training set minus its last prompts, and the one most accurate on those held-back
prompts is used here AND in the showdown (lesson 10) — the same cached sweep (minikd.showdown).

Two ways to bring the teacher's distribution to the student (minikd/word_kd.py):
  - online: the teacher runs next to the student on every batch (eval mode, no gradient);
  - offline: the teacher's top-k token ids and log-probs are stored once (k = 8 here, fp16 log-probs,
    int16 ids, with k, T and the tokenizer fingerprint recorded), and the student trains from the store
    with no teacher loaded. The probability mass OUTSIDE the top k is dropped: the k stored probabilities
    are renormalised to sum to 1 and the KL is taken over those k tokens. With k = V it equals online.

What to look at:
  1. one real test example, with its answer positions drawn under the tokens;
  2. a baseline student trained on the ground-truth answers alone;
  3. the picture, position by position: teacher's top tokens, student's top tokens, the KL between them;
  4. temperature: the teacher's entropy at T = 0.5 ... 8;
  5. T^2: without it the gradient of the soft term falls about as 1/T^2 (or faster) from T = 1 to 8;
     with it, it stays roughly flat for small logits and settles to a constant at high T for ours;
  6. online word-KD; 7. offline word-KD from a top-k store (and k = V giving exactly the online loss);
  8. accuracy and distance to the teacher of the three students;
  9. what it costs: bytes per example, time per step, memory — the card's "storage, transfer and
     training cost", measured.

Run:  python -m lessons.l06_token_kd        (--fast: tiny models, seconds)

Check yourself: how do the targets of word-level KD and sequence-level KD differ?
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from minikd.common import get_device
from minikd.data import IGNORE_INDEX, SFTData, collate
from minikd.evaluate import accuracy, answer_nll
from minikd.losses import forward_kl, log_softmax_t
from minikd.model import GPT
from minikd.profiles import get_profile, get_teacher, load_split, profile_dir, train_model
from minikd.report import markdown_table
from minikd.showdown import word_kd_choice
from minikd.tokenizer import Tokenizer
from minikd.train import sft_objective
from minikd.word_kd import (build_topk_store, kl_grad_norms, load_topk_store, mean_kl, run_teacher, step_costs,
                            storage_costs, topk_mass, topk_objective, word_kd_objective)

K = 8  # the top-k store of step 7 keeps the teacher's 8 most likely tokens per position


def show(tok, token_id: int) -> str:
    """A token as the reader sees it: specials by name, others quoted (so spaces are visible)."""
    text = tok.decode([token_id])
    return text if text.startswith("<|") else repr(text)


def top_tokens(tok, logp: torch.Tensor, n: int = 3) -> str:
    """The n most likely tokens of one distribution (V,) as "'4'  93% '5'   5% ..."."""
    probs, ids = logp.exp().topk(n)
    return " ".join(f"{show(tok, i):>7s} {100 * p:3.0f}%" for p, i in zip(probs.tolist(), ids.tolist()))


def entropy(logp: torch.Tensor) -> torch.Tensor:
    """H(p) = -sum_v p(v) log p(v) in nats, (..., V) -> (...)."""
    return -(logp.exp() * logp).sum(-1)


def mb(n: float) -> str:
    return f"{n / 1e6:,.2f} MB"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", action="store_true", help="tiny models, few steps (the tests use it)")
    parser.add_argument("--task", default="sort", help="task family of the example walked through (step 1)")
    parser.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, mps")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    profile = get_profile("quick" if args.fast else "default")
    device = get_device(args.device)
    tok = Tokenizer.default()
    train_set, test_set = load_split("train", profile, tok), load_split("test", profile, tok)
    teacher, _ = get_teacher(profile, device=args.device, seed=args.seed)
    teacher.to(device)
    chosen, sweep = word_kd_choice(profile, device=args.device)  # cached: the showdown's own sweep (step 6)
    TEMPERATURE, ALPHA = chosen["temperature"], chosen["alpha"]
    student_config = profile.student_config(tok.vocab_size)

    # Step 1: one real example, from the test split (no model trained on it).
    example = next((r for r in test_set if r["task"] == args.task), test_set[0])
    print(f"\nStep 1: one test example ({example['task']}): the positions where KD is computed")
    print(tok.draw_mask(example["ids"], example["mask"]))
    batch = collate([example], tok.pad_id)  # inputs / targets (1, T)
    inputs, targets = batch["inputs"].to(device), batch["targets"].to(device)
    answer_at = (targets[0] != IGNORE_INDEX).nonzero().flatten().tolist()  # answer positions of the example

    # Step 2: the baseline — a student trained on the ground-truth answers alone (masked SFT).
    print(f"\nStep 2: baseline student ({profile.student_preset} preset), masked SFT on {len(train_set)} "
          f"ground-truth examples, {profile.student_steps} steps")
    gt_student, _ = train_model(student_config, train_set, profile.student_steps, profile,
                                lr=profile.student_lr, seed=args.seed, objective=sft_objective,
                                device=args.device, tok=tok)

    # Step 3: the card's picture, position by position.
    with torch.no_grad():
        t_logits = run_teacher(teacher, inputs)[0]  # (T, V)
        s_logits = gt_student(inputs)[0]  # (T, V)
    t_logp, s_logp = log_softmax_t(t_logits), log_softmax_t(s_logits)  # (T, V) at T = 1
    kl_at = forward_kl(t_logits, s_logits)  # (T,) KL(teacher || student) at every position
    print("\nStep 3: prompt + previous tokens -> teacher distribution -> student distribution -> KL")
    print(f"  {'...previous tokens':>18s} {'next':>7s} | {'teacher top 3':^38s} | {'GT student top 3':^38s} | KL(t||s)")
    for pos in answer_at:
        before = tok.decode(inputs[0, max(0, pos - 3):pos + 1].tolist())  # the last 4 tokens the models read
        print(f"  {before!r:>18s} {show(tok, int(targets[0, pos])):>7s} | {top_tokens(tok, t_logp[pos])} | "
              f"{top_tokens(tok, s_logp[pos])} | {kl_at[pos]:7.3f}")
    print(f"  sum of KL over the {len(answer_at)} answer positions: {kl_at[answer_at].sum():.3f} nats. "
          "Word-level KD pushes every one of these toward 0;")
    print("  SFT sees only the 'next token' column — one id per position, not a distribution.")

    # Step 4: temperature softens the teacher's distribution; its entropy shows how much.
    print("\nStep 4: the teacher's distribution at temperature T (averaged over the example's answer positions)")
    print(f"  {'T':>4s} {'entropy (nats)':>15s} {'top-1 prob':>11s} {'mass outside top-1':>19s}")
    entropy_by_t = {}
    for T in (0.5, 1.0, 2.0, 4.0, 8.0):
        logp = log_softmax_t(t_logits[answer_at], T)  # (n, V)
        entropy_by_t[T] = float(entropy(logp).mean())
        top1 = float(logp.exp().max(-1).values.mean())
        print(f"  {T:4.1f} {entropy_by_t[T]:15.3f} {top1:11.3f} {1 - top1:19.3f}")
    uniform = float(torch.log(torch.tensor(float(tok.vocab_size))))
    print(f"  Uniform over all {tok.vocab_size} tokens would be {uniform:.3f} nats; at T = 8 the teacher is at "
          f"{100 * entropy_by_t[8.0] / uniform:.0f}% of that, at T = {TEMPERATURE:g} at "
          f"{100 * entropy_by_t[TEMPERATURE] / uniform:.0f}%.")
    print(f"  T = {TEMPERATURE:g} is used below: the setting that did best on held-back prompts (step 6).")

    # Step 5: why T^2 — the size of the soft term's gradient at each temperature, for two kinds of logits.
    temps = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
    g = torch.Generator().manual_seed(args.seed)
    small_t, small_s = (torch.randn(1, len(answer_at), tok.vocab_size, generator=g) for _ in range(2))
    toy = kl_grad_norms(small_s, small_t, torch.zeros(1, len(answer_at), dtype=torch.long), temps)
    grads = kl_grad_norms(s_logits[None], t_logits[None], targets, temps)
    spread = float((t_logits[answer_at].max(-1).values - t_logits[answer_at].min(-1).values).mean())
    print("\nStep 5: gradient norm of the soft term (alpha = 1) w.r.t. the student's logits, with and without T^2")
    print(f"  {'':4s} {'small logits (random, std 1)':^29s} | {'teacher vs GT student, step-1 example':^38s}")
    print(f"  {'T':>4s} {'with T^2':>14s} {'without':>14s} | {'with T^2':>18s} {'without':>19s}")
    for a, b in zip(toy, grads):
        print(f"  {a['T']:4.0f} {a['with_t2']:14.4f} {a['without_t2']:14.5f} | "
              f"{b['with_t2']:18.4f} {b['without_t2']:19.5f}")

    def factor(rows, key, lo=1.0, hi=8.0):  # largest / smallest norm over lo <= T <= hi
        norms = [r[key] for r in rows if lo <= r["T"] <= hi]
        return max(norms) / min(norms)

    def settles(rows):  # the first T from which the norm is within 25% of its value at the highest T
        return next(r["T"] for r in rows if abs(r["with_t2"] / rows[-1]["with_t2"] - 1) <= 0.25)

    print(f"  From T = 1 to T = 8, without T^2 the norm falls by a factor {factor(toy, 'without_t2'):.0f} (small "
          f"logits) and {factor(grads, 'without_t2'):.0f} (teacher vs student); 1/T^2 would be 64.")
    print(f"  With T^2 it varies by a factor {factor(toy, 'with_t2'):.1f} (small logits) and "
          f"{factor(grads, 'with_t2'):.1f} (teacher vs student), and it settles (within 25% of its T = 32 value)")
    print(f"  from T = {settles(toy):g} (small logits) and T = {settles(grads):g} (teacher vs student: the "
          f"teacher's logits span {spread:.0f} on average).")
    print("  Why: T^2 is exact in the high-temperature limit (T large next to the spread of the logits, where")
    print("  softmax(z/T) ~ (1 + z/T) / V): there the KL's gradient is ~ (z_s - z_t) / (V T^2). Either way,")
    print("  without T^2 the soft term fades next to the hard CE term as T grows; with it, the soft term keeps")
    print("  its size and alpha alone sets the balance.")

    # Step 6: T and alpha, chosen on held-back training prompts; then online word-level KD with them.
    print(f"\nStep 6: T and alpha by validation accuracy ({profile.n_val} held-back training prompts, "
          f"{profile.student_steps} steps each); the showdown uses the same choice")
    print(markdown_table(["T", "alpha", "validation accuracy"],
                         [[f"{r['temperature']:g}", f"{r['alpha']:g}", f"{100 * r['val_acc']:.1f}%"
                           + ("  <- chosen" if (r["temperature"], r["alpha"]) == (TEMPERATURE, ALPHA) else "")]
                          for r in sweep]))
    print(f"  online word-KD (alpha {ALPHA}, T {TEMPERATURE}): the teacher runs on every batch")
    online, _ = train_model(student_config, train_set, profile.student_steps, profile,
                            lr=profile.student_lr, seed=args.seed,
                            objective=word_kd_objective(teacher, TEMPERATURE, ALPHA), device=args.device, tok=tok)

    # Step 7: offline word-level KD — store the teacher's top-k once, then train with no teacher.
    store_path = profile_dir(profile) / f"teacher_top{K}_T{TEMPERATURE:g}.pt"
    t0 = time.perf_counter()
    build_topk_store(teacher, train_set, tok.pad_id, K, TEMPERATURE, store_path, tok.fingerprint)
    store_seconds = time.perf_counter() - t0
    store = load_topk_store(store_path, expect_fingerprint=tok.fingerprint, expect_examples=train_set)
    mass = topk_mass(store)
    print(f"\nStep 7: offline word-KD from {store_path.name} ({mb(store_path.stat().st_size)}, built in "
          f"{store_seconds:.1f} s: one teacher pass over the {len(train_set)} training examples)")
    print(f"  ids {tuple(store['ids'].shape)} {store['ids'].dtype}, log-probs {tuple(store['logprobs'].shape)} "
          f"{store['logprobs'].dtype}, k {store['k']}, T {store['temperature']}, vocab {store['vocab_size']}, "
          f"{store['n_examples']} examples, tokenizer {store['fingerprint'][:12]}...")
    print(f"  the top {K} hold {100 * mass:.2f}% of the teacher's probability at T {TEMPERATURE} on average; "
          f"the other {100 * (1 - mass):.2f}% is dropped and the {K} are renormalised to sum to 1")
    # k = V keeps everything: the offline loss is then the online loss (fp32 store, to compare exactly).
    with tempfile.TemporaryDirectory() as tmp:
        few = train_set[:16]
        full = build_topk_store(teacher, few, tok.pad_id, tok.vocab_size, TEMPERATURE, Path(tmp) / "full.pt",
                                tok.fingerprint, logprob_dtype=torch.float32)
        b = {k: v.to(device) for k, v in SFTData(few, tok.pad_id, 8, seed=args.seed).get_batch(0).items()}
        with torch.no_grad():
            on = float(word_kd_objective(teacher, TEMPERATURE, ALPHA)(gt_student, b))
            off = float(topk_objective(full, TEMPERATURE, ALPHA)(gt_student, b))
    print(f"  check: with k = V = {tok.vocab_size} the offline loss of a batch is {off:.5f}, "
          f"the online loss {on:.5f}")
    offline, _ = train_model(student_config, train_set, profile.student_steps, profile,
                             lr=profile.student_lr, seed=args.seed,
                             objective=topk_objective(store, TEMPERATURE, ALPHA), device=args.device, tok=tok)

    # Step 8: the three students side by side.
    students = {"ground truth (SFT)": gt_student, "online word-KD": online, f"offline top-{K} KD": offline}
    print(f"\nStep 8: the three students, same preset, same {profile.student_steps} steps of "
          f"{profile.batch_size} sequences; test split ({len(test_set)} prompts), greedy decoding")
    results = {}
    for name, model in {"teacher (reference)": teacher, **students}.items():
        acc = accuracy(model, tok, test_set)
        results[name] = {"acc": acc["acc"], "acc_by_task": acc["acc_by_task"],
                         "kl_to_teacher": mean_kl(teacher, model, test_set, tok.pad_id),
                         "nll_gt": answer_nll(model, test_set, tok.pad_id)}
    families = list(results["teacher (reference)"]["acc_by_task"])
    header = ["model", *families, "test acc", "KL(teacher||model)/token", "NLL of test answers"]
    rows = [[name, *[f"{100 * r['acc_by_task'][f]:.1f}%" for f in families], f"{100 * r['acc']:.1f}%",
             f"{r['kl_to_teacher']:.3f}", f"{r['nll_gt']:.3f}"] for name, r in results.items()]
    print(markdown_table(header, rows))
    print("  KL to the teacher on the test answers: word-KD students are trained to shrink exactly this.")
    with torch.no_grad():
        kls = {name: forward_kl(t_logits, m(inputs)[0])[answer_at] for name, m in students.items()}
    print("  KL per answer position of the step-1 example:")
    for name, kl in kls.items():
        print(f"    {name:20s} " + " ".join(f"{v:5.2f}" for v in kl.tolist()) + f"  | sum {kl.sum():.2f}")

    # Step 9: what it costs — storage, training time, memory (the card's three costs, measured here).
    print(f"\nStep 9a: bytes per training example ({len(train_set)} examples, mean "
          f"{store['ids'].shape[0] / len(train_set):.1f} answer positions, V = {tok.vocab_size})")
    storage = storage_costs(train_set, tok.vocab_size, ks=(1, K, 20), tokenizer=tok, store_path=store_path)
    print(markdown_table(["stored per example", "bytes/example", "whole set", "how"],
                         [[r["what"], f"{r['bytes_per_example']:,.0f}", mb(r["total_bytes"]), r["how"]]
                          for r in storage]))
    big_v = 128_256  # a modern LLM's vocabulary (Llama 3), same answers: computed, not measured
    big = {r["what"]: r for r in storage_costs(train_set, big_v, ks=(K,), tokenizer=tok)}
    print(f"  With a {big_v:,}-token vocabulary the same answers would need "
          f"{big['full logits fp16']['bytes_per_example'] / 1e6:.1f} MB per example as fp16 logits "
          f"(computed), top-{K} {big[f'top-{K} (ids + fp16 log-probs)']['bytes_per_example']:,.0f} B, the text "
          f"{big['sequence text (seq-KD)']['bytes_per_example']:.0f} B.")

    n_steps = 2 if args.fast else 5
    costs = step_costs(lambda: GPT(student_config), teacher, store, train_set,
                       tok.pad_id, batch_size=profile.batch_size, steps=n_steps, temperature=TEMPERATURE,
                       alpha=ALPHA, device=str(device), seed=args.seed)
    base = costs[0]["ms_per_step"]
    print(f"\nStep 9b: one optimizer step, batch {profile.batch_size}, median of {n_steps} steps on {device} "
          f"(same batches for all three)")
    rows = [[r["method"], f"{r['ms_per_step']:.0f}", f"{r['ms_per_step'] / base:.2f}x",
             mb(r["teacher_signal_bytes"]), mb(r["teacher_weight_bytes"]),
             mb(r["peak_bytes"]) if r["peak_bytes"] is not None else "n/a (CPU)"] for r in costs]
    print(markdown_table(["method", "ms/step", "vs SFT", "teacher signal/step", "teacher weights", "peak memory"],
                         rows))
    print("  teacher signal/step: the teacher tensor the loss reads each step (online: logits B x T x V fp32;")
    print(f"  offline: top-{K} ids + log-probs B x T x k as stored). Online also keeps the teacher's weights in")
    print("  memory and pays its forward pass every step; offline paid it once, when the store was built")
    print(f"  ({store_seconds:.1f} s in step 7, on {device}).")

    print("\nCheck yourself")
    print("  1. How do the targets of word-level KD and sequence-level KD differ?")
    print("     (the card's first question: what does the student see at each answer position?)")
    print(f"  2. What does the top-{K} store drop, how does the loss handle it, and when is offline = online?")
    print("  3. Why is the KL multiplied by T^2, and what would happen at T = 8 without it?")
    return {"acc": {name: r["acc"] for name, r in results.items()},
            "kl_to_teacher": {name: r["kl_to_teacher"] for name, r in results.items()},
            "entropy_by_t": entropy_by_t, "grad_norms": grads, "grad_norms_small_logits": toy, "topk_mass": mass,
            "kv_online": on, "kv_offline": off, "storage": storage, "step_costs": costs,
            "store_path": str(store_path), "temperature": TEMPERATURE, "alpha": ALPHA, "word_kd_sweep": sweep}


if __name__ == "__main__":
    main()
