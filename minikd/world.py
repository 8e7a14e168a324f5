"""The prompt world: tiny tasks whose answers a program can check.

Distillation lessons need prompts `s`, a ground truth, and a verifier that
decides whether *any* response is right, so that a teacher's outputs and a
student's outputs can be scored the same way. This module is that world:

    add        "What is 123 + 45?"
               -> "168" | "The answer is 168." | "123 + 45 = 168"
    sort       "Sort 5 3 9 1 7."
               -> "1 3 5 7 9" | "Sorted: 1 3 5 7 9." | "1, 3, 5, 7, 9"
    add_steps  "Add 478 + 265 step by step."
               -> "8+5=13 carry 1. 7+6+1=14 carry 1. 4+2+1=7. The answer is 743."
                  (or the same steps ending "Sum: 743.")

It is built so the lessons can show what distillation does:
- several surface forms per answer, picked at random: the ground truth is
  multi-modal, like real instruction data, and a sequence-level student
  (Kim & Rush) can win by collapsing onto the one form its teacher prefers;
- a label-noise knob: a set fraction of training completions are wrong, so a
  teacher can beat its data and a noisy teacher can be simulated;
- a family with a worked solution (column addition, digit by digit) for
  reasoning distillation, checked step by step by `check_trace`;
- a difficulty knob (`digits`) and a held-out split of in-range cases kept out of every other split
  (additions with a carry out of every column, sort lists with one digit three or more times): it asks
  whether a model learned the rule, not whether it can read longer inputs (learned absolute positions cannot).

Every prompt names its own task and numbers, so `true_answer` and `verify`
need nothing but the prompt. Standard library only, apart from the shared atomic file
writer (minikd.runtime).

Run `python -m minikd.world` to see examples, `--write` to regenerate data/ (its options set the
families, digits and noise; data/world.json records them, and a test checks data/ is what they give).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from minikd.runtime import atomic_write_text

FAMILIES = ("add", "sort", "add_steps")

# The accepted surface forms of a final answer, per family. The first form is
# the one a `single_form` world always uses.
FORMS = {
    "add": ("bare", "sentence", "equation"),  # "168" | "The answer is 168." | "123 + 45 = 168"
    "sort": ("bare", "sentence", "commas"),  # "1 3 5" | "Sorted: 1 3 5." | "1, 3, 5"
    "add_steps": ("sentence", "sum"),  # steps + "The answer is 743." | steps + "Sum: 743."
}


# ---------------------------------------------------------------------------
# Step 1: the world's settings
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class WorldConfig:
    """Everything that decides the shipped data sets; recorded in data/world.json.

    The defaults are the world the showdown needs (measured, see the README): two families a teacher
    learns to >= 95 % (sort, and column addition with its worked solution), answers in several surface
    forms, and 40 % wrong training labels, so that a student learns the ground truth slower and worse than
    the teacher's cleaner, single-form answers. Direct `add` (no worked solution) is left out: at this size
    no model learns it, and its place is reasoning distillation (the same sums with and without steps)."""

    seed: int = 2016  # master seed; each split draws from its own stream seeded by (seed, split name)
    families: tuple = ("sort", "add_steps")  # task families, cycled in this order so each split is balanced
    digits: int = 2  # difficulty: the largest operand has exactly this many digits; sort lists hold digits + 2 items
    noise: float = 0.4  # fraction of *training* completions whose answer is wrong (the other splits are clean)
    single_form: bool = False  # True: always the first surface form (a uni-modal world, for comparison)
    n_train: int = 6000  # labelled training records (prompt + ground-truth completion)
    n_unlabelled: int = 6000  # prompts only, for the teacher to label (what prompts without answers are worth)
    n_test: int = 600  # labelled, clean, same difficulty as train, never trained on
    n_heldout: int = 300  # labelled, clean, same difficulty, but only cases the held-out rule keeps out of the rest

    def __post_init__(self):
        object.__setattr__(self, "families", tuple(self.families))  # lists from JSON/CLI become tuples
        for family in self.families:
            if family not in FAMILIES:
                raise ValueError(f"WorldConfig.families: unknown family {family!r}; known: {FAMILIES}")
        if not self.families or len(set(self.families)) != len(self.families):
            raise ValueError(f"WorldConfig.families: need distinct families, got {self.families}")
        if not 1 <= self.digits <= 9:
            raise ValueError(f"WorldConfig.digits: must be 1..9 (sequences must stay short), got {self.digits}")
        if not 0.0 <= self.noise < 1.0:
            raise ValueError(f"WorldConfig.noise: must be in [0, 1), got {self.noise}")
        for name in ("n_train", "n_unlabelled", "n_test", "n_heldout"):
            if getattr(self, name) < 0:
                raise ValueError(f"WorldConfig.{name}: must be >= 0, got {getattr(self, name)}")

    @classmethod
    def from_json(cls, path) -> "WorldConfig":
        """The world a data/world.json was written from (its extra entries — counts, hashes — ignored)."""
        meta = json.loads(Path(path).read_text(encoding="utf-8"))
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in meta.items() if k in names})


DEFAULT_WORLD = WorldConfig()


# ---------------------------------------------------------------------------
# Step 2: reading prompts (the verifier's only input besides the response)
# ---------------------------------------------------------------------------
_PROMPT_RE = {
    "add": re.compile(r"What is (\d+) \+ (\d+)\?"),
    "sort": re.compile(r"Sort (\d(?: \d)*)\."),
    "add_steps": re.compile(r"Add (\d+) \+ (\d+) step by step\."),
}


def parse_prompt(prompt: str) -> tuple[str, tuple[int, ...]]:
    """(family, numbers) of a prompt; ValueError naming the prompt if it is no task of this world."""
    if not isinstance(prompt, str):
        raise ValueError(f"prompt must be a string, got {type(prompt).__name__}")
    for family, pattern in _PROMPT_RE.items():
        m = pattern.fullmatch(prompt.strip())
        if m:
            if family == "sort":
                return family, tuple(int(d) for d in m.group(1).split())
            return family, (int(m.group(1)), int(m.group(2)))
    raise ValueError(f"unparseable prompt {prompt!r}: not one of the task families {FAMILIES}")


def task_of(prompt: str) -> str:
    """The family a prompt belongs to."""
    return parse_prompt(prompt)[0]


def _truth(family: str, numbers: tuple[int, ...]) -> str:
    if family == "sort":
        return " ".join(str(d) for d in sorted(numbers))
    a, b = numbers
    return str(a + b)


def true_answer(prompt: str) -> str:
    """The canonical correct answer, computed from the prompt alone ("168", "1 3 5 7 9")."""
    return _truth(*parse_prompt(prompt))


# ---------------------------------------------------------------------------
# Step 3: reading responses — any accepted surface form
# ---------------------------------------------------------------------------
_NUM = r"(\d+)"
_DIGITS = r"(\d(?: \d)*)"
_ANSWER_RE = {
    "add": (
        ("bare", re.compile(_NUM)),
        ("sentence", re.compile(rf"The answer is {_NUM}\.")),
        ("equation", re.compile(rf"{_NUM} \+ {_NUM} = {_NUM}")),
    ),
    "sort": (
        ("bare", re.compile(_DIGITS)),
        ("sentence", re.compile(rf"Sorted: {_DIGITS}\.")),
        ("commas", re.compile(r"(\d(?:, \d)*)")),
    ),
    # The worked family: any text (the steps), then a closing sentence at the end.
    "add_steps": (
        ("sentence", re.compile(rf"(?:(.*)\s)?The answer is {_NUM}\.", re.DOTALL)),
        ("sum", re.compile(rf"(?:(.*)\s)?Sum: {_NUM}\.", re.DOTALL)),
    ),
}


def _read(family: str, response: str):
    """(form, answer, extra) for the first form the response matches, else None.

    extra is the restated operands for add's equation form, the text before
    the closing sentence for add_steps, and None otherwise."""
    if family not in FAMILIES:
        raise ValueError(f"unknown task {family!r}; known: {FAMILIES}")
    if not isinstance(response, str):
        raise ValueError(f"response must be a string, got {type(response).__name__}")
    text = response.strip()
    for form, pattern in _ANSWER_RE[family]:
        m = pattern.fullmatch(text)
        if not m:
            continue
        if family == "add" and form == "equation":
            return form, m.group(3), (int(m.group(1)), int(m.group(2)))
        if family == "add_steps":
            return form, m.group(2), m.group(1) or ""
        return form, m.group(1).replace(", ", " "), None
    return None


def extract_answer(task: str, response: str) -> str | None:
    """The final answer written in `response` (canonical spacing), or None if no accepted form matches.

    Answers are returned as written: "0168" stays "0168" (and is wrong)."""
    read = _read(task, response)
    return None if read is None else read[1]


def surface_form(task: str, response: str) -> str | None:
    """Which of FORMS[task] the response uses, or None: lets lessons count modes in teacher outputs."""
    read = _read(task, response)
    return None if read is None else read[0]


def verify(prompt, response: str) -> bool:
    """Is the response's final answer correct? `prompt` is a prompt string or a record with "prompt".

    The truth is recomputed from the prompt (a record's "answer" field is not
    trusted). The equation form must restate the prompt's own operands. For
    add_steps only the final answer counts here; `check_trace` checks the steps."""
    if isinstance(prompt, dict):
        prompt = prompt["prompt"]
    family, numbers = parse_prompt(prompt)
    read = _read(family, response)
    if read is None:
        return False
    form, answer, extra = read
    if form == "equation" and extra != numbers:
        return False
    return answer == _truth(family, numbers)


# ---------------------------------------------------------------------------
# Step 4: the worked solution — column addition, right to left
# ---------------------------------------------------------------------------
def add_columns(a: int, b: int, slip: tuple[int, int] | None = None) -> tuple[list[tuple[int, int, int, int]], int]:
    """Column addition of a + b: one (x, y, carry_in, written_sum) per column, right to left, and the result.

    Short operands are padded with 0. slip=(column, delta) writes a sum off by
    delta in that column and carries on honestly from the wrong sum: a
    plausible mistake, used for label noise (the result is then a + b +- 10**column)."""
    xs, ys = str(a)[::-1], str(b)[::-1]
    steps, digits, carry = [], [], 0
    for i in range(max(len(xs), len(ys))):
        x = int(xs[i]) if i < len(xs) else 0
        y = int(ys[i]) if i < len(ys) else 0
        written = x + y + carry + (slip[1] if slip and slip[0] == i else 0)
        steps.append((x, y, carry, written))
        digits.append(written % 10)
        carry = written // 10
    if carry:
        digits.append(carry)  # the last carry becomes the leading digit
    return steps, int("".join(str(d) for d in reversed(digits)))


def format_step(x: int, y: int, carry_in: int, written: int) -> str:
    """"7+6+1=14 carry 1." — the carry-in term only when there is one, "carry 1" only when the sum is >= 10."""
    lhs = f"{x}+{y}" + (f"+{carry_in}" if carry_in else "")
    return f"{lhs}={written}" + (" carry 1" if written >= 10 else "") + "."


_STEP_RE = re.compile(r"(\d)\+(\d)(?:\+(\d))?=(\d+)( carry 1)?\.")


_CLOSER_RE = re.compile(r"(?:The answer is|Sum:) (\d+)\.")


def trace_mistakes(prompt, response: str) -> list[tuple[int, str]]:
    """THE trace check: (step, what is wrong) for every mistake in a worked add_steps response; [] when it is
    right step by step. Step k is the k-th column step (1 = the units column; a missing one is a mistake, and
    every step is written exactly as format_step writes it); n + 1 is what follows the n column steps, which
    must be one closing sentence with the right sum, "The answer is N." or "Sum: N."."""
    family, (a, b) = parse_prompt(prompt["prompt"] if isinstance(prompt, dict) else prompt)
    if family != "add_steps":
        raise ValueError(f"check_trace: prompt {prompt!r} is a {family!r} task, not 'add_steps'")
    want, total = add_columns(a, b)
    said = [s for s in re.split(r"(?<=\.)\s+", response.strip()) if s]
    closer = _CLOSER_RE.fullmatch(said[-1]) if said else None
    body = said[:-1] if closer else said
    found = [(k, m) for k, (sentence, step) in enumerate(zip(body, want), start=1)
             for m in _step_mistakes(k, sentence, step)]
    if len(body) != len(want):
        found.append((min(len(body), len(want)) + 1,
                      f"expected {len(want)} column steps for {a} + {b}, found {len(body)}"))
    if closer is None:
        found.append((len(want) + 1, "no final answer: the response must end with 'The answer is N.' or 'Sum: N.'"))
    elif closer.group(1) != str(total):
        found.append((len(want) + 1, f"final answer {closer.group(1)} is wrong: {a} + {b} = {total}"))
    return found


def _step_mistakes(k: int, sentence: str, step: tuple[int, int, int, int]) -> list[str]:
    """What is wrong with the k-th column step, in words ([] when it is exactly format_step's)."""
    x, y, carry, _ = step
    if sentence == format_step(*step):
        return []
    m = _STEP_RE.fullmatch(sentence)
    if not m:
        return [f"step {k}: {sentence!r} is not a step like '7+6+1=14 carry 1.'"]
    gx, gy, gc, gs = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0), int(m.group(4))
    errors = []
    if (gx, gy) != (x, y):
        errors.append(f"step {k}: adds {gx}+{gy}, but column {k} from the right holds {x}+{y}")
    if gc != carry:
        errors.append(f"step {k}: carry-in is {carry}, the step uses {gc}")
    if gx + gy + gc != gs:
        errors.append(f"step {k}: {m.group(0)[:-1].split('=')[0]} is {gx + gy + gc}, not {gs}")
    if bool(m.group(5)) != (gs >= 10):
        errors.append(f"step {k}: write 'carry 1' exactly when the column sum is 10 or more")
    return errors or [f"step {k}: write it as {format_step(*step)!r}"]


