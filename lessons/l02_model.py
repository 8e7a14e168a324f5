# %% [markdown]
"""Lesson 2 — a GPT from scratch: the teacher and the student.

Distillation needs two models of the same kind and different sizes. In sequence-level KD (Kim & Rush
2016) a large model writes complete answers and a small one is fine-tuned on them; DeepSeek-AI 2025 trains
small dense models on its large reasoning model's outputs the same way. Here both are the same
hand-written GPT (minikd/model.py) built from two presets, `teacher` and `student`.

What to look at:
  1. the two presets side by side: layers, width, parameters, training FLOPs per token;
  2. one forward pass: ids (B, T) in, logits (B, T, vocab) out — a distribution at EVERY position,
     which is exactly what token-level KD will compare (a model that returned only the last position
     could not be distilled token by token);
  3. attention, written out: the causal mask and softmax(q k^T / sqrt(d)) v, next to PyTorch's fused
     kernel, and the two agree;
  4. the KV cache: decoding one token at a time with the cache gives the same tokens as re-reading the
     whole sequence, at a fraction of the work — timed here over several repeats, with a verdict.

Run:  python -m lessons.l02_model          (--fast: the same steps on a tiny model)
"""

# %%
import math
import time

import torch

from lessons import lesson_parser
from minikd.model import GPT, PRESETS, attention_fast, attention_math, get_config
from minikd.tokenizer import Tokenizer
from minikd.verdict import check, claim

args = lesson_parser(__doc__, "tiny sizes, runs in a second", device=False).parse_args()
torch.manual_seed(args.seed)

# %% Step 1: the vocabulary comes from the shipped tokenizer (lesson 1).
tok = Tokenizer.default()
V = tok.vocab_size
print(f"Step 1: vocabulary of the shipped tokenizer: {V} tokens\n")

# %% Step 2: the presets side by side.
print("Step 2: presets (parameters counted once; the output layer is tied to the token embedding)")
print(f"{'preset':8s} {'layers':>6s} {'heads':>5s} {'width':>5s} {'context':>7s} {'params':>10s} "
      f"{'train FLOPs/token':>18s}")
params = {}
for name in PRESETS:
    m = GPT(get_config(name, vocab_size=V))
    c = m.config
    params[name] = m.num_params()
    print(f"{name:8s} {c.n_layer:6d} {c.n_head:5d} {c.n_embd:5d} {c.block_size:7d} {m.num_params():10,d} "
          f"{m.flops_per_token():18,d}")
print(f"-> the teacher has {params['teacher'] / params['student']:.1f}x the student's parameters\n")

# %% Step 3: one forward pass on a real rendered prompt.
model = GPT(get_config("tiny" if args.fast else "teacher", vocab_size=V)).eval()
prompt = torch.tensor([tok.render_prompt("What is 12 + 34?")])  # (1, T)
with torch.no_grad():
    logits = model(prompt)  # (1, T, V)
print(f"Step 3: forward pass: ids {tuple(prompt.shape)} -> logits {tuple(logits.shape)} "
      f"(one distribution over {V} tokens at each of the {prompt.size(1)} positions)")
probs = logits.softmax(-1)[0, -1]  # (V,)
top = probs.topk(3)
print("  untrained model, top-3 next tokens after the prompt: " + ", ".join(
    f"{tok.decode([int(i)])!r} {p:.4f}" for p, i in zip(top.values, top.indices)))
entropy = -(probs * probs.log()).sum().item()
check("the untrained model's next-token distribution is close to uniform (nothing is learned yet): "
      "its entropy is above 95 % of the uniform one's, log V", entropy > 0.95 * math.log(V),
      f"entropy {entropy:.3f} nats = {100 * entropy / math.log(V):.1f} % of log V = {math.log(V):.3f}; "
      f"top p {top.values[0]:.4f} against 1/V = {1 / V:.4f}", fast=args.fast)
print()

