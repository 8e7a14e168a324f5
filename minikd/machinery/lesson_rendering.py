"""What lessons 11-15 found, kept on disk so the README can show it — written by code, never by hand.

The main job (`minikd`) fits in ten minutes on two cores; on-policy distillation (lesson 13) and reasoning
traces (lesson 14) take about three more minutes each, so they are their own commands, not rows of the main
job's table. Each of these lessons ends by calling `save(...)`: runs/<profile>/lessons/<lesson>.json then holds
its command, seeds, wall time, a table of its numbers and every claim it made WITH the numbers the claim was
decided from. `minikd readme` (minikd.machinery.rendering) re-decides each claim from those numbers (minikd.verdict.decide)
and writes the tables and sentences between the README's lessons markers.

    python -m lessons.l13_on_policy        # ... -> runs/default/lessons/l13_on_policy.json
    minikd readme                          # the README's results: the main job's and these lessons'
"""

from __future__ import annotations

import json
from pathlib import Path

from minikd.runtime import atomic_write_text, get_device, runs_dir
from minikd.charts import markdown_table
from minikd.verdict import Claim, decide

LESSONS = {  # module -> what its results are called in the README, in reading order
    "l11_what_seqkd_loses": "Lesson 11 — what sequence-level KD loses (lost alternatives, locked phrasing, "
                            "exposure bias)",
    "l12_distilled_errors": "Lesson 12 — the teacher's errors are distilled too",
    "l13_on_policy": "Lesson 13 — on-policy distillation from the seq-KD student, at equal compute",
    "l14_reasoning_traces": "Lesson 14 — reasoning traces vs final answers (DeepSeek-R1's recipe in miniature)",
    "l15_teacher_over_http": "Lesson 15 — the teacher over HTTP: labelling through minikd serve gives the stored answers",
    "l16_another_tokenizer": "Lesson 16 — a student with its own tokenizer, from the stored teacher text: ground truth "
                             "vs seq-KD vs ULD (Boizard et al. 2024)",
}
START, END = "<!-- lessons:start -->", "<!-- lessons:end -->"


def path_for(lesson: str, profile: str) -> Path:
    return runs_dir() / profile / "lessons" / f"{lesson}.json"


def claim_record(c: Claim) -> dict:
    """A claim as JSON: what it says and the numbers it was decided from (a fact: its truth and evidence)."""
    record = {"text": c.text, "expect": c.expect, "what": c.what, "unit": c.unit, "fast": c.fast,
              "verdict": c.verdict}
    if c.diff is None:
        return record | {"fact": bool(c.fact)}
    if c.inputs is None:
        raise ValueError(f"claim {c.text!r} has no inputs to save (make it with minikd.verdict.decide/claim)")
    b = c.inputs["b"]  # floats: JSON-safe whatever they were (bools, numpy scalars)
    b = float(b) if isinstance(b, (int, float)) else [float(x) for x in b]
    return record | {"a": [float(x) for x in c.inputs["a"]], "b": b, "scale": c.inputs["scale"]}


def claim_from_record(r: dict) -> Claim:
    """The claim again, its verdict decided anew from the saved numbers (a fact keeps its computed truth)."""
    if "fact" in r:
        return Claim(r["text"], "=", r["what"], None, "", fact=r["fact"], fast=r["fast"])
    return decide(r["text"], r["a"], r["b"], r["expect"], r["what"], r["scale"], r["unit"], r["fast"])


def save(lesson: str, args, claims: list[Claim], table: tuple[list[str], list[list]] | None = None,
         seconds: float | None = None, seeds: list[int] | None = None, notes: str = "") -> Path:
    """runs/<profile>/lessons/<lesson>.json (profile quick for --fast); returns the path.
    table: (header, rows) with the numbers pre-formatted; seeds: the seeds the lesson ran."""
    if lesson not in LESSONS:
        raise ValueError(f"unknown lesson {lesson!r}; known: {', '.join(LESSONS)}")
    profile = "quick" if args.fast else "default"
    record = {"lesson": lesson, "title": LESSONS[lesson], "profile": profile, "fast": bool(args.fast),
              "command": " ".join([f"python -m lessons.{lesson}", *getattr(args, "argv", ["--fast"] if args.fast else [])]),
              "seeds": seeds if seeds is not None else [getattr(args, "seed", 0)],
              "device": str(get_device(getattr(args, "device", "cpu"))), "seconds": seconds, "notes": notes,
              "table": {"header": table[0], "rows": table[1]} if table else None,
              "claims": [claim_record(c) for c in claims]}
    path = path_for(lesson, profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(record, indent=1) + "\n")
    print(f"  (results saved to {path}; `minikd readme` copies them into the README)")
    return path


def render_one(record: dict) -> str:
    """One lesson's block: heading, how it ran, its table, its claims decided anew."""
    took = f", {record['seconds'] / 60:.1f} min" if record.get("seconds") else ""
    seeds = f", seeds {record['seeds']}" if record.get("seeds") else ""
    parts = [f"**{record['title']}** (`{record['command']}`{seeds}{took}, device {record['device']})", ""]
    if record.get("notes"):
        parts += [record["notes"], ""]
    if record.get("table"):
        parts += [markdown_table(record["table"]["header"], record["table"]["rows"]), ""]
    parts += [f"- {claim_from_record(c).sentence()}" for c in record["claims"]]
    return "\n".join(parts)


def render(profile: str = "default") -> str:
    """Every saved lesson's block, in reading order; a lesson not run yet is named with its command."""
    blocks, missing = [], []
    for lesson in LESSONS:
        path = path_for(lesson, profile)
        if path.exists():
            blocks.append(render_one(json.loads(path.read_text())))
        else:
            missing.append(f"`python -m lessons.{lesson}`")
    if missing:
        blocks.append("Not run yet for this README: " + ", ".join(missing) + ".")
    return "\n\n".join(blocks)