def trace_errors(prompt, response: str) -> list[str]:
    """Every mistake in a worked add_steps response, in words (trace_mistakes without the step numbers)."""
    return [message for _, message in trace_mistakes(prompt, response)]


def check_trace(prompt, response: str) -> bool:
    """True iff every step of the worked solution is right and the final answer is right."""
    return not trace_errors(prompt, response)


# ---------------------------------------------------------------------------
# Step 5: making records — a prompt, a completion in a random form, maybe a wrong one
# ---------------------------------------------------------------------------
def _operands(rng: random.Random, digits: int) -> tuple[int, int]:
    """Two numbers below 10**digits, the larger with exactly `digits` digits."""
    low = 10 ** (digits - 1) if digits > 1 else 0
    while True:
        a, b = rng.randrange(10**digits), rng.randrange(10**digits)
        if max(a, b) >= low:
            return a, b


def _change_one_digit(n: int, rng: random.Random) -> int:
    """A plausible wrong answer: n with one digit replaced (never a new leading zero)."""
    s = str(n)
    i = rng.randrange(len(s))
    options = [d for d in "0123456789" if d != s[i] and not (i == 0 and d == "0" and len(s) > 1)]
    return int(s[:i] + rng.choice(options) + s[i + 1 :])


def _misorder(items: list[int], rng: random.Random) -> list[int]:
    """A plausible wrong sort: two neighbours swapped (or, if all items are equal, one item changed)."""
    items = list(items)
    swaps = [i for i in range(len(items) - 1) if items[i] != items[i + 1]]
    if swaps:
        i = rng.choice(swaps)
        items[i], items[i + 1] = items[i + 1], items[i]
    else:
        i = rng.randrange(len(items))
        items[i] = rng.choice([d for d in range(10) if d != items[i]])
    return items