# %% Step 4: attention written out (causal mask, softmax(q k^T / sqrt(d))) next to the fused kernel.
T, hs = 5, 8
q, k, v = torch.randn(1, 1, T, hs), torch.randn(1, 1, T, hs), torch.randn(1, 1, T, hs)
scores = (q @ k.transpose(-2, -1) / hs ** 0.5)[0, 0]  # (T, T)
causal = torch.ones(T, T).tril().bool()
print("Step 4: the causal mask (row = query position, 1 = may look at that key)")
for row in causal.int().tolist():
    print("   " + " ".join(map(str, row)))
weights = scores.masked_fill(~causal, float("-inf")).softmax(-1)  # (T, T)
print("  attention weights:")
for row in weights.tolist():
    print("   " + " ".join(f"{w:.2f}" for w in row))
row_err = (weights.sum(-1) - 1).abs().max().item()
above = weights[~causal].abs().max().item()
check("each row of weights sums to 1, with zeros above the diagonal", row_err < 1e-6 and above == 0,
      f"max |row sum − 1| = {row_err:.1e}, max weight above the diagonal = {above:.1e}", fast=args.fast)
diff = (attention_math(q, k, v, 0) - attention_fast(q, k, v, 0)).abs().max().item()
check("the written-out attention equals F.scaled_dot_product_attention", diff < 1e-5,
      f"max |difference| = {diff:.2e}", fast=args.fast)
print()


# %% Step 5: the KV cache. Decode the same prompt both ways, 5 times, paired by repeat.
@torch.no_grad()
def decode_without_cache(model: GPT, prompt: torch.Tensor, n_new: int) -> torch.Tensor:
    """Greedy decoding that re-reads the whole sequence for every new token."""
    seq = prompt  # (1, T)
    for _ in range(n_new):
        nxt = model(seq)[:, -1].argmax(-1, keepdim=True)  # (1, 1)
        seq = torch.cat([seq, nxt], dim=1)
    return seq


@torch.no_grad()
def decode_with_cache(model: GPT, prompt: torch.Tensor, n_new: int) -> torch.Tensor:
    """Greedy decoding that reads the prompt once, then feeds only the newest token (keys and values of
    the earlier positions are kept in the cache)."""
    cache = model.new_cache(1)
    last = model(prompt, cache)[:, -1]  # (1, V)
    seq = prompt
    for _ in range(n_new):
        nxt = last.argmax(-1, keepdim=True)  # (1, 1)
        seq = torch.cat([seq, nxt], dim=1)
        last = model(nxt, cache)[:, -1]
    return seq


n_new, repeats = (16 if args.fast else 48), 5
print(f"Step 5: greedy decoding of {n_new} tokens, {repeats} repeats, without and with the KV cache")
decode_without_cache(model, prompt, 2)  # warm-up: the first calls pay for allocation
decode_with_cache(model, prompt, 2)
t_full, t_cache, same = [], [], []
for _ in range(repeats):
    t0 = time.perf_counter()
    seq = decode_without_cache(model, prompt, n_new)
    t1 = time.perf_counter()
    cached = decode_with_cache(model, prompt, n_new)
    t_full.append((t1 - t0) * 1e3)
    t_cache.append((time.perf_counter() - t1) * 1e3)
    same.append(torch.equal(seq, cached))
print("  ms without cache: " + " ".join(f"{t:.1f}" for t in t_full))
print("  ms with cache:    " + " ".join(f"{t:.1f}" for t in t_cache))
check("the same tokens with and without the cache", all(same),
      f"{sum(same)} of {repeats} repeats wrote identical sequences", fast=args.fast)
claim("the KV cache decodes faster than re-reading the sequence", t_full, t_cache, ">",
      "time without − with the cache, per repeat", unit="ms", fast=args.fast)
print("  (one prompt here; `minikd bench` times both paths for the teacher preset at batch 64)\n")

# %%
print("Check yourself")
print("  1. Why must forward() return logits at every position for token-level KD?")
print("  2. Which positions may the query at position 3 attend to?")
print("  3. What does the KV cache store, and why does it not change the result?")
