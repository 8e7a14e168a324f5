"""Batched decoding with a KV cache: greedy, temperature / top-k sampling, and beam search.

Sequence-level distillation needs the teacher to *write* answers, u = teacher(s), for every training
prompt s; evaluation needs the student to write them too. This module turns a trained GPT into a writer:

- greedy       the most likely next token, every step;
- sample       a draw from the model's distribution, sharpened or flattened by a temperature and
               optionally cut to the top-k tokens;
- beam         K hypotheses per prompt kept side by side; the sequence with the best (optionally
               length-normalised) total log-probability wins. Kim & Rush use it to approximate the
               teacher's single most likely answer (the mode), which is what sequence-level KD copies.

Every output carries the log-probability the model gives it (per token and in total) and whether it
ended with the end-of-response token or was cut off by the max-new-tokens limit.

Why prompts are grouped into buckets of equal length instead of padded. The model has *learned*
position embeddings and was trained with every prompt starting at position 0. Left-padding short prompts
would move them to later positions (and put pad tokens in front of them) and right-padding would make
rows write their next token at different positions; either needs per-row position ids and attention
masks that a from-scratch GPT does not have. With equal-length buckets every row is exactly the sequence
the model would see alone, so batching changes nothing but speed (a test checks it). Results come back
in the original prompt order.

Why a KV cache. Without it, step t re-reads all t previous positions: writing n tokens costs O(n^2)
token-forwards. The cache keeps every layer's keys and values, so each step reads one new token.
`use_cache=False` keeps the slow path as a reference: both give the same tokens (tests check it, and
`bench_generation` measures the speed-up).

Run `python -m minikd.generate` to time both paths on the teacher preset.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from minikd.device import synchronize
from minikd.model import check_vocab

DECODINGS = ("greedy", "sample", "beam")
# Asking "has every row ended?" makes the host wait for the GPU (a sync). Greedy decoding and beam search ask every
# END_CHECK tokens: a finished batch runs at most END_CHECK - 1 idle steps, whose tokens are cut off (the answers
# are the same). Sampling asks every token: an idle step would still draw random numbers, and every later
# sample of the same seed would change.
END_CHECK = 8


@dataclass
class Generation:
    """One answer the model wrote.

    tokens          the generated ids, WITHOUT the end token
    token_logprobs  log p(token | everything before) under the model at temperature 1, one per generated
                    token; when the answer ended, the end token's log-prob is the LAST entry, so
                    len(token_logprobs) == len(tokens) + ended
    logprob         sum(token_logprobs): log p(answer + end | prompt), the sequence-level KD quantity
    ended           True if the model wrote the end token, False if max_new_tokens cut it off
    score           beam search only: logprob / len(token_logprobs) ** length_penalty, the number beams
                    are ranked by (length_penalty=0 means plain log-prob); None for greedy / sample
    text            filled in by generate_text (or a caller) with tokenizer.decode(tokens)
    """

    tokens: list[int]
    token_logprobs: list[float]
    logprob: float
    ended: bool
    score: float | None = None
    text: str | None = None


def _make(tokens: list[int], token_logprobs: list[float], ended: bool, length_penalty: float | None = None):
    logprob = sum(token_logprobs)
    score = None if length_penalty is None else logprob / len(token_logprobs) ** length_penalty
    return Generation(tokens, token_logprobs, logprob, ended, score)


# -- next-token logits, with or without the cache -------------------------------------------------------

class _NextLogits:
    """The model's next-token logits for every row, from the KV cache or by re-reading the whole sequence.

    Both paths compute the same numbers; the cache only avoids recomputing the keys and values of the
    positions already read. Decoding loops call first() once, then step(tokens) for every new token.
    """

    def __init__(self, model, prompts: torch.Tensor, use_cache: bool):
        self.model = model
        self.seq = prompts  # (N, P); without a cache it grows by one column per step
        self.cache = model.new_cache(prompts.size(0)) if use_cache else None

    def first(self) -> torch.Tensor:
        return self.model(self.seq, self.cache)[:, -1]  # (N, V): the distribution after the prompt

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (N,) were just written; return the distribution over the token after them, (N, V)."""
        if self.cache is not None:
            return self.model(tokens[:, None], self.cache)[:, -1]  # read only the new token
        self.seq = torch.cat([self.seq, tokens[:, None]], dim=1)  # (N, T+1)
        return self.model(self.seq)[:, -1]  # re-read everything

    def reorder(self, rows: torch.Tensor) -> None:
        """Row i continues what row rows[i] wrote so far (beam search)."""
        if self.cache is not None:
            self.cache.reorder(rows)
        else:
            self.seq = self.seq[rows]


