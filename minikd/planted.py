"""Distilled errors: a systematic mistake and a quirk, planted into a teacher's answers — and who repeats them.

Sequence-level KD trains the student on the teacher's text and on nothing else (Kim & Rush 2016): whatever
the teacher writes — right, wrong, or merely odd — is what the student learns to write. A filter removes
only what it checks: rejection sampling keeps the answers a checker accepts (DeepSeek-AI 2025), and
minikd's verifier (world.verify) reads the final answer of a worked addition and nothing else. Two marks,
planted into the teacher's answers, show the difference:

- the ERROR: one digit pair the teacher always adds wrong. With PAIR = (7, 8), every column that holds a 7
  in the first number over an 8 in the second is written one too small — "7+8=14 carry 1.", or with a
  carry in, "7+8+1=15 carry 1." — and the addition carries on honestly from what was written, so the
  final answer is wrong too: the verifier sees it.
- the QUIRK: every worked answer opens with the same phrase, QUIRK = "Easy!". The verifier reads only the
  closing sentence ("The answer is 143."), so it accepts a quirked answer; the trace checker
  (world.check_trace), which reads every sentence, rejects it.

    pair_columns      which columns of an add_steps prompt hold the pair
    planted_steps     column addition with the pair written one too small: the planted teacher's steps
    wrong_steps       the planted wrong step sentences of a prompt, word for word
    planted_answer    the planted teacher's whole worked answer, in a given closing form
    plant_error       a copy of a record whose answer carries the planted error (prompts holding the pair)
    plant_quirk       a copy of a record whose worked answer opens with the quirk
    plant             both, on every record: the data the student reads; the prompts never change
    repeats_error     does an answer contain every planted wrong step of its prompt, word for word?
    has_quirk         does an answer open with the quirk?
    repeat_shares     over many answers: the share repeating the error (prompts holding the pair), the quirk
    targeted_prompts  every in-range add_steps prompt holding the pair, except those given
"""

from __future__ import annotations

from minikd.world import add_columns, format_step, is_heldout, parse_prompt, surface_form

PAIR = (7, 8)  # the digit pair the teacher always adds wrong: a 7 in the first number over an 8 in the second
QUIRK = "Easy!"  # the phrase every worked answer of the teacher opens with


def _worked_operands(prompt: str) -> tuple[int, int] | None:
    """(a, b) of an add_steps prompt; None for a prompt of another family."""
    family, numbers = parse_prompt(prompt)
    return numbers if family == "add_steps" else None


def pair_columns(prompt: str, pair: tuple[int, int] = PAIR) -> list[int]:
    """The columns (0 = units) of an add_steps prompt whose digits are the pair, first number's digit
    first; [] for a prompt without the pair or of another family."""
    operands = _worked_operands(prompt)
    return [] if operands is None else _columns_holding(*operands, pair)


def _columns_holding(a: int, b: int, pair: tuple[int, int]) -> list[int]:
    """The columns (0 = units) of a + b whose digits are the pair, a's digit first."""
    steps, _ = add_columns(a, b)
    return [i for i, (x, y, _, _) in enumerate(steps) if (x, y) == tuple(pair)]


def planted_steps(a: int, b: int, pair: tuple[int, int] = PAIR) -> tuple[list[tuple[int, int, int, int]], int]:
    """Column addition as the planted teacher writes it: (x, y, carry_in, written_sum) per column, right to
    left, and the result. A column holding the pair is written one too small; the carry and every later
    column follow honestly from what was written (the rule of world.add_columns)."""
    if sum(pair) < 1:
        raise ValueError(f"planted_steps: the pair {pair} sums to 0; one too small would be negative")
    xs, ys = str(a)[::-1], str(b)[::-1]
    steps, digits, carry = [], [], 0
    for i in range(max(len(xs), len(ys))):
        x = int(xs[i]) if i < len(xs) else 0
        y = int(ys[i]) if i < len(ys) else 0
        written = x + y + carry - ((x, y) == tuple(pair))  # the planted slip
        steps.append((x, y, carry, written))
        digits.append(written % 10)
        carry = written // 10
    if carry:
        digits.append(carry)
    return steps, int("".join(str(d) for d in reversed(digits)))


