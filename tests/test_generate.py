"""Decoding: the KV cache changes nothing but speed, greedy is beam search with K = 1, beam search with a
wide enough beam finds the exact best answer (checked by brute force), seeds make sampling repeatable."""

import itertools
import math
import re
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from minikd.generate import END_CHECK, Generation, bench_generation, generate, generate_text
from minikd.model import GPT, get_config

V = 12
END = V - 1
PROMPTS = [[0, 3, 5], [7, 1, 2], [4, 4, 4], [9, 8, 6], [10, 0, 1], [2, 6, 10]]  # equal lengths: one bucket


def tiny(vocab=V, seed=0, std=None):
    """A tiny random GPT. std re-draws every weight wider, for peaked and varied distributions."""
    torch.manual_seed(seed)
    model = GPT(get_config("tiny", vocab_size=vocab, block_size=32)).eval()
    with torch.no_grad():
        for p in model.parameters():
            if std is not None:
                p.normal_(0.0, std)
    return model


def full_forward_logprobs(model, prompt, gen: Generation, end=END) -> list[float]:
    """log p of each generated token (and of the end token, if written), from one forward of the whole text."""
    written = gen.tokens + ([end] if gen.ended else [])
    with torch.no_grad():
        logp = F.log_softmax(model(torch.tensor([prompt + written]))[0], dim=-1)  # (T, V)
    return [logp[len(prompt) - 1 + i, tok].item() for i, tok in enumerate(written)]


def varied():
    """A random model whose answers to PROMPTS end after various lengths or get cut off, for every method."""
    return tiny(seed=18, std=1.0)


def flat(results):
    return [g for r in results for g in (r if isinstance(r, list) else [r])]


SETTINGS = {
    "greedy": dict(method="greedy"),
    "sample": dict(method="sample", temperature=0.8, top_k=5, seed=123),
    "beam": dict(method="beam", beam_size=3, length_penalty=0.5),
}


# -- the KV cache is only an optimisation ------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_kv_cache_gives_the_same_tokens_and_logprobs_as_recomputing_everything(name):
    model = varied()
    kw = dict(max_new_tokens=10, end_id=END, **SETTINGS[name])
    cached = generate(model, PROMPTS, use_cache=True, **kw)
    full = generate(model, PROMPTS, use_cache=False, **kw)
    for a, b in zip(cached, full):
        assert a.tokens == b.tokens and a.ended == b.ended
        assert a.token_logprobs == pytest.approx(b.token_logprobs, abs=1e-5)


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_logprobs_are_the_models_and_sum_to_the_total(name):
    model = varied()
    gens = generate(model, PROMPTS, max_new_tokens=10, end_id=END, **SETTINGS[name])
    assert any(g.ended for g in gens) and not all(g.ended for g in gens)  # both kinds are checked
    for prompt, g in zip(PROMPTS, gens):
        assert END not in g.tokens
        assert len(g.token_logprobs) == len(g.tokens) + g.ended  # the end token's log-prob is the last
        assert g.logprob == sum(g.token_logprobs)
        assert g.token_logprobs == pytest.approx(full_forward_logprobs(model, prompt, g), abs=1e-5)
        if name == "beam":
            assert g.score == pytest.approx(g.logprob / len(g.token_logprobs) ** 0.5)
        else:
            assert g.score is None


# -- greedy, beam search and brute force -------------------------------------------------------------------

def test_greedy_equals_beam_search_with_one_beam():
    model = varied()
    greedy = generate(model, PROMPTS, max_new_tokens=10, end_id=END)
    beam = generate(model, PROMPTS, max_new_tokens=10, end_id=END, method="beam", beam_size=1)
    assert {g.ended for g in greedy} == {True, False}
    for g, b in zip(greedy, beam):
        assert (g.tokens, g.ended) == (b.tokens, b.ended)
        assert g.token_logprobs == pytest.approx(b.token_logprobs, abs=1e-6)


def every_answer(vocab, end_id, max_new):
    """Every possible answer, as the tokens written: a body of non-end tokens then the end token, or
    max_new non-end tokens cut off."""
    words = [t for t in range(vocab) if t != end_id]
    for n in range(max_new):
        for body in itertools.product(words, repeat=n):
            yield list(body) + [end_id], True
    for body in itertools.product(words, repeat=max_new):
        yield list(body), False