# -- greedy and sampling --------------------------------------------------------------------------------

def _pick_greedy(logits: torch.Tensor) -> torch.Tensor:
    return logits.argmax(dim=-1)  # (N,)


def _sampler(temperature: float, top_k: int | None, generator: torch.Generator | None):
    """A function logits (N, V) -> sampled ids (N,)."""

    def pick(logits: torch.Tensor) -> torch.Tensor:
        logits = logits / temperature  # T < 1 sharpens, T > 1 flattens
        if top_k is not None and top_k < logits.size(-1):
            kth = logits.topk(top_k, dim=-1).values[:, -1:]  # (N, 1): the k-th largest logit
            logits = logits.masked_fill(logits < kth, float("-inf"))  # only the k best can be drawn
        probs = F.softmax(logits, dim=-1)  # (N, V)
        return torch.multinomial(probs, 1, generator=generator).squeeze(1)  # (N,)

    return pick


def _decode_rows(model, prompts: torch.Tensor, max_new_tokens: int, end_id: int | None, pick,
                 use_cache: bool) -> list[Generation]:
    """Greedy or sampling for N equal-length prompts (N, P): one token per row per step."""
    N, device = prompts.size(0), prompts.device
    stop = -1 if end_id is None else end_id  # -1 is never written: such rows run to max_new_tokens
    tokens = torch.zeros(N, max_new_tokens, dtype=torch.long, device=device)  # (N, n) what each row wrote
    logps = torch.zeros(N, max_new_tokens, device=device)  # (N, n) log-prob of each written token
    lengths = torch.full((N,), max_new_tokens, device=device)  # tokens written, the end token included
    ended = torch.zeros(N, dtype=torch.bool, device=device)

    check = 1 if pick is not _pick_greedy else END_CHECK  # how often to ask "all ended?" (one host sync each)

    # Step 1: read the prompts (the cache now holds them).
    reader = _NextLogits(model, prompts, use_cache)
    logits = reader.first()  # (N, V)
    for t in range(max_new_tokens):
        # Step 2: choose the next token; report its log-prob under the model itself (temperature 1).
        logp = F.log_softmax(logits, dim=-1)  # (N, V)
        nxt = pick(logits)  # (N,)
        nxt = torch.where(ended, torch.full_like(nxt, max(stop, 0)), nxt)  # finished rows idle (ignored)
        tokens[:, t] = nxt
        logps[:, t] = logp.gather(1, nxt[:, None]).squeeze(1)
        # Step 3: a row that just wrote the end token is finished; its length counts the end token.
        just_ended = ~ended & (nxt == stop)
        lengths = torch.where(just_ended, t + 1, lengths)
        ended |= just_ended
        if t + 1 == max_new_tokens or (end_id is not None and (t + 1) % check == 0 and bool(ended.all())):
            break  # the batch stops when every row has ended
        # Step 4: read the new tokens to get the next distribution.
        logits = reader.step(nxt)

    # Step 5: one transfer to Python lists; cut each row at its own length.
    out = []
    for row, lps, n, e in zip(tokens.tolist(), logps.tolist(), lengths.tolist(), ended.tolist()):
        out.append(_make(row[:n - e], lps[:n], e))
    return out


# -- beam search ----------------------------------------------------------------------------------------