def _sort_record(rng: random.Random, digits: int, noisy: bool, form: str) -> tuple[str, str, str]:
    """(prompt, true answer, completion) of a sort record; a noisy one has two neighbours swapped."""
    items = [rng.randrange(10) for _ in range(digits + 2)]
    shown = " ".join(map(str, _misorder(sorted(items), rng) if noisy else sorted(items)))
    completion = {"bare": shown, "sentence": f"Sorted: {shown}.", "commas": shown.replace(" ", ", ")}[form]
    return "Sort " + " ".join(map(str, items)) + ".", _truth("sort", tuple(items)), completion


def _add_record(rng: random.Random, digits: int, noisy: bool, form: str) -> tuple[str, str, str]:
    """(prompt, true answer, completion) of an add record; a noisy one has one digit of the sum changed."""
    a, b = _operands(rng, digits)
    shown = _change_one_digit(a + b, rng) if noisy else a + b
    completion = {"bare": f"{shown}", "sentence": f"The answer is {shown}.", "equation": f"{a} + {b} = {shown}"}[form]
    return f"What is {a} + {b}?", str(a + b), completion


def _add_steps_record(rng: random.Random, digits: int, noisy: bool, form: str) -> tuple[str, str, str]:
    """(prompt, true answer, completion) of a worked addition; a noisy one slips in one column and carries
    the slip honestly to a wrong answer."""
    a, b = _operands(rng, digits)
    slip = None
    if noisy:
        column = rng.randrange(max(len(str(a)), len(str(b))))
        written = add_columns(a, b)[0][column][3]
        slip = (column, -1 if written == 19 else 1 if written == 0 else rng.choice((-1, 1)))
    steps, shown = add_columns(a, b, slip)
    closer = {"sentence": f"The answer is {shown}.", "sum": f"Sum: {shown}."}[form]
    return f"Add {a} + {b} step by step.", str(a + b), " ".join([format_step(*s) for s in steps] + [closer])