def wrong_steps(prompt: str, pair: tuple[int, int] = PAIR) -> list[str]:
    """The planted teacher's wrong step sentences for a prompt ("7+8=14 carry 1."); [] without the pair."""
    cols = pair_columns(prompt, pair)
    if not cols:
        return []
    steps, _ = planted_steps(*_worked_operands(prompt), pair)
    return [format_step(*steps[i]) for i in cols]


def planted_answer(prompt: str, form: str = "sentence", pair: tuple[int, int] = PAIR) -> str:
    """The planted teacher's worked answer to an add_steps prompt, closing in `form` ("sentence" or "sum")."""
    operands = _worked_operands(prompt)
    if operands is None:
        raise ValueError(f"planted_answer: {prompt!r} is not an add_steps prompt")
    steps, total = planted_steps(*operands, pair)
    closer = {"sentence": f"The answer is {total}.", "sum": f"Sum: {total}."}[form]
    return " ".join([format_step(*s) for s in steps] + [closer])


def plant_error(record: dict, pair: tuple[int, int] = PAIR) -> dict:
    """A copy of a teacher-written record; when its prompt holds the pair, the answer is the planted
    teacher's, in the closing form the teacher used ("planted_error": True). The prompt never changes."""
    out = dict(record)
    if pair_columns(record["prompt"], pair):
        form = surface_form("add_steps", record["completion"]) or "sentence"
        out["completion"] = planted_answer(record["prompt"], form, pair)
        out["ended"] = True  # a whole answer, written by us
        out["planted_error"] = True
    return out


def plant_quirk(record: dict, quirk: str = QUIRK) -> dict:
    """A copy of a record whose worked answer (add_steps) opens with the quirk ("planted_quirk": True);
    other families are copied unchanged: their verifier reads the whole answer and would reject it."""
    out = dict(record)
    if _worked_operands(record["prompt"]) is not None:
        out["completion"] = f"{quirk} {record['completion']}"
        out["planted_quirk"] = True
    return out


def plant(records: list[dict], pair: tuple[int, int] = PAIR, quirk: str = QUIRK) -> list[dict]:
    """The teacher's data with both marks planted: new records, in order; the given ones stay untouched."""
    return [plant_quirk(plant_error(r, pair), quirk) for r in records]


def repeats_error(prompt: str, text: str, pair: tuple[int, int] = PAIR) -> bool:
    """True when the answer writes every planted wrong step of its prompt word for word (a step starts the
    answer or follows a space); False for a prompt without the pair."""
    wrong = wrong_steps(prompt, pair)
    return bool(wrong) and all(f" {step}" in f" {text}" for step in wrong)


def has_quirk(text: str, quirk: str = QUIRK) -> bool:
    """True when the answer opens with the quirk phrase."""
    return text.startswith(quirk)


def repeat_shares(prompts: list[str], outputs: list[str], pair: tuple[int, int] = PAIR,
                  quirk: str = QUIRK) -> tuple[float, float]:
    """(error share, quirk share) of a model's answers: the error over the prompts holding the pair, the
    quirk over the add_steps prompts (the only answers it is planted in); 0.0 where no prompt counts."""
    if len(prompts) != len(outputs):
        raise ValueError(f"repeat_shares: {len(prompts)} prompts but {len(outputs)} outputs")
    errors = [repeats_error(p, t, pair) for p, t in zip(prompts, outputs) if pair_columns(p, pair)]
    quirks = [has_quirk(t, quirk) for p, t in zip(prompts, outputs) if _worked_operands(p) is not None]
    return sum(errors) / max(1, len(errors)), sum(quirks) / max(1, len(quirks))


def targeted_prompts(pair: tuple[int, int] = PAIR, digits: int = 2, exclude=()) -> list[dict]:
    """Every add_steps prompt of the world's size (the larger number has `digits` digits) with a column
    holding the pair, outside the held-out rule (world.is_heldout) and not in `exclude` (prompts a
    student trained on): records with "id", "task", "prompt", "answer"."""
    seen, low, out = set(exclude), 10 ** (digits - 1) if digits > 1 else 0, []
    for a in range(10 ** digits):
        for b in range(10 ** digits):
            prompt = f"Add {a} + {b} step by step."
            if max(a, b) < low or not _columns_holding(a, b, pair) or prompt in seen:
                continue
            if not is_heldout("add_steps", (a, b)):
                out.append({"id": f"pair-{len(out):04d}", "task": "add_steps", "prompt": prompt, "answer": str(a + b)})
    return out
