"""Verdicts: what the numbers of a run allow one to say, computed, never typed.

A single accuracy means little: a student trained with another seed (other initial weights, other
batches) lands elsewhere. So every comparison of methods in minikd is made over seeds, and *paired*: methods
trained with the same seed start from the same weights and draw the same batch indices, so the
difference a_i - b_i of seed i removes what the seed does to both. From n paired differences:

    mean  d = (1/n) sum_i (a_i - b_i)
    95 % interval  d +- t_{0.975, n-1} * s / sqrt(n)      (s: the differences' sample standard deviation)

Student's t, not 1.96: with 3 or 5 seeds the spread itself is uncertain, and t_{0.975, 2} = 4.30 says so.
If the interval holds 0, the two methods are **not separable** by this run — whatever the means say.

`claim()` is the one way a lesson or the README states a result: the sentence it prints carries the
measured difference, its interval and the verdict, so a sentence can never outlive the numbers.

What a verdict is about is part of it, and its sentence says which (the `what` argument, made by one of two calls):
- `by_seed(...)`: a claim about a METHOD ("word-level KD beats the ground-truth student"), one value per
  training seed, paired by seed. The seed is the largest source of variation here, so a method claim decided from
  fewer than MIN_SEEDS training runs is never "holds" or "does not hold": it reads "one run: see lesson 10 / the
  showdown" (on a --fast run, "needs the default run").
- `by_prompt(..., seed)`: a claim about two PARTICULAR MODELS (both trained with `seed`), one value per test prompt,
  paired by prompt. It says how these two models differ on these prompts, not what the methods do in general.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Two-sided 95 % critical values of Student's t distribution by degrees of freedom (any statistics table).
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
       11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
       20: 2.086, 25: 2.060, 30: 2.042, 40: 2.021, 60: 2.000, 120: 1.980}


def t95(df: int) -> float:
    """t_{0.975, df}; between table rows the smaller df is used (a slightly wider, safe interval)."""
    if df < 1:
        raise ValueError(f"need at least 2 values (df >= 1) for an interval, got df={df}")
    if df > 120:
        return 1.960
    return T95[max(k for k in T95 if k <= df)]


@dataclass(frozen=True)
class Interval:
    mean: float
    lo: float  # nan with a single value: one seed gives no interval
    hi: float
    n: int

    @property
    def separable(self) -> bool:
        """True when the interval lies entirely on one side of 0."""
        return self.n >= 2 and (self.lo > 0 or self.hi < 0)


def mean_interval(values: list[float]) -> Interval:
    """Mean and 95 % t interval of the values (of paired differences, typically)."""
    n = len(values)
    if n == 0:
        raise ValueError("mean_interval: no values")
    mean = sum(values) / n
    if n == 1:
        return Interval(mean, math.nan, math.nan, 1)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t95(n - 1) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


def paired(a: list[float], b: list[float] | float) -> Interval:
    """Interval of a_i - b_i (b a list of the same length, paired by seed or by prompt), or of a_i - b."""
    if isinstance(b, (int, float)):
        b = [b] * len(a)
    if len(a) != len(b):
        raise ValueError(f"paired: {len(a)} values against {len(b)}; pair them by seed (or by prompt)")
    return mean_interval([x - y for x, y in zip(a, b)])


def direction(iv: Interval) -> str:
    """">" (a above b), "<" (a below b), or "≈" (not separable: the interval holds 0, or one seed)."""
    if not iv.separable:
        return "≈"
    return ">" if iv.lo > 0 else "<"


MIN_SEEDS = 3  # training runs a method claim needs before it may hold or fail
ONE_RUN = "one run: see lesson 10 / the showdown"  # a method claim from fewer seeds, on a default run


@dataclass(frozen=True)
class Paired:
    """What a and b of a claim are, and what they are paired by: the unit its verdict is about."""
    what: str  # what a and b are ("word-KD − ground truth, test accuracy")
    over: str  # "seeds" (a method: one value per training seed) or "prompts" (two models: one per test prompt)
    seed: int | None = None  # over prompts: the training seed of the two particular models
    models: str = "these two models"  # over prompts: which models ("this teacher": one model on two targets)

    def __post_init__(self):
        if self.over not in ("seeds", "prompts"):
            raise ValueError(f"Paired.over must be 'seeds' or 'prompts', got {self.over!r}")
        if self.over == "prompts" and self.seed is None:
            raise ValueError(f"a claim about particular models names their training seed ({self.what!r})")


def by_seed(what: str) -> Paired:
    """a and b hold one value per training seed: the claim is about the METHODS."""
    return Paired(what, "seeds")


def by_prompt(what: str, seed: int, models: str = "these two models") -> Paired:
    """a and b hold one value per test prompt of two models trained with `seed`: the claim is about THESE MODELS."""
    return Paired(what, "prompts", seed, models)


@dataclass(frozen=True)
class Claim:
    text: str  # the statement being tested, in words ("seq-KD beats the ground-truth student")
    expect: str  # ">", "<" or "≈": what the statement says about a - b ("=" for a fact checked by check())
    what: str  # what a and b are ("seq_kd − gt, greedy test accuracy"), or a fact's evidence
    diff: Interval | None  # a - b, scaled; None for a fact
    unit: str  # "points", "nats", ...
    fact: bool | None = None  # check(): the computed truth of the statement
    fast: bool = False  # made on a --fast (tiny) run: an undecided claim there needs the default run
    inputs: dict | None = None  # the numbers it was decided from (a, b, scale): saved with a lesson's results
    over: str | None = None  # "seeds" (a method), "prompts" (two particular models), None (not said: older calls)
    seed: int | None = None  # over prompts: the two models' training seed
    models: str | None = None  # over prompts: which models ("these two models")

    @property
    def found(self) -> str:
        if self.diff is None:
            return "=" if self.fact else "≠"
        return direction(self.diff)

    @property
    def verdict(self) -> str:
        """"holds", "does not hold", "not separable" (the data cannot tell), or, for a claim of
        no difference, "consistent" (not separable: no difference was found, none is proven absent).
        On a --fast run every verdict but "holds" reads "needs the default run": a tiny run that
        does not show an effect says nothing about the effect. A method claim (over seeds) from fewer than
        MIN_SEEDS training runs is neither "holds" nor "does not hold" (ONE_RUN)."""
        if self.over == "seeds" and self.diff is not None and self.diff.n < MIN_SEEDS:
            return "needs the default run" if self.fast else ONE_RUN if self.diff.n == 1 else \
                f"{self.diff.n} runs: see lesson 10 / the showdown"
        if self.diff is None:
            v = "holds" if self.fact else "does not hold"
        elif self.found == "≈":
            v = "consistent (not separable)" if self.expect == "≈" else "not separable"
        else:
            v = "holds" if self.found == self.expect else "does not hold"
        if self.fast and v not in ("holds", "consistent (not separable)"):
            return "needs the default run"
        return v

    @property
    def holds(self) -> bool:
        return self.verdict in ("holds", "consistent (not separable)")

    def evidence(self) -> str:
        d = self.diff
        if d is None:
            return self.what
        n = {"seeds": f"n = {d.n} training seeds, paired by seed",
             "prompts": f"n = {d.n} test prompts; {self.models} (seed {self.seed}), paired by test prompt",
             None: f"n = {d.n}"}[self.over]
        if d.n == 1:
            return f"{self.what}: {d.mean:+.2f} {self.unit} (one value: no interval; {n})"
        return f"{self.what}: {d.mean:+.2f} {self.unit}, 95 % CI [{d.lo:+.2f}, {d.hi:+.2f}], {n}"

    def sentence(self) -> str:
        return f"[{self.verdict}] {self.text} — {self.evidence()}"


LOG: list[Claim] = []  # every claim this process stated, in order (the tests read it)


def say(c: Claim) -> Claim:
    """State a decided claim: print its sentence and log it."""
    LOG.append(c)
    print("  " + c.sentence())
    return c


def decide(text: str, a: list[float], b: list[float] | float, expect: str = ">", what: Paired | str = "a − b",
           scale: float = 1.0, unit: str = "", fast: bool = False) -> Claim:
    """Test `text` ("a is above b" for expect ">") on paired values and return the Claim, unprinted.

    a, b: one value per seed or per prompt (same order), or b a constant. what: by_seed(...) (a method claim) or
    by_prompt(..., seed) (two particular models); a plain string leaves the unit unsaid. scale: e.g. 100 to speak
    of accuracy in percentage points. fast: the run is a --fast one (see Claim.verdict)."""
    if expect not in (">", "<", "≈"):
        raise ValueError(f"expect must be '>', '<' or '≈', got {expect!r}")
    iv = paired(a, b)
    iv = Interval(iv.mean * scale, iv.lo * scale, iv.hi * scale, iv.n)
    b_values = b if isinstance(b, (int, float)) else list(b)
    how = what if isinstance(what, Paired) else Paired(what, "seeds")  # a plain string: the unit left unsaid
    unsaid, per_prompt = not isinstance(what, Paired), how.over == "prompts"
    return Claim(text, expect, how.what, iv, unit, fast=fast, inputs={"a": list(a), "b": b_values, "scale": scale},
                 over=None if unsaid else how.over, seed=how.seed if per_prompt else None,
                 models=how.models if per_prompt else None)


def claim(text: str, a: list[float], b: list[float] | float, expect: str = ">", what: Paired | str = "a − b",
          scale: float = 1.0, unit: str = "", fast: bool = False) -> Claim:
    """decide() and say(): the one way a lesson states a result about paired numbers."""
    return say(decide(text, a, b, expect, what, scale, unit, fast))


def check(text: str, holds: bool, evidence: str, fast: bool = False) -> Claim:
    """State a statement that is exactly true or false, no sampling involved ("resumed weights equal the
    uninterrupted run's"): `holds` is computed by the caller from the numbers in `evidence`."""
    return say(Claim(text, "=", evidence, None, "", fact=bool(holds), fast=fast))


def mean(values) -> float:
    """The mean of numbers or booleans (True = 1: an accuracy from per-prompt correctness); 0 for none."""
    values = [float(v) for v in values]
    return sum(values) / max(1, len(values))


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    m = sum(values) / len(values)
    if len(values) < 2:
        return m, 0.0
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))