RECORD_WRITERS = {"sort": _sort_record, "add": _add_record, "add_steps": _add_steps_record}


def make_record(family: str, rng: random.Random, digits: int, noise: float, idx: int, *, split: str = "rec",
                single_form: bool = False) -> dict:
    """One labelled record. With probability `noise` the completion's answer is wrong ("label_noisy").

    "answer" is always the truth; "completion" is what the data set teaches,
    in the surface form named by "form"."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; known: {FAMILIES}")
    noisy = rng.random() < noise
    form = FORMS[family][0] if single_form else rng.choice(FORMS[family])
    prompt, answer, completion = RECORD_WRITERS[family](rng, digits, noisy, form)
    return {"id": f"{split}-{idx:05d}", "task": family, "prompt": prompt, "completion": completion, "answer": answer,
            "source": "ground_truth", "label_noisy": noisy, "form": form}


# ---------------------------------------------------------------------------
# Step 6: splits — disjoint prompt sets, each from its own seeded stream
# ---------------------------------------------------------------------------
HELDOUT_RULE = {
    "add": "a carry out of every column",
    "add_steps": "a carry out of every column",
    "sort": "one digit three or more times",
}


def is_heldout(family: str, numbers: tuple[int, ...]) -> bool:
    """The held-out rule: cases of the same size as training that no other split contains.

    Additions where every column carries (58 + 67: 8+7=15 carry 1, 5+6+1=12 carry 1) and sort lists
    with a digit three or more times (3 1 3 3). Every piece appears in training (carries, repeated
    digits), the combination never does: the split tests whether the rule was learned."""
    if family == "sort":
        return max(numbers.count(d) for d in numbers) >= 3
    steps, _ = add_columns(*numbers)
    return all(written >= 10 for *_, written in steps)


# name: (labelled, noisy, held-out cases only)
SPLITS = {
    "train": (True, True, False),  # ground-truth completions, `noise` of them wrong
    "unlabelled": (False, False, False),  # prompts for the teacher to label
    "test": (True, False, False),  # clean, never trained on
    "heldout": (True, False, True),  # clean, only cases the held-out rule keeps out of the other splits
}
UNLABELLED_FIELDS = ("id", "task", "prompt", "answer")


def make_split(
    name: str,
    n: int,
    world: WorldConfig = DEFAULT_WORLD,
    rng: random.Random | int | None = None,
    *,
    exclude=(),
) -> list[dict]:
    """n records for split `name` (a key of SPLITS), deterministic in (world, name, rng, exclude).

    Families are cycled, so every family gets n / len(families) records.
    Exactly round(noise * n) training records are noisy. No prompt repeats
    inside the split or appears in `exclude` (prompts of earlier splits).
    The held-out split holds only cases `is_heldout` accepts; every other split none of them.
    Unlabelled records keep only UNLABELLED_FIELDS: their "answer" is there
    to score teacher and student outputs later; neither model ever sees it."""
    if name not in SPLITS:
        raise ValueError(f"unknown split {name!r}; known: {tuple(SPLITS)}")
    if rng is None:
        rng = random.Random(f"{world.seed}:{name}")  # str seeds hash with sha512: stable across runs
    elif isinstance(rng, int):
        rng = random.Random(rng)
    labelled, noisy, heldout = SPLITS[name]
    noisy_idx = set(rng.sample(range(n), round(world.noise * n))) if noisy else set()

    seen = set(exclude)
    records = []
    for i in range(n):
        family = world.families[i % len(world.families)]
        noise = 1.0 if i in noisy_idx else 0.0
        rec = _fresh_record(lambda: make_record(family, rng, world.digits, noise, i, split=name,
                                                single_form=world.single_form), seen, heldout,
                            f"split {name!r}: ran out of new {family!r} prompts at digits={world.digits} "
                            f"after {i} records")
        seen.add(rec["prompt"])
        records.append(rec if labelled else {k: rec[k] for k in UNLABELLED_FIELDS})
    return records


def _fresh_record(draw, seen: set, heldout: bool, what: str) -> dict:
    """draw() until a record whose prompt is not in `seen` and that the held-out rule puts on the wanted side."""
    for _ in range(5000):  # held-out sort lists are ~4 % of all lists: rejection needs room
        rec = draw()
        if rec["prompt"] not in seen and is_heldout(*parse_prompt(rec["prompt"])) == heldout:
            return rec
    raise ValueError(f"{what}; ask for fewer records or more digits")


def _jsonl(records: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


def default_sets(world: WorldConfig = DEFAULT_WORLD) -> dict[str, list[dict]]:
    """The four splits in memory, drawn in order so later splits exclude earlier prompts."""
    sizes = {"train": world.n_train, "unlabelled": world.n_unlabelled, "test": world.n_test, "heldout": world.n_heldout}
    seen, sets = set(), {}
    for name, n in sizes.items():
        sets[name] = make_split(name, n, world, exclude=seen)
        seen.update(r["prompt"] for r in sets[name])
    return sets


def build_default_sets(out_dir="data", world: WorldConfig = DEFAULT_WORLD) -> dict[str, Path]:
    """Write train/unlabelled/test/heldout .jsonl and world.json (seed, settings, counts) to out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"generator": "python -m minikd.world --write", **dataclasses.asdict(world)}
    meta["families"] = list(world.families)
    meta["forms"] = {f: list(FORMS[f]) for f in world.families}
    meta["heldout_rule"] = {f: HELDOUT_RULE[f] for f in world.families}
    meta["splits"] = {}
    paths = {}
    for name, records in default_sets(world).items():
        text = _jsonl(records)
        paths[name] = out / f"{name}.jsonl"
        atomic_write_text(paths[name], text)
        labelled, _, heldout = SPLITS[name]
        meta["splits"][name] = {
            "file": paths[name].name,
            "records": len(records),
            "rule": "held-out cases only" if heldout else "no held-out case",
            "by_task": {f: sum(r["task"] == f for r in records) for f in world.families},
            "label_noisy": sum(r.get("label_noisy", False) for r in records) if labelled else None,
            "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        }
    paths["world"] = out / "world.json"
    atomic_write_text(paths["world"], json.dumps(meta, indent=2) + "\n")
    return paths


# ---------------------------------------------------------------------------
# Step 7: command line
# ---------------------------------------------------------------------------
def main(argv=None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m minikd.world",
        description="The prompt world. Without --write: print example records and what the verifier says.",
    )
    p.add_argument("--write", action="store_true", help="regenerate the data sets and world.json in --out-dir")
    p.add_argument("--out-dir", default="data", help="where --write puts the files (default: data)")
    p.add_argument("--seed", type=int, default=DEFAULT_WORLD.seed, help="world seed")
    p.add_argument("--families", nargs="+", choices=FAMILIES, default=list(DEFAULT_WORLD.families),
                   help=f"task families (default: {' '.join(DEFAULT_WORLD.families)})")
    p.add_argument("--digits", type=int, default=DEFAULT_WORLD.digits, help="difficulty: digits of the larger operand")
    p.add_argument("--noise", type=float, default=DEFAULT_WORLD.noise, help="fraction of wrong training answers")
    p.add_argument("--single-form", action="store_true", help="one surface form per family (a uni-modal world)")
    for split in ("train", "unlabelled", "test", "heldout"):
        default = getattr(DEFAULT_WORLD, f"n_{split}")
        p.add_argument(f"--n-{split}", type=int, default=default, help=f"records in {split} (default {default})")
    args = p.parse_args(argv)
    try:
        world = WorldConfig(seed=args.seed, families=tuple(args.families), digits=args.digits, noise=args.noise,
                            single_form=args.single_form, n_train=args.n_train, n_unlabelled=args.n_unlabelled,
                            n_test=args.n_test, n_heldout=args.n_heldout)
    except ValueError as e:
        p.error(str(e))

    if args.write:
        for name, path in build_default_sets(args.out_dir, world).items():
            print(f"wrote {path}  ({path.stat().st_size:,} bytes)")
        return
    rng = random.Random(world.seed)
    for family in world.families:
        for noise in (0.0, 1.0):
            rec = make_record(family, rng, world.digits, noise, 0, split="demo")
            ok = verify(rec["prompt"], rec["completion"])
            print(f"{rec['prompt']!r:36} -> {rec['completion']!r}   verify={ok}  (noisy={rec['label_noisy']})")


if __name__ == "__main__":
    main()
