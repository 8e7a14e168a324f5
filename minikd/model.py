"""A GPT-2-style decoder written by hand: the teacher and the student of every lesson.

Token + learned position embeddings, pre-LayerNorm blocks of causal self-attention and a 4x GELU MLP,
tied input/output embeddings, GPT-2 initialisation. Two things matter for distillation:

- `forward` returns logits at EVERY position, (B, T, vocab). Token-level KD needs the teacher's
  distribution at each answer position, not only at the last one.
- a KV cache (`new_cache`) makes decoding cost one new token per step instead of re-reading the whole
  sequence, which is what makes "the teacher writes a complete answer u = teacher(s)" cheap.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from minikd.device import full_precision


@dataclass
class GPTConfig:
    vocab_size: int  # number of token ids the embedding and the output layer know (tokenizer.vocab_size)
    block_size: int = 128  # the context: the longest sequence (prompt + answer) the model can read
    n_layer: int = 4  # number of transformer blocks
    n_head: int = 4  # attention heads per block; n_embd must be divisible by it
    n_embd: int = 128  # width of the residual stream
    dropout: float = 0.0  # dropout after attention / MLP; 0 for our small, data-rich runs
    sdpa: bool = True  # use F.scaled_dot_product_attention (fast); False runs the written-out math

    def __post_init__(self):
        if self.n_embd % self.n_head != 0:
            raise ValueError(f"n_embd={self.n_embd} is not divisible by n_head={self.n_head}")
        if self.vocab_size <= 0:
            raise ValueError(f"vocab_size must be positive, got {self.vocab_size}")


# Named sizes. The teacher has several times the student's parameters; `tiny` is for tests.
PRESETS: dict[str, dict] = {
    "tiny": dict(n_layer=1, n_head=2, n_embd=16, block_size=128),
    "student": dict(n_layer=2, n_head=2, n_embd=64, block_size=128),
    "teacher": dict(n_layer=4, n_head=4, n_embd=128, block_size=128),
}


def get_config(name: str, vocab_size: int, **overrides) -> GPTConfig:
    """A preset by name, with the tokenizer's vocabulary size and any field overridden."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return GPTConfig(vocab_size=vocab_size, **{**PRESETS[name], **overrides})


def attention_math(q, k, v, start: int):
    """Causal attention written out: softmax(q k^T / sqrt(d)) v, where query i sees keys 0 .. start+i.

    q: (B, nh, T, hs) for the T new positions; k, v: (B, nh, start+T, hs) for all positions so far.
    """
    T, S = q.size(2), k.size(2)  # S = start + T
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (B, nh, T, S)
    query_pos = torch.arange(start, start + T, device=q.device).unsqueeze(1)  # (T, 1)
    key_pos = torch.arange(S, device=q.device).unsqueeze(0)  # (1, S)
    scores = scores.masked_fill(key_pos > query_pos, float("-inf"))  # no peeking at the future
    weights = F.softmax(scores, dim=-1)  # (B, nh, T, S), each row sums to 1
    return weights @ v  # (B, nh, T, hs)


def attention_fast(q, k, v, start: int):
    """The same attention through PyTorch's fused kernel (F.scaled_dot_product_attention)."""
    T, S = q.size(2), k.size(2)
    if start == 0:  # a fresh sequence: the usual lower-triangular mask
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    if T == 1:  # one new token after a cache: it may see every earlier position
        return F.scaled_dot_product_attention(q, k, v)
    allowed = torch.arange(S, device=q.device)[None, :] <= torch.arange(start, S, device=q.device)[:, None]
    return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)  # (T, S) bool mask


