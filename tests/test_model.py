"""The hand-written GPT: shapes, the attention math against the fused kernel, the KV cache, presets."""

import pytest
import torch

from minikd.model import GPT, PRESETS, attention_fast, attention_math, check_vocab, get_config


def tiny(**kw):
    torch.manual_seed(0)
    return GPT(get_config("tiny", vocab_size=50, **kw)).eval()


def test_forward_returns_float32_logits_at_every_position():
    model = tiny()
    idx = torch.randint(0, 50, (3, 7))
    logits = model(idx)
    assert logits.shape == (3, 7, 50) and logits.dtype == torch.float32


def test_attention_math_equals_fused_kernel_fresh_and_after_a_cache():
    torch.manual_seed(0)
    for start, T in [(0, 6), (4, 1), (4, 3)]:
        q = torch.randn(2, 3, T, 8)
        k, v = torch.randn(2, 3, start + T, 8), torch.randn(2, 3, start + T, 8)
        torch.testing.assert_close(attention_math(q, k, v, start), attention_fast(q, k, v, start))


def test_model_with_math_attention_equals_model_with_sdpa():
    a, b = tiny(sdpa=True), tiny(sdpa=False)
    b.load_state_dict(a.state_dict())
    idx = torch.randint(0, 50, (2, 9))
    torch.testing.assert_close(a(idx), b(idx), rtol=1e-5, atol=1e-5)


def test_causality_future_tokens_do_not_change_past_logits():
    model = tiny()
    idx = torch.randint(0, 50, (1, 8))
    changed = idx.clone()
    changed[0, 5:] = (changed[0, 5:] + 1) % 50
    torch.testing.assert_close(model(idx)[:, :5], model(changed)[:, :5])


@pytest.mark.parametrize("sdpa", [True, False])
def test_kv_cache_gives_the_same_logits_as_the_full_forward(sdpa):
    model = tiny(sdpa=sdpa)
    idx = torch.randint(0, 50, (2, 10))
    full = model(idx)
    cache = model.new_cache(batch_size=2)
    pieces = [model(idx[:, :4], cache)]  # a prompt of 4 tokens at once ...
    for t in range(4, 10):  # ... then one token at a time
        pieces.append(model(idx[:, t:t + 1], cache))
    assert cache.length == 10
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, rtol=1e-5, atol=1e-5)


def test_cache_reorder_keeps_the_chosen_rows():
    model = tiny()
    idx = torch.randint(0, 50, (3, 5))
    cache = model.new_cache(3)
    model(idx, cache)
    cache.reorder(torch.tensor([2, 2, 0]))
    nxt = torch.randint(0, 50, (3, 1))
    out = model(nxt, cache)[:, -1]
    ref = model(torch.cat([idx[[2, 2, 0]], nxt], dim=1))[:, -1]
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_too_long_sequence_is_a_clear_error():
    model = tiny()
    with pytest.raises(ValueError, match="longer than the model's context"):
        model(torch.zeros(1, model.config.block_size + 1, dtype=torch.long))


def test_unknown_preset_and_bad_config_are_clear_errors():
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        get_config("huge", vocab_size=10)
    with pytest.raises(ValueError, match="not divisible"):
        get_config("tiny", vocab_size=10, n_head=3)


def test_vocab_mismatch_is_a_clear_error():
    class Tok:
        vocab_size = 51
    with pytest.raises(ValueError, match="vocabulary mismatch"):
        check_vocab(Tok(), tiny())


def test_teacher_has_several_times_the_students_parameters_and_tied_embeddings():
    t = GPT(get_config("teacher", vocab_size=512))
    s = GPT(get_config("student", vocab_size=512))
    assert t.num_params() >= 3 * s.num_params()
    assert t.lm_head.weight is t.wte.weight
    # 6N rule with N = all parameters but the position table
    assert t.flops_per_token() == 6 * (t.num_params() - t.wpe.weight.numel())
    assert set(PRESETS) >= {"tiny", "student", "teacher"}