class _Pools:
    """The num_return best answers of every prompt so far, best first, kept on the device: adding the
    candidates of a step is a sort, not a host copy. Empty places have score -inf. Scores are float64
    sums taken token by token in writing order, the very numbers Generation.logprob / length ** penalty
    gives on the host, so answers rank as they would there."""

    def __init__(self, B: int, R: int, n: int, device):
        self.score = torch.full((B, R), float("-inf"), dtype=torch.float64, device=device)  # (B, R)
        self.tok = torch.zeros(B, R, n, dtype=torch.long, device=device)  # (B, R, n) tokens, end token not kept
        self.lp = torch.zeros(B, R, n, device=device)  # (B, R, n) token log-probs, the end token's included
        self.len = torch.zeros(B, R, dtype=torch.long, device=device)  # (B, R) how many log-probs
        self.ended = torch.zeros(B, R, dtype=torch.bool, device=device)  # (B, R)

    def add(self, score, tok, lp, length, ended) -> None:
        """Candidates (B, C) (tok, lp: (B, C, n)), score -inf where none; a stable sort keeps, among equal
        scores, the answer found first (the pool's, then the candidates in order)."""
        R = self.score.size(1)
        keep = torch.cat([self.score, score], 1).sort(dim=1, descending=True, stable=True).indices[:, :R]  # (B, R)
        for name, new in (("score", score), ("tok", tok), ("lp", lp), ("len", length), ("ended", ended)):
            both = torch.cat([getattr(self, name), new], 1)  # (B, R + C, ...)
            index = keep.view(*keep.shape, *[1] * (both.dim() - 2)).expand(-1, -1, *both.shape[2:])
            setattr(self, name, both.gather(1, index))

    def full(self) -> torch.Tensor:
        return self.score[:, -1] > float("-inf")  # (B,) every place taken

    def to_lists(self, length_penalty: float) -> list[list[Generation]]:
        """One transfer to Python lists at the end."""
        rows = zip(self.score.tolist(), self.tok.tolist(), self.lp.tolist(), self.len.tolist(), self.ended.tolist())
        return [[_make(t[:m - e], lp[:m], e, length_penalty) for sc, t, lp, m, e in zip(*row) if sc > float("-inf")]
                for row in rows]