def answer_logprobs(model, prompt, vocab, max_new) -> dict[tuple, float]:
    """log p(written | prompt) of every token string up to max_new long, from ONE full forward of all
    vocab ** max_new continuations (causality: a prefix's log-prob does not depend on what follows)."""
    tails = list(itertools.product(range(vocab), repeat=max_new))
    with torch.no_grad():
        x = torch.tensor([prompt + list(t) for t in tails])  # (vocab ** max_new, P + max_new)
        logp = F.log_softmax(model(x), dim=-1)[:, len(prompt) - 1:-1]  # (N, max_new, vocab): next-token
    token_lp = logp.gather(2, x[:, len(prompt):, None]).squeeze(2).cumsum(1)  # (N, max_new) prefix sums
    return {tail[:n]: token_lp[i, n - 1].item() for i, tail in enumerate(tails) for n in range(1, max_new + 1)}


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_wide_beam_search_finds_the_exact_best_answer(length_penalty):
    vocab, end, max_new = 4, 3, 3  # 1 + 3 + 9 answers that end, 27 that are cut off
    prompts = [[0, 1, 2], [2, 2, 0], [1, 0, 2], [0, 0, 1], [2, 1, 1]]
    lengths_won, not_trivial = set(), False
    for seed in (1, 2, 5):  # peaked, varied random models
        model = tiny(vocab=vocab, seed=seed, std=1.0)
        beams = generate(model, prompts, max_new_tokens=max_new, end_id=end, method="beam", beam_size=40,
                         length_penalty=length_penalty, num_return=4)
        greedy = generate(model, prompts, max_new_tokens=max_new, end_id=end)
        for prompt, found, g in zip(prompts, beams, greedy):
            lp = answer_logprobs(model, prompt, vocab, max_new)
            scored = sorted(((lp[tuple(w)] / len(w) ** length_penalty, lp[tuple(w)], w, ended)
                             for w, ended in every_answer(vocab, end, max_new)), key=lambda s: -s[0])
            assert scored[0][0] - scored[1][0] > 1e-3  # a clear winner, so float noise cannot flip it
            best = scored[0][2][:-1] if scored[0][3] else scored[0][2]
            assert (found[0].tokens, found[0].ended) == (best, scored[0][3])
            assert [f.score for f in found] == pytest.approx([s[0] for s in scored[:4]], abs=1e-5)
            lengths_won.add(len(scored[0][2]))
            if length_penalty == 0:  # the search matters: the best answer is not always greedy's
                not_trivial |= found[0].tokens != g.tokens
            else:  # the penalty matters: it changes which answer wins
                not_trivial |= max(scored, key=lambda s: s[1])[2] != scored[0][2]
    assert len(lengths_won) >= 2 and not_trivial


class Bigram(nn.Module):
    """A hand-set 'model': the next token depends only on the last one, p(next | last) = probs[last].

    It offers just what generate() needs: config.vocab_size and config.block_size, a parameter (for the
    device), forward(idx, cache) -> logits (N, T, V), and new_cache(n) with reorder(rows). A bigram keeps no
    state, so its cache holds nothing."""

    def __init__(self, probs: torch.Tensor):  # (V, V), each row sums to 1
        super().__init__()
        assert torch.allclose(probs.sum(dim=1), torch.ones(probs.size(0))), "each row must be a distribution"
        self.logp = nn.Parameter(probs.log(), requires_grad=False)  # (V, V)
        self.config = SimpleNamespace(vocab_size=probs.size(0), block_size=32)

    def new_cache(self, batch_size):
        return SimpleNamespace(reorder=lambda rows: None)

    def forward(self, idx, cache=None):
        return self.logp[idx]  # (N, T) -> (N, T, V): row t is the distribution after token t


