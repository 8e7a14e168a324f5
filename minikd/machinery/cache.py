"""Settings-keyed caches (machinery around the lessons; a learner need not read it).

One rule for every artefact that is expensive to make (a trained teacher, a student's results): reuse it
only when the settings it was made with equal the settings wanted now; otherwise make it again and record
the settings with it. A cache that only asks "does the file exist?" would quietly hand back a teacher
trained on other data or for fewer steps.

    checkpoint   meta["settings"]      cached_model(path, settings, build, tok, device, label)
                                       (the device type and dtype join the settings: device_settings)
    result JSON  its "settings" key    cached_json(path, settings, compute, label)
                                       (or load_cached_json + save_cached_json when the work runs elsewhere)
    top-k store  <store>.settings.json cached_topk_store(teacher, examples, tok, k, path)
                 (tokenizer, k, the examples' fingerprint, the teacher's device type)

Settings are compared after a JSON round trip (settings_key): a tuple in memory equals the list read back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from minikd.data import DatasetError, examples_fingerprint, read_json_object
from minikd.device import device_policy
from minikd.runtime import atomic_write_text, get_device, what_differs
from minikd.train import CheckpointError, load_model, save_checkpoint


def settings_key(settings: Any) -> Any:
    """`settings` as it reads back from JSON (tuples become lists, keys strings), so that the settings built
    now compare equal to the ones stored. A value JSON cannot hold (an object, NaN) is an error here, not a
    key that never matches."""
    return json.loads(json.dumps(settings, allow_nan=False))


def device_settings(settings: dict, device: str = "auto") -> dict:
    """`settings` with the device type and dtype a model trained on `device` uses ("cuda/bf16", "cpu/fp32"):
    a model trained on another device or in another precision is another artefact, never reused."""
    return {**settings, "device": device_policy(device).key}


def matches(meta: dict | None, settings: Any) -> bool:
    """Was the artefact whose metadata is `meta` made with `settings`? (runtime.what_differs, the one
    comparison.) No metadata means no."""
    return isinstance(meta, dict) and not what_differs(meta.get("settings"), settings_key(settings))


def cached_model(path, settings: Any, build: Callable, tok, device: str = "auto", label: str = "model",
                 rebuild: bool = False):
    """The model checkpointed at `path` if it was made with `settings`; else build it, save it there and
    return it. Returns (model in eval mode on `device`, meta dict with "history" added).

    build() -> (model, meta_extra, history) trains a fresh model (without writing to `path` itself: a
    half-trained checkpoint there would carry the settings too). The checkpoint gets meta
    {**meta_extra, "settings": settings_key(settings)}, the history, and step = len(history).
    `rebuild=True` ignores what is there. A checkpoint for another tokenizer, or an unreadable one, is
    rebuilt, with the reason printed.
    """
    path = Path(path)
    key = settings_key(device_settings(settings, device))
    if path.exists() and not rebuild:
        try:
            model, ckpt = load_model(path, tok, device=device)
            if matches(ckpt["meta"], key):
                print(f"{label}: loaded cached {path}")
                return model, {**ckpt["meta"], "history": ckpt["history"]}
            print(f"{label}: {path} was made with other settings; rebuilding")
        except CheckpointError as e:
            print(f"{label}: cannot reuse {path} ({e}); rebuilding")
    model, meta_extra, history = build()
    meta = {**meta_extra, "settings": key}
    save_checkpoint(path, model, step=len(history), fingerprint=tok.fingerprint, meta=meta, history=history)
    return model.to(get_device(device)).eval(), {**meta, "history": history}


def load_cached_json(path, settings: Any, label: str | None = None) -> dict | None:
    """The result stored at `path` if its "settings" equal `settings`; None when it is missing, made with
    other settings, or unreadable (then `label`, if given, prints why it will be made again)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        result = read_json_object(path)
    except DatasetError as e:
        if label:
            print(f"{label}: cannot reuse it ({e}); rebuilding")
        return None
    if matches(result, settings):
        if label:
            print(f"{label}: loaded cached {path}")
        return result
    if label:
        print(f"{label}: {path} was made with other settings; rebuilding")
    return None


def save_cached_json(path, settings: Any, result: dict) -> dict:
    """Write `result` with a "settings" key to `path` atomically; return what was written."""
    record = {**result, "settings": settings_key(settings)}
    atomic_write_text(path, json.dumps(record, indent=1) + "\n")
    return record


def cached_json(path, settings: Any, compute: Callable[[], dict], label: str | None = None) -> dict:
    """compute() -> dict, run only when `path` does not already hold its result for `settings`.
    The result is saved with a "settings" key (see save_cached_json) and returned with it."""
    cached = load_cached_json(path, settings, label)
    if cached is not None:
        return cached
    return save_cached_json(path, settings, compute())


def cached_topk_store(teacher, examples: list[dict], tok, k: int, path) -> tuple[dict, bool]:
    """The teacher's top-k store (word_kd, T = 1) of `examples` at `path`: read back when its settings sidecar
    (`<path>.settings.json`) says it was made by this tokenizer, at this k, from exactly these examples
    (data.examples_fingerprint: the same prompts and answers, not merely as many) on the teacher's device type;
    else built (the teacher's forward pass) and saved, the sidecar written after the store. Returns (store, built)."""
    from minikd.word_kd import TopkStoreError, build_topk_store, load_topk_store, store_device
    settings = {"tokenizer": tok.fingerprint, "k": k, "temperature": 1.0, "examples": examples_fingerprint(examples),
                "n_examples": len(examples), "device": store_device(teacher)}
    sidecar = Path(str(path) + ".settings.json")
    if load_cached_json(sidecar, settings) is not None:
        try:
            return load_topk_store(path, expect_fingerprint=tok.fingerprint, expect_examples=examples,
                                   expect_device=store_device(teacher)), False
        except TopkStoreError as e:  # missing, unreadable, or made from other data: (re)build it
            print(f"  top-k store {Path(path).name}: {e}; rebuilding it")
    sidecar.unlink(missing_ok=True)  # a store being rebuilt has no settings until it is complete
    store = build_topk_store(teacher, examples, tok.pad_id, k=k, temperature=1.0, path=path,
                             fingerprint=tok.fingerprint)
    save_cached_json(sidecar, settings, {"store": Path(path).name})
    return store, True