class _Beams:
    """The K live hypotheses of B prompts (rows b*K .. b*K+K-1): what they wrote and their log-probs."""

    def __init__(self, B: int, K: int, n: int, device):
        self.B, self.K = B, K
        self.lp = torch.full((B, K), float("-inf"), device=device)  # (B, K) total log-prob, ranks candidates
        self.lp[:, 0] = 0.0  # only copy 0 is live at first: the first K tokens come from one hypothesis
        self.total = torch.zeros(B * K, dtype=torch.float64, device=device)  # (B*K,) the same, summed as _make does
        self.seqs = torch.zeros(B * K, n, dtype=torch.long, device=device)  # (B*K, n) tokens written
        self.seq_lps = torch.zeros(B * K, n, device=device)  # (B*K, n) their log-probs
        self.first_row = torch.arange(B, device=device)[:, None] * K  # (B, 1) row of each prompt's hypothesis 0

    def finished(self, rows, end_lp, mask, t: int, length_penalty: float):
        """Candidates (B, C) that end now: hypotheses `rows` + the end token (log-prob end_lp), for _Pools.add."""
        total = self.total[rows] + end_lp.double()  # (B, C)
        score = torch.where(mask, total / (t + 1) ** length_penalty, float("-inf"))
        lp = self.seq_lps[rows]  # (B, C, n)
        lp[..., t] = end_lp
        return score, self.seqs[rows], lp, torch.full_like(rows, t + 1), torch.ones_like(mask)

    def cut_off(self, done, length_penalty: float):
        """The live hypotheses of prompts not done, as answers cut off at max_new_tokens, for _Pools.add."""
        B, K, n = self.B, self.K, self.seqs.size(1)
        live = (self.lp > float("-inf")) & ~done[:, None]  # (B, K)
        score = torch.where(live, self.total.view(B, K) / n ** length_penalty, float("-inf"))
        return (score, self.seqs.view(B, K, n), self.seq_lps.view(B, K, n), torch.full_like(live, n, dtype=torch.long),
                torch.zeros_like(live))

    def extend(self, top_beam, top_tok, top_lp, keep, logp, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The candidates `keep` (K per prompt, best first) become the hypotheses; returns (rows, tokens)."""
        B, K = self.B, self.K
        new_tok, self.lp = top_tok[keep].view(B * K), top_lp[keep].view(B, K)
        rows = (self.first_row + top_beam[keep].view(B, K)).view(B * K)  # the row each new one extends
        self.seqs, self.seq_lps = self.seqs[rows], self.seq_lps[rows]
        self.seqs[:, t] = new_tok
        self.seq_lps[:, t] = logp[rows, new_tok]
        self.total = self.total[rows] + self.seq_lps[:, t].double()
        return rows, new_tok


def _beam_search(model, prompts: torch.Tensor, max_new_tokens: int, end_id: int | None, beam_size: int,
                 length_penalty: float, num_return: int, use_cache: bool) -> list[list[Generation]]:
    """Beam search for B equal-length prompts (B, P); returns the `num_return` best answers per prompt.

    Every step each live hypothesis is extended by every token; of the B x (K x V) candidates, per prompt:
      - an end-token candidate among the K best finishes: it goes to the prompt's pool of answers;
      - the K best candidates that do not end become the next step's live hypotheses.
    K = 1, length_penalty = 0 is greedy decoding. A prompt is done when no live hypothesis can beat its
    `num_return` best answers: exact for K large enough (a brute-force test). Bookkeeping stays on the device.
    """
    B, K, V, n, device = prompts.size(0), beam_size, model.config.vocab_size, max_new_tokens, prompts.device
    stop = -1 if end_id is None else end_id
    reader = _NextLogits(model, prompts.repeat_interleave(K, dim=0), use_cache)  # Step 1: K copies, (B*K, P)
    beams, pools = _Beams(B, K, n, device), _Pools(B, num_return, n, device)
    done, rank = torch.zeros(B, dtype=torch.bool, device=device), torch.arange(min(2 * K, K * V), device=device)
    logits = reader.first()  # (B*K, V)
    for t in range(n):
        logp = F.log_softmax(logits, dim=-1)  # Step 2: every one-token extension, (B*K, V)
        # 2K candidates always hold K that do not end: each hypothesis has only one end token.
        top_lp, top_idx = (beams.lp.view(B * K, 1) + logp).view(B, K * V).topk(rank.numel(), dim=1)  # (B, 2K)
        top_beam, top_tok = top_idx // V, top_idx % V  # which hypothesis, which token
        is_end = top_tok == stop
        # Step 3: end-token candidates among the K best (of prompts not done) are finished answers.
        finish = is_end & (rank < K) & torch.isfinite(top_lp) & ~done[:, None]  # (B, 2K)
        rows = beams.first_row + top_beam  # (B, 2K) the hypothesis each candidate extends
        pools.add(*beams.finished(rows, logp[rows, max(stop, 0)], finish, t, length_penalty))  # end_lp (B, 2K)
        # Step 4: the K best candidates that do not end are the new hypotheses (cumsum counts them).
        rows, new_tok = beams.extend(top_beam, top_tok, top_lp, ~is_end & ((~is_end).cumsum(dim=1) <= K), logp, t)
        if t + 1 == n:  # Step 6: out of room; the live hypotheses are cut-off answers and compete too.
            pools.add(*beams.cut_off(done, length_penalty))
            break
        # Step 5: done when the worst kept answer beats any score a live hypothesis can still reach: its
        # log-prob L only falls, and L / m**length_penalty is best at the shortest (t + 2) or longest (n) m.
        bound = beams.lp.max(dim=1).values.double() / max((t + 2) ** length_penalty, n ** length_penalty)
        done |= pools.full() & (pools.score[:, -1] >= bound)
        if (t + 1) % END_CHECK == 0 and bool(done.all()):
            break  # asked every END_CHECK tokens: one host sync
        reader.reorder(rows)
        logits = reader.step(new_tok)  # (B*K, V)
    return pools.to_lists(length_penalty)


# -- the public entry points ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Decoding:
    """How to pick the next tokens. Every setting is explicit, so one that does not apply to the chosen
    method is an error, not ignored."""
    method: str = "greedy"  # "greedy" | "sample" | "beam"
    temperature: float = 1.0  # sampling only: logits / temperature
    top_k: int | None = None  # sampling only: keep the top_k largest logits (None: all)
    beam_size: int = 1  # beam only: K hypotheses
    length_penalty: float = 0.0  # beam only: rank by logprob / len ** length_penalty
    num_return: int = 1  # answers per prompt: the best ones for beam, independent draws for sample

    def __post_init__(self):
        if self.method not in DECODINGS:
            raise ValueError(f"unknown decoding method {self.method!r}; choose one of {list(DECODINGS)}")
        if self.method == "sample":
            if not self.temperature > 0:
                raise ValueError(f"temperature must be > 0 for sampling, got {self.temperature}")
            if self.top_k is not None and self.top_k < 1:
                raise ValueError(f"top_k must be >= 1 (or None for no cut), got {self.top_k}")
        elif self.temperature != 1.0 or self.top_k is not None:
            raise ValueError(f"temperature and top_k apply to method='sample' only (method={self.method!r})")
        if self.beam_size < 1:
            raise ValueError(f"beam_size must be >= 1, got {self.beam_size}")
        if self.method != "beam" and (self.beam_size != 1 or self.length_penalty != 0.0):
            raise ValueError(f"beam_size and length_penalty apply to method='beam' only (method={self.method!r})")
        if self.num_return < 1:
            raise ValueError(f"num_return must be >= 1, got {self.num_return}")
        if self.method == "greedy" and self.num_return != 1:
            raise ValueError("greedy decoding has one answer per prompt: num_return must be 1")
        if self.method == "beam" and self.num_return > self.beam_size:
            raise ValueError(f"num_return={self.num_return} is more than beam_size={self.beam_size}")


def _check(model, prompts, max_new_tokens: int, end_id, batch_size: int) -> None:
    """The prompts fit the model: known ids, not empty, room for max_new_tokens in the context."""
    V, ctx = model.config.vocab_size, model.config.block_size
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if end_id is not None and not 0 <= end_id < V:
        raise ValueError(f"end_id {end_id} out of range for vocab_size {V}")
    for i, p in enumerate(prompts):
        if len(p) == 0:
            raise ValueError(f"prompt {i} is empty: generation needs at least one token to start from")
        if len(p) + max_new_tokens > ctx:
            raise ValueError(f"prompt {i} has {len(p)} tokens; with max_new_tokens={max_new_tokens} that is "
                             f"{len(p) + max_new_tokens} > the model's context block_size={ctx}")
        bad = [x for x in p if not 0 <= x < V]
        if bad:
            raise ValueError(f"prompt {i} holds token id {bad[0]}, out of range for vocab_size {V}")


def generate(model, prompts: list[list[int]], *, max_new_tokens: int, end_id: int | None, batch_size: int = 64,
             seed: int | None = None, use_cache: bool = True, **decoding) -> list[Generation] | list[list[Generation]]:
    """Continue every prompt (token ids ending with the <|response|> id) until the end token or the limit.

    decoding        the fields of Decoding: method="greedy" | "sample" (temperature, top_k) |
                    "beam" (beam_size, length_penalty); num_return
    max_new_tokens  at most this many new tokens (the end token included). Not clamped: a prompt for which
                    len(prompt) + max_new_tokens > block_size is a ValueError that names it.
    end_id          the end-of-response id; a row that writes it stops (None: never stop early)
    batch_size      rows decoded at once (a beam prompt takes beam_size rows)
    seed            sampling: seeds a torch.Generator on the model's device (None: torch's global RNG).
                    The same seed, prompts and batch_size give the same answers.
    use_cache       False re-reads the whole sequence every step: the slow reference path

    Log-probs are always those of the model at temperature 1, not of the sampling distribution, so
    answers from any method can be compared and used as log p(u | s).
    Returns one Generation per prompt in the original order, or, when num_return > 1, a list of
    num_return Generations per prompt.
    """
    d = Decoding(**decoding)
    prompts = [[int(x) for x in p] for p in prompts]
    _check(model, prompts, max_new_tokens, end_id, batch_size)
    device = next(model.parameters()).device
    pick = _picker(d, seed, device)
    # Step 1: sampling several answers = sampling one answer for several copies of each prompt.
    copies = d.num_return if d.method == "sample" else 1
    rows = [p for p in prompts for _ in range(copies)]
    # Steps 2-3: bucket the rows by length, decode the buckets in chunks, answers back in the rows' order.
    per_chunk = max(1, batch_size // d.beam_size) if d.method == "beam" else batch_size
    results = _in_buckets(model, rows, per_chunk,
                          lambda x: _decode_chunk(model, x, max_new_tokens, end_id, d, pick, use_cache))
    if copies > 1:  # regroup the sampled copies per prompt
        results = [results[i:i + copies] for i in range(0, len(results), copies)]
    return results


def _in_buckets(model, rows: list[list[int]], per_chunk: int, decode) -> list:
    """decode(x) for chunks x (b, P) of equal-length rows (see the module docstring for why not pad), in eval
    mode without gradients; one answer per row, in the rows' order."""
    buckets: dict[int, list[int]] = {}
    for i, p in enumerate(rows):
        buckets.setdefault(len(p), []).append(i)
    results: list = [None] * len(rows)
    device, was_training = next(model.parameters()).device, model.training
    model.eval()
    try:
        with torch.no_grad():
            for length in sorted(buckets):
                for s in range(0, len(buckets[length]), per_chunk):
                    chunk = buckets[length][s:s + per_chunk]
                    x = torch.tensor([rows[i] for i in chunk], dtype=torch.long, device=device)  # (b, P)
                    for i, out in zip(chunk, decode(x)):
                        results[i] = out
    finally:
        model.train(was_training)
    return results