def short_or_long() -> Bigram:
    """After the prompt token 0, two answers stand out (5 = end):
    short  1, end        p = 0.5 * 0.5             = 0.25   (2 tokens: mean log-prob log 0.5 = -0.69)
    long   2, 3, 4, end  p = 0.3 * 0.9 * 0.9 * 0.9 = 0.219  (4 tokens: mean log-prob -0.38)
    The short one is more likely in total, the long one per token."""
    probs = torch.tensor([
        [0.03, 0.50, 0.30, 0.07, 0.06, 0.04],  # after the prompt: short (1) or long (2) starts
        [0.12, 0.11, 0.10, 0.09, 0.08, 0.50],  # after 1: end, half the time
        [0.02, 0.02, 0.02, 0.90, 0.02, 0.02],  # 2 -> 3
        [0.02, 0.02, 0.02, 0.02, 0.90, 0.02],  # 3 -> 4
        [0.02, 0.02, 0.02, 0.02, 0.02, 0.90],  # 4 -> end
        [1 / 6] * 6,  # after the end token: never read
    ])
    return Bigram(probs)


@pytest.mark.parametrize("use_cache", [True, False])
def test_length_normalisation_turns_the_beam_from_the_short_answer_to_the_long_one(use_cache):
    """Unnormalised, the beam prefers the short answer (higher total log-prob); with length_penalty = 1 it
    prefers the long one (higher log-prob per token). Both numbers are checked by hand."""
    short_lp, long_lp = 2 * math.log(0.5), math.log(0.3) + 3 * math.log(0.9)  # end tokens included
    assert short_lp > long_lp and short_lp / 2 < long_lp / 4  # the premise: totals and means disagree
    kw = dict(max_new_tokens=6, end_id=5, method="beam", beam_size=3, num_return=2, use_cache=use_cache)

    [plain] = generate(short_or_long(), [[0]], length_penalty=0.0, **kw)
    assert [(g.tokens, g.ended) for g in plain] == [([1], True), ([2, 3, 4], True)]
    assert [g.logprob for g in plain] == pytest.approx([short_lp, long_lp], abs=1e-6)
    assert [g.score for g in plain] == pytest.approx([short_lp, long_lp], abs=1e-6)

    [normalised] = generate(short_or_long(), [[0]], length_penalty=1.0, **kw)
    assert [(g.tokens, g.ended) for g in normalised] == [([2, 3, 4], True), ([1], True)]
    assert [g.logprob for g in normalised] == pytest.approx([long_lp, short_lp], abs=1e-6)
    assert [g.score for g in normalised] == pytest.approx([long_lp / 4, short_lp / 2], abs=1e-6)


# -- sampling ----------------------------------------------------------------------------------------------

def test_sampling_with_a_seed_is_reproducible_and_seeds_differ():
    model = varied()
    kw = dict(max_new_tokens=10, end_id=END, method="sample", temperature=1.5)
    a = generate(model, PROMPTS, seed=7, **kw)
    b = generate(model, PROMPTS, seed=7, **kw)
    c = generate(model, PROMPTS, seed=8, **kw)
    assert [g.tokens for g in a] == [g.tokens for g in b]
    assert [g.tokens for g in a] != [g.tokens for g in c]


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_sampled_frequencies_match_softmax_of_logits_over_temperature(temperature):
    """Bug class: a temperature applied the wrong way (logits * T instead of logits / T, which sharpens
    where it should flatten). N seeded draws of the first token after prompt [0] are compared with the
    exact p = softmax(logits / T): each token's frequency must be within 4 standard errors,
    sqrt(p (1 - p) / N), of p (a miss by chance has probability ~6e-5 per token; the wrong way round
    moves the frequencies by 0.1 to 0.4, over 20 standard errors)."""
    first = torch.tensor([0.50, 0.25, 0.15, 0.07, 0.03])  # p(next | 0) at T = 1
    model = Bigram(first.expand(5, 5).contiguous())
    n = 5000
    [draws] = generate(model, [[0]], max_new_tokens=1, end_id=None, method="sample", temperature=temperature,
                       num_return=n, batch_size=n, seed=0)
    freq = torch.bincount(torch.tensor([g.tokens[0] for g in draws]), minlength=5) / n  # (V,)
    want = F.softmax(first.log() / temperature, dim=0)  # (V,) the logits are log p
    se = (want * (1 - want) / n).sqrt()
    assert ((freq - want).abs() < 4 * se).all(), f"T={temperature}: frequencies {freq} vs softmax(logits/T) {want}"


