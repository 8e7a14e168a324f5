"""The workbook solved with plain Python and torch, from its docstrings and hints alone.

reference.py answers by calling minikd; this file calls none of minikd's graded functions. It passing
every exercise test shows that the tests ask for what the workbook says -- no detail that only minikd's
own implementation happens to have -- and that each exercise can be solved from the workbook.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import regex
import torch
import torch.nn.functional as F

from minikd.world import verify

IGNORE_INDEX = -100


def ex01_render_with_mask(tok, prompt: str, response: str) -> tuple[list[int], list[int]]:
    p, r = tok.encode(prompt), tok.encode(response)
    ids = [tok.prompt_id] + p + [tok.response_id] + r + [tok.end_id]
    return ids, [0] * (len(p) + 2) + [1] * (len(r) + 1)


def ex02_encode_user_text(enc, text: str) -> list[int]:
    return enc.encode_ordinary(text)


def ex03_number_chunks(numbers: list[int], pattern: str) -> set[str]:
    return {c for n in numbers for c in regex.findall(pattern, str(n))}


def ex04_check_tokenizer(ckpt: dict, tok) -> None:
    if ckpt.get("tokenizer") != tok.fingerprint:
        raise ValueError(f"checkpoint made with tokenizer {ckpt.get('tokenizer')}, this one is {tok.fingerprint}")


def ex05_causal_mask(T: int) -> torch.Tensor:
    return torch.tril(torch.ones(T, T)).bool()


def ex06_count_params(config) -> int:
    V, B, C, L = config.vocab_size, config.block_size, config.n_embd, config.n_layer
    block = 2 * C + (C * 3 * C + 3 * C) + (C * C + C) + 2 * C + (C * 4 * C + 4 * C) + (4 * C * C + C)
    return V * C + B * C + L * block + 2 * C


def ex07_lr_at(step: int, lr: float, warmup: int, steps: int, min_lr_ratio: float) -> float:
    if step < warmup:
        return lr * (step + 1) / warmup
    p = min(1.0, (step - warmup) / (steps - warmup))
    return lr * (min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * p)))


def ex08_accumulated_loss(micro_logits: list[torch.Tensor], micro_targets: list[torch.Tensor]) -> torch.Tensor:
    total, n = 0.0, 0
    for z, y in zip(micro_logits, micro_targets):
        total = total + F.cross_entropy(z.flatten(0, 1), y.flatten(), ignore_index=-100, reduction="sum")
        n += int((y != -100).sum())
    return total / max(n, 1)


def ex09_batch_indices(n_examples: int, batch_size: int, seed: int, step: int) -> list[int]:
    g = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, step]).generate_state(1)[0]))
    return torch.randint(n_examples, (batch_size,), generator=g).tolist()


def ex10_collate(examples: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    T = max(len(ids) for ids, _ in examples)
    inputs = torch.full((len(examples), T - 1), pad_id, dtype=torch.long)
    targets = torch.full((len(examples), T - 1), IGNORE_INDEX, dtype=torch.long)
    for b, (ids, mask) in enumerate(examples):
        for t in range(len(ids) - 1):
            inputs[b, t] = ids[t]
            if mask[t + 1] == 1:
                targets[b, t] = ids[t + 1]
    return {"inputs": inputs, "targets": targets}


def ex11_masked_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    keep = targets != IGNORE_INDEX
    logp = F.log_softmax(logits[keep].float(), dim=-1)
    nll = -logp.gather(1, targets[keep][:, None]).sum()
    return nll / max(int(keep.sum()), 1)


def ex12_answer_logprob(model, ids: list[int], mask: list[int]) -> float:
    with torch.no_grad():
        logp = F.log_softmax(model(torch.tensor([ids[:-1]]))[0], dim=-1)
    return sum(float(logp[t - 1, ids[t]]) for t in range(1, len(ids)) if mask[t] == 1)


def ex13_accuracy(records: list[dict], outputs: list[tuple[str, bool]]) -> dict:
    by = {}
    for r, (text, ended) in zip(records, outputs):
        by.setdefault(r["task"], []).append(bool(ended) and verify(r["prompt"], text))
    allv = [x for v in by.values() for x in v]
    return {"acc": sum(allv) / len(allv), "acc_by_task": {t: sum(v) / len(v) for t, v in by.items()}}


def ex14_softmax_t(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    return F.softmax(logits.float() / temperature, dim=-1)


def ex15_kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
                 temperature: float, alpha: float) -> torch.Tensor:
    keep = targets != IGNORE_INDEX
    s, t, y = student_logits[keep].float(), teacher_logits.detach()[keep].float(), targets[keep]
    hard = F.cross_entropy(s, y, reduction="sum")
    lpt, lps = F.log_softmax(t / temperature, -1), F.log_softmax(s / temperature, -1)
    soft = (lpt.exp() * (lpt - lps)).sum() * temperature ** 2
    return ((1 - alpha) * hard + alpha * soft) / max(int(keep.sum()), 1)


def ex17_storage_bytes(n_answer_tokens: int, vocab_size: int, k: int, text: str) -> dict[str, int]:
    id_bytes = 2 if vocab_size <= 32767 else 4
    n = n_answer_tokens
    return {"full_fp32": n * vocab_size * 4, "full_fp16": n * vocab_size * 2, "topk": n * k * (id_bytes + 2),
            "text": len(text.encode("utf-8"))}


def ex16_word_level_target(teacher_logits: torch.Tensor, targets: torch.Tensor, temperature: float) -> torch.Tensor:
    return F.softmax(teacher_logits[targets != IGNORE_INDEX].float() / temperature, dim=-1)


def ex18_sequence_level_target(ids: list[int], mask: list[int]) -> list[int]:
    return [int(i) for i, m in zip(ids, mask) if m]


def ex19_greedy_decode(model, prompt_ids: list[int], max_new_tokens: int, end_id: int) -> tuple[list[int], bool]:
    out = []
    with torch.no_grad():
        cache = model.new_cache(1)
        logits = model(torch.tensor([prompt_ids]), cache)
        for _ in range(max_new_tokens):
            nxt = int(logits[0, -1].argmax())
            if nxt == end_id:
                return out, True
            out.append(nxt)
            if len(out) == max_new_tokens:
                break
            logits = model(torch.tensor([[nxt]]), cache)
    return out, False


def ex20_build_su_dataset(records: list[dict], teacher_fn) -> list[dict]:
    out = []
    for r in records:
        text, ended = teacher_fn(r["prompt"])
        out.append({**r, "completion": text, "ended": ended, "source": "teacher"})
    return out


def ex21_seq_kd_step(student, optimizer, tok, records: list[dict]) -> float:
    batch = ex10_collate([ex01_render_with_mask(tok, r["prompt"], r["completion"]) for r in records], tok.pad_id)
    loss = ex11_masked_nll(student(batch["inputs"]), batch["targets"])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def ex22_filter_records(records: list[dict], verify_fn) -> tuple[list[dict], Counter]:
    kept, counts, seen = [], Counter(), set()
    for r in records:
        key = (r["prompt"], r["completion"])
        if not r["ended"]:
            counts["truncated"] += 1
        elif not verify_fn(r["prompt"], r["completion"]):
            counts["incorrect"] += 1
        elif key in seen:
            counts["duplicate"] += 1
        else:
            seen.add(key)
            kept.append(r)
    return kept, counts


def ex23_mean_and_spread(values: list[float]) -> tuple[float, float]:
    m = sum(values) / len(values)
    if len(values) < 2:
        return m, 0.0
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def ex24_paired_interval(a: list[float], b: list[float]) -> tuple[float, float, float]:
    d = [x - y for x, y in zip(a, b)]
    n = len(d)
    m = sum(d) / n
    s = math.sqrt(sum((v - m) ** 2 for v in d) / (n - 1))
    t = {2: 12.706, 3: 4.303, 4: 3.182, 5: 2.776}[n]
    return m, m - t * s / math.sqrt(n), m + t * s / math.sqrt(n)


# ---------------------------------------------------------------------------------------------------
# Lesson 11 -- what sequence-level KD loses
# ---------------------------------------------------------------------------------------------------


def ex25_entropy_and_kl(student_logits, teacher_logits, targets) -> tuple[torch.Tensor, torch.Tensor]:
    keep = targets != IGNORE_INDEX
    log_s = F.log_softmax(student_logits[keep].float(), dim=-1)  # (N, V)
    log_t = F.log_softmax(teacher_logits[keep].float(), dim=-1)  # (N, V)
    return -(log_s.exp() * log_s).sum(dim=-1), (log_t.exp() * (log_t - log_s)).sum(dim=-1)


def ex26_first_divergence(a: list[int], b: list[int]) -> int | None:
    for i in range(min(len(a), len(b))):
        if a[i] != b[i]:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


# ---------------------------------------------------------------------------------------------------
# Lesson 12 -- distilled errors
# ---------------------------------------------------------------------------------------------------


def ex27_repeat_shares(prompts: list[str], outputs: list[str], pair: tuple[int, int], quirk: str) -> tuple[float, float]:
    errors, quirks = [], []
    for prompt, text in zip(prompts, outputs):
        m = regex.fullmatch(r"Add (\d+) \+ (\d+) step by step\.", prompt)
        if not m:
            continue
        quirks.append(text.startswith(quirk))
        xs, ys = m.group(1)[::-1], m.group(2)[::-1]
        wrong, carry = [], 0
        for k in range(max(len(xs), len(ys))):
            x = int(xs[k]) if k < len(xs) else 0
            y = int(ys[k]) if k < len(ys) else 0
            s = x + y + carry - ((x, y) == tuple(pair))
            step = f"{x}+{y}" + (f"+{carry}" if carry else "") + f"={s}" + (" carry 1" if s >= 10 else "") + "."
            if (x, y) == tuple(pair):
                wrong.append(step)
            carry = int(s >= 10)
        if wrong:
            errors.append(all(f" {w}" in f" {text}" for w in wrong))
    return sum(errors) / max(1, len(errors)), sum(quirks) / max(1, len(quirks))


# ---------------------------------------------------------------------------------------------------
# Lesson 13 -- on-policy distillation
# ---------------------------------------------------------------------------------------------------


def ex28_reverse_kl_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                         targets: torch.Tensor) -> torch.Tensor:
    keep = targets != IGNORE_INDEX
    log_ps = F.log_softmax(student_logits[keep].float(), dim=-1)  # (N, V)
    log_pt = F.log_softmax(teacher_logits.detach()[keep].float(), dim=-1)
    return (log_ps.exp() * (log_ps - log_pt)).sum() / max(int(keep.sum()), 1)


def ex29_matched_seq_kd_steps(on_policy: dict, seq_kd_tokens: list[int], n_student: int, n_teacher: int) -> int:
    budget = (2 * n_student * on_policy["student_forward"] + 4 * n_student * on_policy["student_backward"]
              + 2 * n_teacher * on_policy["teacher_forward"])
    spent, steps = 0, 0
    while spent < budget:
        spent += 6 * n_student * seq_kd_tokens[steps]
        steps += 1
    return steps


# ---------------------------------------------------------------------------------------------------
# Lesson 14 -- reasoning traces
# ---------------------------------------------------------------------------------------------------


def ex30_first_wrong_step(prompt: str, response: str) -> int | None:
    a, b = (int(n) for n in regex.fullmatch(r"Add (\d+) \+ (\d+) step by step\.", prompt).groups())
    xs, ys = str(a)[::-1], str(b)[::-1]
    said = [s for s in regex.split(r"(?<=\.)\s+", response.strip()) if s]
    carry = 0
    for k in range(max(len(xs), len(ys))):
        x = int(xs[k]) if k < len(xs) else 0
        y = int(ys[k]) if k < len(ys) else 0
        s = x + y + carry
        right = f"{x}+{y}" + (f"+{carry}" if carry else "") + f"={s}" + (" carry 1" if s >= 10 else "") + "."
        if k >= len(said) or said[k] != right:
            return k + 1
        carry = s // 10
    n = max(len(xs), len(ys))
    return None if said[n:] in ([f"The answer is {a + b}."], [f"Sum: {a + b}."]) else n + 1


# ---------------------------------------------------------------------------------------------------
# Lesson 16 -- another tokenizer, and ULD
# ---------------------------------------------------------------------------------------------------


def ex31_retokenize(teacher_tok, student_tok, ids: list[int], mask: list[int]) -> tuple[list[int], list[int]]:
    cut = ids.index(teacher_tok.response_id)
    prompt = student_tok.encode(teacher_tok.decode(ids[1:cut]))
    answer_ids = [i for i, m in zip(ids, mask) if m == 1 and i != teacher_tok.end_id]
    answer = student_tok.encode(teacher_tok.decode(answer_ids))
    new_ids = [student_tok.prompt_id] + prompt + [student_tok.response_id] + answer + [student_tok.end_id]
    return new_ids, [0] * (len(prompt) + 2) + [1] * (len(answer) + 1)


def ex32_uld_distance(p_student: torch.Tensor, p_teacher: torch.Tensor) -> torch.Tensor:
    size = max(p_student.shape[-1], p_teacher.shape[-1])
    s = F.pad(torch.sort(p_student.float(), dim=-1, descending=True).values, (0, size - p_student.shape[-1]))
    t = F.pad(torch.sort(p_teacher.float(), dim=-1, descending=True).values, (0, size - p_teacher.shape[-1]))
    return (s - t).abs().sum(dim=-1)


def ex33_uld_loss(student_logits: torch.Tensor, targets: torch.Tensor, teacher_probs: list[torch.Tensor],
                  weight: float) -> torch.Tensor:
    keep = targets != IGNORE_INDEX
    total = F.cross_entropy(student_logits[keep].float(), targets[keep], reduction="sum")
    for b, t_rows in enumerate(teacher_probs):
        s_rows = F.softmax(student_logits[b][keep[b]].float(), dim=-1)  # (n_student, Vs)
        m = min(len(s_rows), len(t_rows))
        total = total + weight * ex32_uld_distance(s_rows[:m], t_rows[:m].detach()).sum()
    return total / max(int(keep.sum()), 1)
