"""Lesson 2 exercises: the causal mask, and counting a GPT's parameters."""

import torch

from minikd.model import GPT, GPTConfig, get_config


def test_ex05_causal_mask_values(wb):
    m = wb.ex05_causal_mask(4)
    want = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool)
    assert tuple(m.shape) == (4, 4)
    assert m.dtype == torch.bool, f"a mask is bool (True = may attend), got {m.dtype}"
    assert torch.equal(m, want), f"row i = query position i may see keys 0..i; got\n{m.int()}"


def test_ex05_query_3_sees_positions_0_to_3(wb):
    m = wb.ex05_causal_mask(6)
    assert m[3].nonzero().flatten().tolist() == [0, 1, 2, 3], \
        "the query at position 3 may attend to positions 0, 1, 2, 3 -- never to the future"
    assert m[0].nonzero().flatten().tolist() == [0], "the first position sees only itself"


def test_ex06_count_by_hand(wb):
    # V=10, block 8, C=4, one layer: wte 40 + wpe 32 + block 244 + ln_f 8 = 324 (lm_head is tied to wte)
    cfg = GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=1, n_embd=4)
    got = wb.ex06_count_params(cfg)
    assert got == 324, f"got {got}; if it is 364, the output layer was counted again: it IS the token embedding"


def test_ex06_matches_the_presets(wb):
    for name in ("tiny", "student", "teacher"):
        cfg = get_config(name, vocab_size=297)
        want = GPT(cfg).num_params()
        got = wb.ex06_count_params(cfg)
        assert got == want, f"preset {name!r}: {got} parameters, the model has {want}"