def test_top_k_1_sampling_is_greedy_whatever_the_temperature():
    model = varied()
    greedy = generate(model, PROMPTS, max_new_tokens=10, end_id=END)
    sampled = generate(model, PROMPTS, max_new_tokens=10, end_id=END, method="sample", temperature=3.0,
                       top_k=1, seed=0)
    assert [g.tokens for g in sampled] == [g.tokens for g in greedy]
    # log-probs are the model's (temperature 1), not the sampling distribution's (1.0 for top_k=1)
    assert [g.logprob for g in sampled] == pytest.approx([g.logprob for g in greedy])


def test_several_samples_per_prompt():
    model = varied()
    out = generate(model, PROMPTS[:2], max_new_tokens=8, end_id=END, method="sample", num_return=3, seed=0)
    assert len(out) == 2 and all(len(r) == 3 for r in out)
    assert len({tuple(g.tokens) for g in out[0]}) > 1


# -- batching ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["greedy", "beam"])
def test_mixed_prompt_lengths_come_back_in_order_and_equal_decoding_each_alone(name):
    model = varied()
    prompts = [[0, 3], [7, 1, 2, 5], [4], [9, 8], [1, 2, 3, 4], [6]]
    kw = dict(max_new_tokens=8, end_id=END, **{k: v for k, v in SETTINGS[name].items() if k != "seed"})
    together = generate(model, prompts, batch_size=2 if name == "greedy" else 6, **kw)  # chunks too
    for prompt, g in zip(prompts, together):
        [alone] = generate(model, [prompt], **kw)
        assert (g.tokens, g.ended) == (alone.tokens, alone.ended)
        assert g.token_logprobs == pytest.approx(alone.token_logprobs, abs=1e-5)


class Counter(nn.Module):
    """A scripted 'model': after token x it almost surely writes x + 1, so each row ends at a known step."""

    def __init__(self, vocab=6):
        super().__init__()
        self.config = get_config("tiny", vocab_size=vocab, block_size=32)
        self.unused = nn.Parameter(torch.zeros(()))  # tells generate the device
        self.calls = 0

    def new_cache(self, batch_size):
        return type("Cache", (), {"length": 0, "reorder": lambda self, index: None})()

    def forward(self, idx, cache=None):
        self.calls += 1
        if cache is not None:
            cache.length += idx.size(1)
        return 10.0 * F.one_hot((idx + 1) % self.config.vocab_size, self.config.vocab_size).float()


def test_an_ended_row_stops_and_the_batch_stops_when_every_row_has():
    model, end = Counter(vocab=6), 5
    lp = -math.log(1 + 5 * math.exp(-10))  # log-prob of the scripted token
    gens = generate(model, [[0], [3], [4]], max_new_tokens=10, end_id=end)
    assert [g.tokens for g in gens] == [[1, 2, 3, 4], [4], []]
    assert all(g.ended for g in gens)
    assert [len(g.token_logprobs) for g in gens] == [5, 2, 1]
    assert gens[0].token_logprobs == pytest.approx([lp] * 5, abs=1e-6)  # float32
    # the prompt, then steps until the batch asks whether every row has ended (every END_CHECK tokens): all had
    # after 5 tokens, the question comes after END_CHECK, and that last token needs no forward
    assert END_CHECK == 8 and model.calls == END_CHECK

    cut = generate(model, [[0], [3]], max_new_tokens=3, end_id=end)
    assert (cut[0].tokens, cut[0].ended, len(cut[0].token_logprobs)) == ([1, 2, 3], False, 3)
    assert (cut[1].tokens, cut[1].ended) == ([4], True)


def test_a_sampled_batch_draws_random_numbers_only_while_a_row_still_writes(monkeypatch):
    """Sampling asks "has every row ended?" every token (greedy asks every END_CHECK): an idle step would still
    draw from the generator and shift every later sample of the same seed (the main job's T = 1 samples of the
    test prompts are drawn chunk after chunk from one seed)."""
    draws = []
    real = torch.multinomial
    monkeypatch.setattr(torch, "multinomial", lambda *a, **k: draws.append(1) or real(*a, **k))
    model = tiny(std=0.6)
    for seed in range(20):  # a batch that ends between two of greedy's checks, well before the limit
        draws.clear()
        gens = generate(model, PROMPTS, max_new_tokens=28, end_id=END, method="sample", temperature=2.0, seed=seed)
        needed = max(len(g.tokens) + 1 for g in gens)  # the steps until the last row wrote its end token
        if all(g.ended for g in gens) and needed % END_CHECK:
            break
    assert all(g.ended for g in gens) and needed % END_CHECK, "no seed gave a batch that ends between checks"
    assert len(draws) == needed  # one draw per step the batch needed, no idle step


