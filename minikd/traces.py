"""Reasoning distillation in miniature: the same sums taught as final answers, or as worked solutions.

DeepSeek-AI (2025) made DeepSeek-R1's small models by plain SFT on about 800k texts the big model wrote —
its reasoning AND its final answer — kept only when a checker accepted them (rejection sampling). The
target is the worked solution, not only the answer. This module builds, from ONE teacher's worked
solutions, the two training sets that test why, and the checks that grade them:

    sum_sets           fresh add_steps prompts for training, testing and held-out testing (world.make_split)
    sum_prompts        the sum a + b asked two ways: "What is a + b?" (add) and "Add a + b step by step."
    answers_only       a teacher's worked solution cut down to its final answer, as an `add` record
    trace_passes       the verifier AND the trace checker: a right answer after a wrong step fails
    first_wrong_step   where a worked solution first goes wrong (1 = the units column), None if right
    grade              per prompt: is the final answer right, is the whole worked solution right
    tokens_seen        how many tokens (all, and answer tokens) a student reads in its training batches

Drawing K samples per prompt and keeping the first that passes is minikd.seqkd.rejection_sample with
`trace_passes` as its test.
"""

from __future__ import annotations


from minikd.data import SFTData
from minikd.evaluate import decode_records, score
from minikd.world import WorldConfig, check_trace, extract_answer, make_split, parse_prompt, trace_mistakes


def operands(prompt: str) -> tuple[int, int]:
    """(a, b) of an `add` or `add_steps` prompt; ValueError for any other task."""
    family, numbers = parse_prompt(prompt)
    if family not in ("add", "add_steps"):
        raise ValueError(f"{prompt!r} is a {family!r} task, not a sum")
    return numbers


def sum_sets(sizes: dict[str, int], digits: int = 2, exclude=(), seed: int = 2025) -> dict[str, list[dict]]:
    """Clean add_steps records per split (name -> how many; "train", "test", "heldout", ...) from a world of
    that one family (world.make_split), drawn in order: no prompt repeats across the sets or is in `exclude`."""
    world = WorldConfig(seed=seed, families=("add_steps",), digits=digits, noise=0.0)
    seen, sets = set(exclude), {}
    for name, n in sizes.items():
        sets[name] = make_split(name, n, world, exclude=seen)
        seen |= {r["prompt"] for r in sets[name]}
    return sets


def sum_prompts(a: int, b: int) -> dict[str, str]:
    """The same sum in the two prompt forms of the task world: the direct question and the worked one."""
    return {"answers": f"What is {a} + {b}?", "traces": f"Add {a} + {b} step by step."}


def answers_only(trace_record: dict) -> dict | None:
    """The answers-only twin of a teacher-written worked solution: the `add` prompt for the same sum, and
    as its completion only the final answer the teacher's solution ends with ("The answer is 143."), right
    or wrong — the same teacher's knowledge with the work left out. None when no answer can be read."""
    answer = extract_answer("add_steps", trace_record["completion"])
    if answer is None:
        return None
    a, b = operands(trace_record["prompt"])
    return {"id": trace_record.get("id"), "task": "add", "prompt": sum_prompts(a, b)["answers"],
            "completion": f"The answer is {answer}.", "answer": str(a + b), "source": "teacher",
            "ended": trace_record.get("ended", True)}


def trace_passes(prompt: str, text: str, ended: bool = True) -> bool:
    """Keep a worked solution only if it ended, the verifier accepts its final answer AND every step is
    right (world.check_trace): a right answer reached through a wrong step is not a right solution."""
    return score(prompt, text, ended) and check_trace(prompt, text)


def first_wrong_step(prompt: str, response: str) -> int | None:
    """Where a worked solution first goes wrong: k for its k-th column step (1 = the units column; a
    missing step counts as wrong), n + 1 when its n column steps are right but what follows is not one
    closing sentence with the right sum ("The answer is N." or "Sum: N."); None when all of it is right.
    The check itself is the task world's one trace checker (world.trace_mistakes): here only its first step."""
    steps = [k for k, _ in trace_mistakes(prompt, response)]
    return min(steps) if steps else None


def grade(model, tok, records: list[dict], max_new_tokens: int) -> dict:
    """The model's greedy answer to every record, graded two ways: "answer_ok" (the final answer is right:
    evaluate.score) and, for worked (add_steps) prompts, "trace_ok" (trace_passes); None for direct ones."""
    gens = decode_records(model, tok, records, max_new_tokens=max_new_tokens)
    answer_ok = [score(r["prompt"], g.text, g.ended) for r, g in zip(records, gens)]
    trace_ok = [trace_passes(r["prompt"], g.text, g.ended) if r["task"] == "add_steps" else None
                for r, g in zip(records, gens)]
    return {"answer_ok": answer_ok, "trace_ok": trace_ok, "outputs": [g.text for g in gens]}


def tokens_seen(examples: list[dict], batch_size: int, steps: int, seed: int) -> dict[str, int]:
    """Tokens a student trained by stages.train_model (or train_student) reads: its batches are drawn by SFTData, seeded
    by (seed, step) alone, so replaying the draws counts them exactly (padding not counted).
    "tokens": every rendered token; "answer_tokens": those the loss is computed on."""
    data = SFTData(examples, pad_id=0, batch_size=batch_size, seed=seed)
    total, answer = 0, 0
    for step in range(steps):
        for i in data.sample_indices(step).tolist():
            total += len(examples[i]["ids"])
            answer += sum(examples[i]["mask"])
    return {"tokens": total, "answer_tokens": answer}
