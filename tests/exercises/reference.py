"""The reference answers to lessons/workbook.py: minikd's own code behind the workbook's signatures.

Without `--workbook`, `pytest tests/exercises` grades this file, so CI shows that the exercise tests
pass on correct code -- and, because most answers here call minikd itself (Tokenizer.render,
data.collate, losses.masked_nll / kd_loss / softmax_t, train.get_lr, generate.generate,
kd_cost.storage_costs, seqkd.filter_records, report.mean_std, ...), that the library the lessons
use is what the tests call correct.

The known-wrong implementations in wrong/ start with `from tests.exercises.reference import *` and
redefine one function, so the names imported here (torch, F, IGNORE_INDEX, collate, masked_nll, ...)
are theirs too. A learner stuck on an exercise may read the answer here; the workbook says so.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import regex
import torch
import torch.nn.functional as F  # noqa: F401  (for wrong/*.py)

from minikd.data import IGNORE_INDEX, SFTData, collate
from minikd.seqkd import DROP_REASONS, filter_records
from minikd.generate import generate
from minikd.kd_cost import storage_costs
from minikd.losses import kd_loss, masked_nll, n_answer_tokens, softmax_t
from minikd.model import GPT
from minikd.planted import repeat_shares
from minikd.verdict import paired
from minikd.verdict import mean_std
from minikd.world import verify
from minikd.tokenizer import Tokenizer
from minikd.traces import first_wrong_step
from minikd.train import TrainConfig, get_lr, load_checkpoint

# ---------------------------------------------------------------------------------------------------
# Lesson 1 -- tokens, the template, the mask
# ---------------------------------------------------------------------------------------------------


def ex01_render_with_mask(tok, prompt: str, response: str) -> tuple[list[int], list[int]]:
    return tok.render(prompt, response)


def ex02_encode_user_text(enc, text: str) -> list[int]:
    return enc.encode_ordinary(text)  # never looks for special tokens


def ex03_number_chunks(numbers: list[int], pattern: str) -> set[str]:
    return {chunk for n in numbers for chunk in regex.findall(pattern, str(n))}


def ex04_check_tokenizer(ckpt: dict, tok) -> None:
    # minikd checks this when it loads a checkpoint file: load_checkpoint(path, expect_fingerprint=...).
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.pt"
        torch.save(ckpt, path)
        load_checkpoint(path, expect_fingerprint=tok.fingerprint)  # CheckpointError is a ValueError


# ---------------------------------------------------------------------------------------------------
# Lesson 2 -- the GPT
# ---------------------------------------------------------------------------------------------------


def ex05_causal_mask(T: int) -> torch.Tensor:
    return torch.ones(T, T, dtype=torch.bool).tril()  # row = query, column = key


def ex06_count_params(config) -> int:
    return GPT(config).num_params()


# ---------------------------------------------------------------------------------------------------
# Lesson 3 -- the training loop
# ---------------------------------------------------------------------------------------------------


def ex07_lr_at(step: int, lr: float, warmup: int, steps: int, min_lr_ratio: float) -> float:
    return get_lr(step, TrainConfig(lr=lr, warmup=warmup, steps=steps, min_lr_ratio=min_lr_ratio))


def ex08_accumulated_loss(micro_logits: list[torch.Tensor], micro_targets: list[torch.Tensor]) -> torch.Tensor:
    total = sum(masked_nll(z, y, reduction="sum") for z, y in zip(micro_logits, micro_targets))
    n = sum(n_answer_tokens(y) for y in micro_targets)
    return total / max(n, 1)


def ex09_batch_indices(n_examples: int, batch_size: int, seed: int, step: int) -> list[int]:
    return SFTData(list(range(n_examples)), pad_id=0, batch_size=batch_size, seed=seed).sample_indices(step).tolist()


# ---------------------------------------------------------------------------------------------------
# Lesson 4 -- response masking
# ---------------------------------------------------------------------------------------------------


def ex10_collate(examples: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    return collate(examples, pad_id)


def ex11_masked_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return masked_nll(logits, targets)


def ex12_answer_logprob(model, ids: list[int], mask: list[int]) -> float:
    batch = collate([(ids, mask)], pad_id=0)  # one row: no padding
    with torch.no_grad():
        return -float(masked_nll(model(batch["inputs"]), batch["targets"], reduction="sum"))


# ---------------------------------------------------------------------------------------------------
# Lesson 5 -- train the teacher
# ---------------------------------------------------------------------------------------------------


def ex13_accuracy(records: list[dict], outputs: list[tuple[str, bool]]) -> dict:
    # The same scoring as minikd.evaluate.accuracy, without the decoding.
    by_task: dict[str, list[bool]] = {}
    for record, (text, ended) in zip(records, outputs, strict=True):
        by_task.setdefault(record["task"], []).append(bool(ended and verify(record["prompt"], text)))
    correct = [c for v in by_task.values() for c in v]
    return {"acc": sum(correct) / max(1, len(correct)),
            "acc_by_task": {t: sum(v) / len(v) for t, v in sorted(by_task.items())}}


# ---------------------------------------------------------------------------------------------------
# Lesson 6 -- token-level (word-level) KD
# ---------------------------------------------------------------------------------------------------


def ex14_softmax_t(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    return softmax_t(logits, temperature)


def ex15_kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
                 temperature: float, alpha: float) -> torch.Tensor:
    return kd_loss(student_logits, teacher_logits, targets, temperature=temperature, alpha=alpha)


def ex16_word_level_target(teacher_logits: torch.Tensor, targets: torch.Tensor, temperature: float) -> torch.Tensor:
    return softmax_t(teacher_logits[targets != IGNORE_INDEX], temperature)  # (T, V) -> (n_answer, V)


# ---------------------------------------------------------------------------------------------------
# Lesson 7 -- what token-level KD costs
# ---------------------------------------------------------------------------------------------------


def ex17_storage_bytes(n_answer_tokens: int, vocab_size: int, k: int, text: str) -> dict[str, int]:
    # storage_costs takes rendered examples; one with n answer targets and the given answer text.
    example = {"ids": [0] * (n_answer_tokens + 1), "mask": [0] + [1] * n_answer_tokens, "completion": text}
    rows = storage_costs([example], vocab_size, ks=(k,))
    full32, full16, topk, seq_text = (int(r["total_bytes"]) for r in rows)
    return {"full_fp32": full32, "full_fp16": full16, "topk": topk, "text": seq_text}


# ---------------------------------------------------------------------------------------------------
# Lesson 8 -- sequence-level KD
# ---------------------------------------------------------------------------------------------------


def ex18_sequence_level_target(ids: list[int], mask: list[int]) -> list[int]:
    return [i for i, m in zip(ids, mask) if m == 1]


def ex19_greedy_decode(model, prompt_ids: list[int], max_new_tokens: int, end_id: int) -> tuple[list[int], bool]:
    g = generate(model, [prompt_ids], max_new_tokens=max_new_tokens, end_id=end_id, method="greedy")[0]
    return g.tokens, g.ended


def ex20_build_su_dataset(records: list[dict], teacher_fn) -> list[dict]:
    out = []
    for record in records:
        text, ended = teacher_fn(record["prompt"])  # u = teacher(s), once per prompt
        out.append({**record, "completion": text, "ended": bool(ended), "source": "teacher"})
    return out


def ex21_seq_kd_step(student, optimizer, tok, records: list[dict]) -> float:
    batch = collate([tok.render(r["prompt"], r["completion"]) for r in records], tok.pad_id)
    student.train()
    loss = masked_nll(student(batch["inputs"]), batch["targets"])  # -log p(u | s) per answer token
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


# ---------------------------------------------------------------------------------------------------
# Lesson 9 -- curation
# ---------------------------------------------------------------------------------------------------


def ex22_filter_records(records: list[dict], verify_fn) -> tuple[list[dict], Counter]:
    # minikd.seqkd.filter_records with the exercise's two checks (minikd's drop_reason also checks empty
    # and too-long answers, which need a tokenizer and a context size).
    def reason(record: dict) -> str | None:
        if record.get("ended") is False:
            return "truncated"
        return None if verify_fn(record["prompt"], record["completion"]) else "incorrect"

    kept, counts = filter_records(records, reason)
    return kept, Counter({why: counts[why] for why in DROP_REASONS if counts[why]})


# ---------------------------------------------------------------------------------------------------
# Lesson 10 -- the showdown
# ---------------------------------------------------------------------------------------------------


def ex23_mean_and_spread(values: list[float]) -> tuple[float, float]:
    return mean_std(list(values))



def ex24_paired_interval(a: list[float], b: list[float]) -> tuple[float, float, float]:
    iv = paired(list(a), list(b))
    return iv.mean, iv.lo, iv.hi


# ---------------------------------------------------------------------------------------------------
# Lesson 11 -- what sequence-level KD loses
# ---------------------------------------------------------------------------------------------------
from minikd.what_seqkd_loses import answer_entropy_kl, first_divergence  # noqa: E402  (this section's answers)


def ex25_entropy_and_kl(student_logits, teacher_logits, targets) -> tuple[torch.Tensor, torch.Tensor]:
    return answer_entropy_kl(student_logits, teacher_logits, targets)


def ex26_first_divergence(a: list[int], b: list[int]) -> int | None:
    return first_divergence(list(a), list(b))


# ---------------------------------------------------------------------------------------------------
# Lesson 12 -- distilled errors
# ---------------------------------------------------------------------------------------------------


def ex27_repeat_shares(prompts: list[str], outputs: list[str], pair: tuple[int, int], quirk: str) -> tuple[float, float]:
    return repeat_shares(list(prompts), list(outputs), tuple(pair), quirk)


# ---------------------------------------------------------------------------------------------------
# Lesson 13 -- on-policy distillation
# ---------------------------------------------------------------------------------------------------

from minikd.on_policy import Compute, on_policy_loss  # noqa: E402  (this section's answers)


def ex28_reverse_kl_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                         targets: torch.Tensor) -> torch.Tensor:
    return on_policy_loss(student_logits, teacher_logits, targets) / max(n_answer_tokens(targets), 1)


def ex29_matched_seq_kd_steps(on_policy: dict, seq_kd_tokens: list[int], n_student: int, n_teacher: int) -> int:
    budget = Compute(**on_policy).flops(n_student, n_teacher)
    spent, steps = 0.0, 0
    while spent < budget:
        spent += Compute(student_forward=seq_kd_tokens[steps], student_backward=seq_kd_tokens[steps]).flops(n_student, 0)
        steps += 1
    return steps


# ---------------------------------------------------------------------------------------------------
# Lesson 14 -- reasoning traces
# ---------------------------------------------------------------------------------------------------


def ex30_first_wrong_step(prompt: str, response: str) -> int | None:
    return first_wrong_step(prompt, response)


# ---------------------------------------------------------------------------------------------------
# Lesson 16 -- another tokenizer, and ULD
# ---------------------------------------------------------------------------------------------------

from minikd.uld import uld_distance, uld_loss  # noqa: E402  (this section's answers)


def ex31_retokenize(teacher_tok, student_tok, ids: list[int], mask: list[int]) -> tuple[list[int], list[int]]:
    cut = ids.index(teacher_tok.response_id)
    prompt = teacher_tok.decode(ids[1:cut])
    answer = teacher_tok.decode([i for i, m in zip(ids, mask) if m and i != teacher_tok.end_id])
    return student_tok.render(prompt, answer)


def ex32_uld_distance(p_student: torch.Tensor, p_teacher: torch.Tensor) -> torch.Tensor:
    return uld_distance(p_student, p_teacher)


def ex33_uld_loss(student_logits: torch.Tensor, targets: torch.Tensor, teacher_probs: list[torch.Tensor],
                  weight: float) -> torch.Tensor:
    return uld_loss(student_logits, targets, [p.detach() for p in teacher_probs], weight)
