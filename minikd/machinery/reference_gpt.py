"""A plain PyTorch GPT-2 block stack: the yardstick `minikd bench` times minikd's GPT against.

The same architecture as minikd.model.GPT — token + learned position embeddings, pre-LayerNorm blocks of
causal self-attention (one nn.Linear for q, k, v; F.scaled_dot_product_attention) and a 4x GELU MLP, tied
input/output embeddings — written the shortest way, with none of minikd's extras (KV cache, the written-out
attention path, float32 logits under autocast, the context check). Timed in the same process on the same
config, the ratio of the two shows whether those extras, or a later change to model.py, cost speed: the
anchor codebases' models are this stack too.

`copy_weights` loads a minikd GPT's weights into it, so a test can check both compute the same logits.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from minikd.model import GPTConfig


class RefBlock(nn.Module):
    """x + attn(ln(x)), then x + mlp(ln(x)); attention through the fused causal kernel."""

    def __init__(self, c: GPTConfig):
        super().__init__()
        self.n_head = c.n_head
        self.ln_1 = nn.LayerNorm(c.n_embd)
        self.c_attn = nn.Linear(c.n_embd, 3 * c.n_embd)
        self.attn_proj = nn.Linear(c.n_embd, c.n_embd)
        self.ln_2 = nn.LayerNorm(c.n_embd)
        self.c_fc = nn.Linear(c.n_embd, 4 * c.n_embd)
        self.mlp_proj = nn.Linear(4 * c.n_embd, c.n_embd)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)  # each (B, T, C)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, nh, T, hs)
        x = x + self.attn_proj(y.transpose(1, 2).contiguous().view(B, T, C))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x))))


class RefGPT(nn.Module):
    """idx (B, T) -> logits (B, T, vocab_size), with the parameters minikd's GPT has for the same config."""

    def __init__(self, c: GPTConfig):
        super().__init__()
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)
        self.wpe = nn.Embedding(c.block_size, c.n_embd)
        self.h = nn.ModuleList(RefBlock(c) for _ in range(c.n_layer))
        self.ln_f = nn.LayerNorm(c.n_embd)
        self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied
        for p in self.parameters():
            if p.dim() >= 2:
                nn.init.normal_(p, mean=0.0, std=0.02)

    def forward(self, idx):
        pos = torch.arange(idx.size(1), device=idx.device)  # (T,)
        x = self.wte(idx) + self.wpe(pos)  # (B, T, C)
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))  # (B, T, vocab_size)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())  # the tied matrix counted once


def copy_weights(ref: RefGPT, gpt: nn.Module) -> RefGPT:
    """Load minikd GPT `gpt`'s weights into `ref`. Both list their tensors in the same order (embeddings,
    then per block LayerNorm, qkv, attention output, LayerNorm, MLP in, MLP out, then the final LayerNorm and
    the tied output layer), so the i-th tensor of one is the i-th of the other; shapes are checked."""
    mine, theirs = ref.state_dict(), gpt.state_dict()
    if len(mine) != len(theirs):
        raise ValueError(f"reference has {len(mine)} tensors, minikd's GPT {len(theirs)}: not the same model")
    for (name, a), (other, b) in zip(mine.items(), theirs.items()):
        if a.shape != b.shape:
            raise ValueError(f"reference {name} {tuple(a.shape)} does not match minikd's {other} {tuple(b.shape)}")
    ref.load_state_dict(dict(zip(mine, theirs.values())))
    return ref