class KVCache:
    """Keys and values of every layer for the positions already read, preallocated to block_size."""

    def __init__(self, config: GPTConfig, batch_size: int, device, dtype=torch.float32):
        hs = config.n_embd // config.n_head
        shape = (config.n_layer, batch_size, config.n_head, config.block_size, hs)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.length = 0  # positions already stored

    def update(self, layer: int, k, v):
        """Store the new positions' k, v (B, nh, T, hs) and return all positions so far."""
        start, T = self.length, k.size(2)
        self.k[layer, :, :, start:start + T] = k
        self.v[layer, :, :, start:start + T] = v
        return self.k[layer, :, :, :start + T], self.v[layer, :, :, :start + T]

    def reorder(self, index: torch.Tensor) -> None:
        """Keep rows `index` of the batch (beam search reshuffles its hypotheses every step)."""
        n = self.length  # only the filled positions need moving
        self.k[:, :, :, :n] = self.k[:, index, :, :n]
        self.v[:, :, :, :n] = self.v[:, index, :, :n]


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.n_head, self.sdpa = config.n_head, config.sdpa
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd)  # q, k, v for all heads at once
        self.proj = nn.Linear(config.n_embd, config.n_embd)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x, cache: KVCache | None = None, layer: int = 0):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)  # each (B, T, C)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        start = 0
        if cache is not None:
            start = cache.length
            k, v = cache.update(layer, k, v)  # (B, nh, start+T, hs)
        y = (attention_fast if self.sdpa else attention_math)(q, k, v, start)  # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # heads side by side again
        return self.drop(self.proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.proj = nn.Linear(4 * config.n_embd, config.n_embd)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.drop(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    """Pre-LayerNorm residual block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln2 = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config)

    def forward(self, x, cache=None, layer=0):
        x = x + self.attn(self.ln1(x), cache, layer)
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)  # token embeddings
        self.wpe = nn.Embedding(config.block_size, config.n_embd)  # learned position embeddings
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied: one matrix reads and writes tokens
        self.apply(self._init_weights)
        # GPT-2: residual projections start smaller, so the sum over 2 * n_layer branches stays O(1).
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """idx (B, T) token ids -> logits (B, T, vocab_size) in float32, one distribution per position.

        With a cache, idx holds only the new tokens; their positions continue after cache.length.
        """
        B, T = idx.shape
        start = cache.length if cache is not None else 0
        if start + T > self.config.block_size:
            raise ValueError(f"sequence of {start + T} tokens is longer than the model's context "
                             f"(block_size={self.config.block_size})")
        pos = torch.arange(start, start + T, device=idx.device)  # (T,)
        x = self.drop(self.wte(idx) + self.wpe(pos))  # (B, T, C)
        for i, block in enumerate(self.blocks):
            x = block(x, cache, i)
        # The final LayerNorm and the output layer run in float32 even under autocast: widening bf16 logits
        # afterwards would keep their rounding (up to ~0.1 on a logit), and every loss and stored target
        # reads these numbers.
        with full_precision(idx.device):
            logits = self.lm_head(self.ln_f(x.float()))  # (B, T, vocab_size) float32
        if cache is not None:
            cache.length += T
        return logits

    def new_cache(self, batch_size: int) -> KVCache:
        p = self.wte.weight
        return KVCache(self.config, batch_size, p.device, p.dtype)

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameters, counted once (the tied output matrix is the token embedding).

        non_embedding=True leaves out the position embeddings, which are a lookup, not arithmetic."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.wpe.weight.numel() if non_embedding else n

    def flops_per_token(self) -> int:
        """Training FLOPs per token, the usual 6 x N estimate: 2N forward + 4N backward
        (Kaplan et al. 2020), with N the non-embedding parameters incl. the tied output layer."""
        return 6 * self.num_params(non_embedding=True)

    def config_dict(self) -> dict:
        return asdict(self.config)


def check_vocab(tokenizer, model: GPT) -> None:
    """A tokenizer and a model must agree on the vocabulary, or ids index the wrong rows."""
    if tokenizer.vocab_size != model.config.vocab_size:
        raise ValueError(f"vocabulary mismatch: tokenizer has {tokenizer.vocab_size} tokens, "
                         f"model was built for {model.config.vocab_size}")