def _picker(d: Decoding, seed: int | None, device: torch.device):
    """The next-token rule of greedy or sampling (beam search ranks candidates itself)."""
    if d.method != "sample":
        return _pick_greedy
    generator = None
    if seed is not None:
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)
    return _sampler(d.temperature, d.top_k, generator)


def _decode_chunk(model, x: torch.Tensor, max_new_tokens: int, end_id, d: Decoding, pick, use_cache: bool) -> list:
    """One chunk of equal-length prompts x (b, P): a Generation per row (a list of num_return for beam > 1)."""
    if d.method != "beam":
        return _decode_rows(model, x, max_new_tokens, end_id, pick, use_cache)
    pools = _beam_search(model, x, max_new_tokens, end_id, d.beam_size, d.length_penalty, d.num_return, use_cache)
    return pools if d.num_return > 1 else [pool[0] for pool in pools]


def generate_text(model, tokenizer, prompts: list[str], **kw) -> list[Generation] | list[list[Generation]]:
    """generate() for plain-text prompts: render each with the chat template, decode the answers to .text.

    The end token comes from the tokenizer; every other setting is passed on to generate().
    """
    check_vocab(tokenizer, model)
    ids = [tokenizer.render_prompt(p) for p in prompts]
    results = generate(model, ids, end_id=tokenizer.end_id, **kw)
    for r in results:
        for g in (r if isinstance(r, list) else [r]):
            g.text = tokenizer.decode(g.tokens)
    return results


