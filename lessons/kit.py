"""The lesson kit: the few calls a lesson makes to get its data, a trained teacher and its students.

Each call trains what it needs the first time and caches it under runs/<profile>/ (keyed by its settings),
so later lessons and the main job reuse it. What happens inside (caches, the profile's settings, labelling
jobs, the main job) is the machinery's business (minikd/machinery/); a lesson reads only these names.
"""

import json
import time
from pathlib import Path

from minikd.charts import ascii_chart, save_line_plot
from minikd.data import examples_fingerprint, read_jsonl
from minikd.evaluate import SLACK, accuracy, answer_limit, answer_nll
from minikd.machinery import cli
from minikd.machinery.cache import cached_model, cached_topk_store
from minikd.machinery.labelling import generate_dataset, teacher_fingerprint
from minikd.machinery.rendering import save_lesson
from minikd.machinery.stages import (Profile, get_profile, get_teacher, load_split, profile_dir, prompt_records,
                                     student_on, teacher_greedy, train_model, train_student, usable_answers)
from minikd.machinery.students import showdown_students, word_kd_choice
from minikd.seqkd import as_examples
from minikd.what_seqkd_loses import form_entropy_bits
from minikd.word_kd import kl_by_example, topk_mass

__all__ = [  # the setup a lesson asks for, then the kit's own calls
    "Profile", "get_profile", "get_teacher", "load_split", "profile_dir", "student_on", "train_model", "SLACK",
    "answer_limit", "form_entropy_bits", "prompt_records", "teacher_greedy", "word_kd_choice", "usable_answers",
    "save_lesson", "showdown_students",
    "train_student", "weak_teacher", "teacher_answers", "teacher_sorted_topk", "label_to_file", "run_main_job",
    "draw", "score_against_teacher"]


def label_to_file(teacher, tok, prompts: list[dict], path: Path, teacher_ckpt, limit: int | None) -> Path:
    """u = teacher(s), greedy, for every prompt, stored as JSONL at `path` with its sidecar (the settings it was
    made with); a finished file made the same way is reused, one made otherwise is started over."""
    return generate_dataset(teacher, tok, prompts, path, teacher_ckpt=teacher_ckpt, stale="restart",
                            max_new_tokens=limit)


def run_main_job(fast: bool, device: str = "auto", seeds: int | None = None, full: bool = False) -> dict:
    """The main job, exactly as the command `minikd` runs it (lesson 10): every cached stage reused; returns its
    results (results.json)."""
    argv = ["run", "--device", device] + (["--seeds", str(seeds)] if seeds else [])
    cli.main(argv + (["--full"] if full else []) + (["--quick"] if fast else []))
    return json.loads((profile_dir(get_profile("quick" if fast else "default")) / "results.json").read_text())


def draw(path: Path, series: dict, xlabel: str, ylabel: str, title: str, height: int = 10, hline=None,
         width: int = 60) -> None:
    """A chart in the terminal (always), and as a PNG at `path` when matplotlib is installed."""
    print(ascii_chart(series, width=width, height=height, xlabel=xlabel, ylabel=ylabel, hline=hline))
    png = save_line_plot(path, series, xlabel, ylabel, title)
    if png:
        print(f"  (also drawn to {png})")


def score_against_teacher(models: dict, teacher, tok, test_set: list[dict]) -> dict:
    """Per model: test accuracy (per prompt and per family), KL(teacher || model) per answer token (per prompt
    and overall) and the NLL of the test answers."""
    results = {}
    for name, model in models.items():
        acc = accuracy(model, tok, test_set)
        kl_rows = kl_by_example(teacher, model, test_set, tok.pad_id)  # (KL sum, positions) per prompt
        results[name] = {"acc": acc["acc"], "acc_by_task": acc["acc_by_task"], "correct": acc["correct"],
                         "kl_by_prompt": [kl / max(n, 1) for kl, n in kl_rows],
                         "kl_to_teacher": sum(kl for kl, _ in kl_rows) / max(sum(n for _, n in kl_rows), 1),
                         "nll_gt": answer_nll(model, test_set, tok.pad_id)}
    return results


def weak_teacher(profile, tok, device: str, seed: int):
    """The teacher preset after half of the real teacher's steps (lesson 9: a teacher worth curating), cached at
    runs/<profile>/teacher_weak.pt. Returns (model, its checkpoint path, its steps)."""
    steps = max(1, profile.teacher_steps // 2)
    settings = {"profile": profile.teacher_key(), "steps": steps, "seed": seed}

    def build():
        print(f"weak teacher: the {profile.teacher_preset} preset, {steps} of {profile.teacher_steps} steps")
        model, history = train_model(profile.teacher_config(tok.vocab_size), load_split("train", profile, tok),
                                     steps, profile, lr=profile.teacher_lr, seed=seed, device=device, tok=tok)
        return model, {}, history

    path = profile_dir(profile) / "teacher_weak.pt"
    model, _ = cached_model(path, settings, build, tok, device=device, label="weak teacher")
    return model, path, steps


def teacher_sorted_topk(teacher, tok, records: list[dict], name: str, profile: Profile, k: int) -> dict:
    """ULD's teacher side (lesson 16): the teacher reads the answers in ITS tokens, once; its top-k probabilities
    at every answer position are stored (runs/<profile>/, reused while teacher, k and answers are the same).
    The students never load the teacher."""
    examples = as_examples(records, tok)
    answers = examples_fingerprint(records)  # the same answers, the same file
    path = profile_dir(profile) / f"l16_uld_{name}_top{k}_{teacher_fingerprint(teacher)}_{answers[:12]}.pt"
    t0 = time.perf_counter()
    store, built = cached_topk_store(teacher, examples, tok, k, path)  # the teacher's forward pass, once
    how = f"computed and stored in {path.name}" if built else f"read back from {path.name}"
    n = store["ids"].shape[0]
    print(f"  {name}: {n:,} teacher answer positions, {how} ({time.perf_counter() - t0:.1f} s); top {k} kept "
          f"(mass {100 * topk_mass(store):.2f} %), {n * k * 2 / 1e6:.2f} MB of fp16 (all {teacher.config.vocab_size}: "
          f"{n * teacher.config.vocab_size * 2 / 1e6:.1f} MB); ULD reads the probabilities, never the ids")
    return store


def teacher_answers(profile: Profile, teacher, tok, student_tok=None) -> tuple[Path, list[dict], list[dict], dict]:
    """The teacher's stored greedy answers to the training prompts (the main job's file, made once) and the ones
    a student (of `student_tok`) trains on: cut-off and too-long answers dropped, wrong ones kept (plain seq-KD
    copies the teacher's errors too). A --fast teacher that never stops leaves none: then all are kept, so the
    same path runs (counts["kept"] == 0 says so). Returns (the file's path, all, kept, counts)."""
    path = teacher_greedy(profile, teacher, tok, "train")
    raw = list(read_jsonl(path))
    kept, counts = usable_answers(raw, student_tok or tok, profile.block_size)
    return path, raw, kept, counts