def test_generate_leaves_the_training_mode_as_it_found_it():
    model = tiny().train()
    generate(model, PROMPTS, max_new_tokens=2, end_id=END)
    assert model.training


# -- arguments ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kw, message", [
    (dict(method="nucleus"), "unknown decoding method"),
    (dict(method="sample", temperature=0.0), "temperature must be > 0"),
    (dict(method="sample", top_k=0), "top_k must be >= 1"),
    (dict(method="greedy", temperature=0.7), "apply to method='sample' only"),
    (dict(method="beam", beam_size=0), "beam_size must be >= 1"),
    (dict(method="greedy", beam_size=4), "apply to method='beam' only"),
    (dict(method="beam", beam_size=2, num_return=3), "num_return=3 is more than beam_size=2"),
    (dict(method="greedy", num_return=2), "num_return must be 1"),
    (dict(max_new_tokens=0), "max_new_tokens must be >= 1"),
    (dict(max_new_tokens=30), "has 3 tokens; with max_new_tokens=30 that is 33 > the model's context block_size=32"),
    (dict(end_id=V), f"end_id {V} out of range"),
    (dict(prompts=[[1], []]), "prompt 1 is empty"),
    (dict(prompts=[[1, V]]), f"prompt 0 holds token id {V}"),
    (dict(batch_size=0), "batch_size must be >= 1"),
])
def test_bad_arguments_raise_a_clear_error(kw, message):
    args = {**dict(prompts=PROMPTS, max_new_tokens=4, end_id=END), **kw}
    with pytest.raises(ValueError, match=re.escape(message)):
        generate(tiny(), args.pop("prompts"), **args)


# -- text in, text out; the benchmark ----------------------------------------------------------------------

class FakeTokenizer:
    vocab_size, end_id = V, END

    def render_prompt(self, text):
        return [0] + [1 + ord(c) % 9 for c in text] + [10]

    def decode(self, ids):
        return " ".join(map(str, ids))


def test_generate_text_renders_prompts_and_decodes_answers():
    model = varied()
    texts = generate_text(model, FakeTokenizer(), ["hi", "hello"], max_new_tokens=6)
    ids = generate(model, [FakeTokenizer().render_prompt(t) for t in ["hi", "hello"]], max_new_tokens=6, end_id=END)
    for t, g in zip(texts, ids):
        assert t.tokens == g.tokens and t.text == " ".join(map(str, g.tokens))
    beams = generate_text(model, FakeTokenizer(), ["hi"], max_new_tokens=6, method="beam", beam_size=2, num_return=2)
    assert all(g.text is not None for g in flat(beams))


def test_bench_generation_reports_both_paths():
    r = bench_generation(tiny(), batch_size=4, prompt_len=3, new_tokens=5)
    assert r["same_tokens"] and r["cache_tokens_per_s"] > 0 and r["full_tokens_per_s"] > 0
    assert r["speedup"] == pytest.approx(r["cache_tokens_per_s"] / r["full_tokens_per_s"])


@pytest.mark.parametrize("method", ["greedy", "beam"])
def test_decoding_waits_for_the_device_once_per_end_check_not_per_token(monkeypatch, method):
    """A host sync (bool / item / tolist of a tensor) waits for the GPU. Decoding 24 tokens asks every
    END_CHECK tokens whether to stop and copies the answers out once: a handful of syncs, not a few per token."""
    model, calls = tiny(std=1.0), []
    for name in ("__bool__", "item", "tolist"):
        real = getattr(torch.Tensor, name)
        monkeypatch.setattr(torch.Tensor, name,
                            lambda self, *a, _real=real, _n=name: calls.append(_n) or _real(self, *a))
    kw = {"beam_size": 3, "num_return": 2} if method == "beam" else {}
    generate(model, [[1, 2, 3]] * 4, max_new_tokens=24, end_id=END, method=method, **kw)
    assert len(calls) <= 24 // END_CHECK + 5, calls
