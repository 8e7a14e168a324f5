"""Lesson 2 — a GPT from scratch: the teacher and the student.

Distillation needs two models of the same kind and different sizes. The card puts it as
"the large model writes a complete answer" and "a small dense model is SFT-ed on it"; here both are the
same hand-written GPT (minikd/model.py) built from two presets, `teacher` and `student`.

What to look at:
  1. the two presets side by side: layers, width, parameters, training FLOPs per token;
  2. one forward pass: ids (B, T) in, logits (B, T, vocab) out — a distribution at EVERY position,
     which is exactly what token-level KD will compare (a model that returned only the last position
     could not be distilled token by token);
  3. attention, written out: the causal mask and softmax(q k^T / sqrt(d)) v, next to PyTorch's fused
     kernel, and the two agree;
  4. the KV cache: decoding one token at a time with the cache gives the same logits as re-reading the
     whole sequence, at a fraction of the work.

Run:  python -m lessons.l02_model          (--fast: the same steps on a tiny vocabulary)
"""

from __future__ import annotations

import argparse
import time

import torch

from minikd.model import GPT, PRESETS, attention_fast, attention_math, get_config
from minikd.tokenizer import Tokenizer


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", action="store_true", help="tiny sizes, runs in a second (the tests use it)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)

    # Step 1: the vocabulary comes from the shipped tokenizer (lesson 1).
    tok = Tokenizer.default()
    V = tok.vocab_size
    print(f"Step 1: vocabulary of the shipped tokenizer: {V} tokens\n")

    # Step 2: the presets side by side.
    print("Step 2: presets (parameters counted once; the output layer is tied to the token embedding)")
    print(f"{'preset':8s} {'layers':>6s} {'heads':>5s} {'width':>5s} {'context':>7s} {'params':>10s} "
          f"{'train FLOPs/token':>18s}")
    sizes = {}
    for name in PRESETS:
        m = GPT(get_config(name, vocab_size=V))
        c = m.config
        sizes[name] = m.num_params()
        print(f"{name:8s} {c.n_layer:6d} {c.n_head:5d} {c.n_embd:5d} {c.block_size:7d} {m.num_params():10,d} "
              f"{m.flops_per_token():18,d}")
    print(f"-> the teacher has {sizes['teacher'] / sizes['student']:.1f}x the student's parameters\n")

    # Step 3: one forward pass on a real rendered prompt.
    model = GPT(get_config("tiny" if args.fast else "teacher", vocab_size=V)).eval()
    ids = torch.tensor([tok.render_prompt("What is 12 + 34?")])  # (1, T)
    with torch.no_grad():
        logits = model(ids)  # (1, T, V)
    print(f"Step 3: forward pass: ids {tuple(ids.shape)} -> logits {tuple(logits.shape)} "
          f"(one distribution over {V} tokens at each of the {ids.size(1)} positions)")
    probs = logits.softmax(-1)[0, -1]
    top = probs.topk(3)
    print("  untrained model, top-3 next tokens after the prompt: " + ", ".join(
        f"{tok.decode([int(i)])!r} {p:.4f}" for p, i in zip(top.values, top.indices)))
    print(f"  (close to uniform 1/V = {1 / V:.4f}: nothing is learned yet)\n")

    # Step 4: attention written out vs the fused kernel.
    T, hs = 5, 8
    q, k, v = torch.randn(1, 1, T, hs), torch.randn(1, 1, T, hs), torch.randn(1, 1, T, hs)
    scores = (q @ k.transpose(-2, -1) / hs ** 0.5)[0, 0]
    causal = torch.ones(T, T).tril().bool()
    print("Step 4: the causal mask (row = query position, 1 = may look at that key)")
    for row in causal.int().tolist():
        print("   " + " ".join(map(str, row)))
    weights = scores.masked_fill(~causal, float("-inf")).softmax(-1)
    print("  attention weights (each row sums to 1, zeros above the diagonal):")
    for row in weights.tolist():
        print("   " + " ".join(f"{w:.2f}" for w in row))
    diff = (attention_math(q, k, v, 0) - attention_fast(q, k, v, 0)).abs().max().item()
    print(f"  max |written-out math - F.scaled_dot_product_attention| = {diff:.2e}\n")

    # Step 5: the KV cache.
    n_new = 8 if args.fast else 48
    prompt = ids
    with torch.no_grad():
        t0 = time.perf_counter()
        seq = prompt
        for _ in range(n_new):  # no cache: re-read the whole sequence for every new token
            nxt = model(seq)[:, -1].argmax(-1, keepdim=True)
            seq = torch.cat([seq, nxt], dim=1)
        t_full = time.perf_counter() - t0
        t0 = time.perf_counter()
        cache = model.new_cache(1)
        last = model(prompt, cache)[:, -1]
        cached = prompt
        for _ in range(n_new):  # with the cache: feed only the newest token
            nxt = last.argmax(-1, keepdim=True)
            cached = torch.cat([cached, nxt], dim=1)
            last = model(nxt, cache)[:, -1]
        t_cache = time.perf_counter() - t0
    same = torch.equal(seq, cached)
    print(f"Step 5: greedy decoding of {n_new} tokens: same tokens with and without the KV cache: {same}")
    print(f"  time without cache {t_full * 1e3:.1f} ms, with cache {t_cache * 1e3:.1f} ms "
          "(the gap grows with length; lesson 8 measures it at batch 64)\n")

    print("Check yourself")
    print("  1. Why must forward() return logits at every position for token-level KD?")
    print("  2. Which positions may the query at position 3 attend to?")
    print("  3. What does the KV cache store, and why does it not change the result?")
    return {"params": sizes, "cache_equal": same}


if __name__ == "__main__":
    main()
