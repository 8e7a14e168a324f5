"""minikd.machinery.cache: an artefact is reused only when it was made with the same settings; anything else
(other settings, an unreadable file) is rebuilt, and says why."""

import json

import pytest
import torch

from minikd.machinery.cache import cached_json, cached_model, load_cached_json, matches, settings_key
from minikd.model import GPT, get_config
from minikd.tokenizer import Tokenizer
from minikd.train import load_checkpoint

TOK = Tokenizer.default()


class Builder:
    """A build() for cached_model that counts its calls; each call gives a differently seeded model."""

    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1
        torch.manual_seed(self.calls)
        model = GPT(get_config("tiny", vocab_size=TOK.vocab_size))
        return model, {"train_seconds": 1.5}, [{"step": 0, "loss": 3.0}, {"step": 1, "loss": 2.0}]


def same_weights(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_settings_key_compares_as_json_reads_back():
    assert settings_key({"steps": 5, "overrides": (("n_embd", 32),)}) == {"steps": 5, "overrides": [["n_embd", 32]]}
    assert matches({"settings": {"a": [1, 2]}}, {"a": (1, 2)})
    assert not matches({"settings": {"a": [1, 2]}}, {"a": (1, 3)})
    assert not matches(None, {"a": 1}) and not matches({}, {"a": 1})
    with pytest.raises(ValueError):
        settings_key({"lr": float("nan")})  # NaN != NaN: such a key would never match


def test_cached_model_hit_miss_and_rebuild(tmp_path, capsys):
    path = tmp_path / "m.pt"
    build = Builder()
    first, meta = cached_model(path, {"steps": 2, "shape": (1, 2)}, build, TOK, device="cpu", label="teacher")
    assert build.calls == 1 and not first.training
    assert meta["settings"] == {"steps": 2, "shape": [1, 2], "device": "cpu/fp32"} and meta["train_seconds"] == 1.5
    assert len(meta["history"]) == 2 and load_checkpoint(path)["step"] == 2

    again, meta = cached_model(path, {"steps": 2, "shape": [1, 2]}, build, TOK, device="cpu", label="teacher")
    assert build.calls == 1 and same_weights(first, again) and meta["history"][-1]["loss"] == 2.0
    assert f"teacher: loaded cached {path}" in capsys.readouterr().out

    other, _ = cached_model(path, {"steps": 3, "shape": [1, 2]}, build, TOK, device="cpu", label="teacher")
    assert build.calls == 2 and not same_weights(first, other)
    assert f"teacher: {path} was made with other settings; rebuilding" in capsys.readouterr().out
    assert load_checkpoint(path)["meta"]["settings"]["steps"] == 3  # the new one replaced the old

    cached_model(path, {"steps": 3, "shape": [1, 2]}, build, TOK, device="cpu", label="teacher", rebuild=True)
    assert build.calls == 3


def test_cached_model_rebuilds_a_corrupt_checkpoint(tmp_path, capsys):
    path = tmp_path / "m.pt"
    path.write_bytes(b"half a checkpoint")
    build = Builder()
    cached_model(path, {"steps": 2}, build, TOK, device="cpu", label="weak teacher")
    assert build.calls == 1
    assert f"weak teacher: cannot reuse {path} (" in capsys.readouterr().out
    cached_model(path, {"steps": 2}, build, TOK, device="cpu", label="weak teacher")
    assert build.calls == 1  # what was rebuilt is a good checkpoint now


def test_cached_json_hit_miss_and_corrupt_file(tmp_path, capsys):
    path = tmp_path / "student.json"
    calls = []

    def compute():
        calls.append(1)
        return {"acc": 0.5 + len(calls)}

    assert cached_json(path, {"seed": 0}, compute) == {"acc": 1.5, "settings": {"seed": 0}}
    assert json.loads(path.read_text()) == {"acc": 1.5, "settings": {"seed": 0}}
    assert cached_json(path, {"seed": 0}, compute, label="student")["acc"] == 1.5 and len(calls) == 1
    assert "student: loaded cached" in capsys.readouterr().out

    assert cached_json(path, {"seed": 1}, compute, label="student")["acc"] == 2.5 and len(calls) == 2
    assert "made with other settings; rebuilding" in capsys.readouterr().out
    assert load_cached_json(path, {"seed": 0}) is None and load_cached_json(path, {"seed": 1})["acc"] == 2.5

    path.write_text('{"acc": 0.9, "sett')  # a file cut short
    assert cached_json(path, {"seed": 1}, compute, label="student")["acc"] == 3.5 and len(calls) == 3
    assert "student: cannot reuse" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["student.json"]  # written atomically, no .tmp left