# -- benchmark ------------------------------------------------------------------------------------------

def _sync(device: torch.device) -> None:
    synchronize(device)  # CUDA and MPS: the clock measures work done, not queued


def bench_generation(model, batch_size: int = 64, prompt_len: int = 16, new_tokens: int = 64,
                     seed: int = 0) -> dict:
    """Greedy decoding tokens/s with the KV cache vs re-reading the whole sequence every step.

    Random prompts; the end token is ignored so both paths write exactly `new_tokens` per row.
    Returns tokens/s of each path, the speed-up, and whether both wrote the same tokens.
    On a CPU the cached path is many small operations: if other processes compete for the cores,
    each multi-threaded operation waits for its slowest thread and the speed-up shrinks (compare
    torch.set_num_threads(1)); "threads" is reported for that reason.
    """
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    prompts = torch.randint(0, model.config.vocab_size, (batch_size, prompt_len), generator=g).tolist()
    kw = dict(end_id=None, batch_size=batch_size)
    generate(model, prompts, max_new_tokens=4, use_cache=True, **kw)  # warm-up: allocator, kernels
    generate(model, prompts, max_new_tokens=4, use_cache=False, **kw)

    def timed(use_cache: bool):
        _sync(device)
        t0 = time.perf_counter()
        out = generate(model, prompts, max_new_tokens=new_tokens, use_cache=use_cache, **kw)
        _sync(device)
        return batch_size * new_tokens / (time.perf_counter() - t0), [o.tokens for o in out]

    cached, cached_tokens = timed(True)
    full, full_tokens = timed(False)
    return {"device": str(device), "threads": torch.get_num_threads(), "batch_size": batch_size,
            "prompt_len": prompt_len, "new_tokens": new_tokens, "cache_tokens_per_s": cached, "full_tokens_per_s": full,
            "speedup": cached / full, "same_tokens": cached_tokens == full_tokens}


if __name__ == "__main__":
    from minikd.runtime import get_device
    from minikd.model import GPT, get_config
    from minikd.tokenizer import Tokenizer

    torch.manual_seed(0)
    net = GPT(get_config("teacher", vocab_size=Tokenizer.default().vocab_size)).to(get_device())
    print(bench_generation(net))
