"""The prompt world: verifiers on hand-written answers, noise, splits, shipped files."""

import dataclasses
import json
import random
from pathlib import Path

import pytest

from minikd import world
from minikd.world import (
    DEFAULT_WORLD,
    FAMILIES,
    FORMS,
    WorldConfig,
    build_default_sets,
    check_trace,
    extract_answer,
    make_record,
    make_split,
    surface_form,
    trace_errors,
    true_answer,
    verify,
)

DATA = Path(__file__).resolve().parents[1] / "data"
SMALL = WorldConfig(n_train=300, n_unlabelled=400, n_test=60, n_heldout=30)


# --- verifiers on hand-written answers -------------------------------------
# (task, prompt, {form: a right answer in that form}, [wrong answers])
HAND = [
    (
        "add",
        "What is 123 + 45?",
        {"bare": "168", "sentence": "The answer is 168.", "equation": "123 + 45 = 168"},
        ["167", "The answer is 167.", "123 + 45 = 169", "0168", "The answer is 168", "168.", "", "one six eight"],
    ),
    (
        "sort",
        "Sort 5 3 9 1 3.",
        {"bare": "1 3 3 5 9", "sentence": "Sorted: 1 3 3 5 9.", "commas": "1, 3, 3, 5, 9"},
        ["1 3 5 9", "1 3 3 9 5", "Sorted: 1 3 5 3 9.", "1, 3, 3, 5", "9 5 3 3 1", "1 3 3 5 9 9", "13359"],
    ),
    (
        "add_steps",
        "Add 478 + 265 step by step.",
        {
            "sentence": "8+5=13 carry 1. 7+6+1=14 carry 1. 4+2+1=7. The answer is 743.",
            "sum": "8+5=13 carry 1. 7+6+1=14 carry 1. 4+2+1=7. Sum: 743.",
        },
        ["8+5=13 carry 1. 7+6+1=14 carry 1. 4+2+1=7. The answer is 742.", "Sum: 733.", "743", "The answer is 743"],
    ),
]


@pytest.mark.parametrize("task,prompt,right,wrong", HAND, ids=[h[0] for h in HAND])
def test_verifier_accepts_every_surface_form(task, prompt, right, wrong):
    assert set(right) == set(FORMS[task])  # every form is covered by a hand-written answer
    for form, response in right.items():
        assert verify(prompt, response), (form, response)
        assert verify(prompt, "  " + response + "\n")  # surrounding whitespace is not part of the answer
        assert surface_form(task, response) == form
        assert extract_answer(task, response) == true_answer(prompt)


@pytest.mark.parametrize("task,prompt,right,wrong", HAND, ids=[h[0] for h in HAND])
def test_verifier_rejects_wrong_answers(task, prompt, right, wrong):
    for response in wrong:
        assert not verify(prompt, response), response


def test_true_answer_and_extract_by_hand():
    assert true_answer("What is 999 + 1?") == "1000"
    assert true_answer("Sort 0 9 0 8.") == "0 0 8 9"
    assert true_answer("Add 5 + 7 step by step.") == "12"
    assert extract_answer("sort", "Sorted: 0 0 8 9.") == "0 0 8 9"
    assert extract_answer("add", "0168") == "0168"  # returned as written ...
    assert not verify("What is 123 + 45?", "0168")  # ... and a leading zero is wrong
    assert extract_answer("add", "about 168") is None


def test_equation_form_must_restate_the_prompt():
    # 168 is the right number, but the equation is about other operands
    assert extract_answer("add", "100 + 68 = 168") == "168"
    assert not verify("What is 123 + 45?", "100 + 68 = 168")


def test_verify_takes_a_record_and_trusts_only_the_prompt():
    record = {"prompt": "What is 2 + 2?", "answer": "5"}
    assert verify(record, "4")
    assert not verify(record, "5")


def test_add_steps_verify_checks_only_the_final_answer():
    prompt = "Add 478 + 265 step by step."
    sloppy = "8+5=12. 7+6=13. 4+2=6. The answer is 743."
    assert verify(prompt, sloppy) and verify(prompt, "The answer is 743.")
    assert not check_trace(prompt, sloppy)
    assert not check_trace(prompt, "The answer is 743.")  # no steps at all


# --- check_trace -------------------------------------------------------------
def test_check_trace_accepts_right_solutions_with_padding_and_final_carry():
    assert check_trace("Add 478 + 265 step by step.", HAND[2][2]["sentence"])
    assert check_trace("Add 13 + 562 step by step.", "3+2=5. 1+6=7. 0+5=5. Sum: 575.")
    assert check_trace("Add 95 + 7 step by step.", "5+7=12 carry 1. 9+0+1=10 carry 1. The answer is 102.")


@pytest.mark.parametrize(
    "response,message",
    [
        ("8+5=13 carry 1. 7+6+1=15 carry 1. 4+2+1=7. The answer is 753.", "step 2: 7+6+1 is 14, not 15"),
        ("8+5=13 carry 1. 7+6=13 carry 1. 4+2+1=7. The answer is 743.", "step 2: carry-in is 1"),
        ("8+5=13. 7+6+1=14 carry 1. 4+2+1=7. The answer is 743.", "step 1: write 'carry 1'"),
        ("8+5=13 carry 1. 6+7+1=14 carry 1. 4+2+1=7. The answer is 743.", "step 2: adds 6+7"),
        ("8+5=13 carry 1. 7+6+1=14 carry 1. The answer is 743.", "expected 3 column steps"),
        ("8+5=13 carry 1. seven plus six. 4+2+1=7. The answer is 743.", "step 2: 'seven plus six.' is not a step"),
        ("8+5=13 carry 1. 7+6+1=14 carry 1. 4+2+1=7. The answer is 744.", "final answer 744 is wrong"),
        ("8+5=13 carry 1. 7+6+1=14 carry 1. 4+2+1=7.", "no final answer"),
    ],
)
def test_check_trace_catches_a_wrong_step(response, message):
    prompt = "Add 478 + 265 step by step."
    errors = trace_errors(prompt, response)
    assert not check_trace(prompt, response)
    assert any(message in e for e in errors), errors


def test_check_trace_refuses_other_families():
    with pytest.raises(ValueError, match="not 'add_steps'"):
        check_trace("What is 1 + 2?", "3")


# --- records and noise -------------------------------------------------------
@pytest.mark.parametrize("family", FAMILIES)
def test_clean_records_verify_and_noisy_records_fail(family):
    rng = random.Random(0)
    for i in range(200):
        clean = make_record(family, rng, 3, 0.0, i)
        noisy = make_record(family, rng, 3, 1.0, i)
        assert verify(clean, clean["completion"]) and not clean["label_noisy"]
        assert noisy["label_noisy"] and not verify(noisy, noisy["completion"])
        assert noisy["answer"] == true_answer(noisy["prompt"])  # the record still says the truth
        assert surface_form(family, noisy["completion"]) == noisy["form"]  # noise keeps the form
        if family == "add_steps":
            assert check_trace(clean["prompt"], clean["completion"])
            assert not check_trace(noisy["prompt"], noisy["completion"])  # the slip is a wrong step


def test_record_fields():
    rec = make_record("add", random.Random(1), 3, 0.0, 7, split="train")
    assert list(rec) == ["id", "task", "prompt", "completion", "answer", "source", "label_noisy", "form"]
    assert rec["id"] == "train-00007" and rec["source"] == "ground_truth"


def test_make_record_noise_is_a_probability():
    rng = random.Random(3)
    frac = sum(make_record("add", rng, 3, 0.3, i)["label_noisy"] for i in range(3000)) / 3000
    assert abs(frac - 0.3) < 0.03


def test_train_split_noise_fraction_is_exact_and_eval_splits_are_clean():
    train = make_split("train", 300, SMALL)
    assert sum(r["label_noisy"] for r in train) == round(SMALL.noise * 300) == 120
    assert sum(not verify(r, r["completion"]) for r in train) == 120
    for name in ("test", "heldout"):
        assert all(verify(r, r["completion"]) for r in make_split(name, 60, SMALL))


def test_single_form_world_uses_one_form_and_default_world_uses_all():
    many = make_split("train", 300, SMALL)
    one = make_split("train", 300, dataclasses.replace(SMALL, single_form=True))
    for family in SMALL.families:
        assert {r["form"] for r in many if r["task"] == family} == set(FORMS[family])
        assert {r["form"] for r in one if r["task"] == family} == {FORMS[family][0]}


# --- splits ------------------------------------------------------------------
def test_make_split_is_deterministic():
    assert make_split("train", 200, SMALL) == make_split("train", 200, SMALL)
    assert make_split("test", 50, SMALL, rng=5) == make_split("test", 50, SMALL, rng=5)
    assert make_split("train", 200, SMALL) != make_split("train", 200, dataclasses.replace(SMALL, seed=1))


def test_splits_are_disjoint_balanced_and_unlabelled_has_no_completion():
    sets = world.default_sets(SMALL)
    prompts = {name: [r["prompt"] for r in recs] for name, recs in sets.items()}
    for name, ps in prompts.items():
        assert len(ps) == len(set(ps)), f"{name} repeats a prompt"
    names = list(prompts)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not set(prompts[a]) & set(prompts[b]), (a, b)
    assert all(list(r) == ["id", "task", "prompt", "answer"] for r in sets["unlabelled"])
    assert all(r["answer"] == true_answer(r["prompt"]) for r in sets["unlabelled"])
    assert [r["task"] for r in sets["train"][:6]] == list(SMALL.families) * 3


def test_exclude_is_honoured_even_when_prompts_run_short():
    cfg = WorldConfig(digits=1, families=("add",))  # 55 one-digit additions without a carry (the rest: held out)
    first = make_split("test", 30, cfg)
    second = make_split("test", 20, cfg, rng=9, exclude={r["prompt"] for r in first})
    assert not {r["prompt"] for r in first} & {r["prompt"] for r in second}
    with pytest.raises(ValueError, match="ran out of new 'add' prompts"):
        make_split("test", 60, cfg)


@pytest.mark.parametrize("family,numbers,held", [
    ("add_steps", (58, 67), True),  # 8+7=15 carry 1, 5+6+1=12 carry 1: every column carries
    ("add_steps", (95, 5), True),  # 5+5=10 carry 1, 9+0+1=10 carry 1
    ("add_steps", (58, 61), False),  # 8+1=9: the units do not carry
    ("add", (9, 9), True),
    ("sort", (3, 1, 3, 3), True),
    ("sort", (3, 1, 3, 2), False),
])
def test_heldout_rule_by_hand(family, numbers, held):
    assert world.is_heldout(family, numbers) is held


def test_heldout_split_holds_only_rule_cases_and_the_other_splits_none():
    sets = world.default_sets(SMALL)
    for name, records in sets.items():
        held = [world.is_heldout(*world.parse_prompt(r["prompt"])) for r in records]
        assert all(held) if name == "heldout" else not any(held), name
    for r in sets["heldout"]:  # the same size as training: no longer inputs, no new positions
        family, numbers = world.parse_prompt(r["prompt"])
        if family == "sort":
            assert len(numbers) == SMALL.digits + 2
        else:
            assert len(str(max(numbers))) == SMALL.digits


# --- errors ------------------------------------------------------------------
@pytest.mark.parametrize("prompt", ["What is 1 + ?", "Sort 12 3.", "Tell me a joke.", "What is 1 - 2?"])
def test_unparseable_prompt_is_a_clear_error(prompt):
    with pytest.raises(ValueError, match="unparseable prompt") as info:
        true_answer(prompt)
    assert repr(prompt) in str(info.value)
    with pytest.raises(ValueError, match="unparseable prompt"):
        verify(prompt, "3")


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="noise"):
        WorldConfig(noise=1.5)
    with pytest.raises(ValueError, match="digits"):
        WorldConfig(digits=0)
    with pytest.raises(ValueError, match="distinct families"):
        WorldConfig(families=("sort", "sort"))
    with pytest.raises(ValueError, match="unknown family 'mul'"):
        WorldConfig(families=("add", "mul"))
    with pytest.raises(ValueError, match="unknown split"):
        make_split("dev", 10)
    with pytest.raises(ValueError, match="unknown task"):
        extract_answer("mul", "6")


# --- shipped files -----------------------------------------------------------
def test_build_is_byte_identical_and_records_the_world(tmp_path):
    a = build_default_sets(tmp_path / "a", SMALL)
    b = build_default_sets(tmp_path / "b", SMALL)
    for name in a:
        assert a[name].read_bytes() == b[name].read_bytes(), name
    info = json.loads(a["world"].read_text())
    assert info["seed"] == SMALL.seed and info["noise"] == SMALL.noise
    assert info["splits"]["train"]["label_noisy"] == 120
    assert info["splits"]["heldout"]["rule"] == "held-out cases only"
    assert info["heldout_rule"] == {f: world.HELDOUT_RULE[f] for f in SMALL.families}
    assert WorldConfig.from_json(a["world"]) == SMALL
    assert not list(tmp_path.rglob("*.tmp"))


def test_shipped_data_is_what_the_generator_writes(tmp_path):
    """data/ must be regenerated (python -m minikd.world --write) whenever the generator changes, and the
    shipped world is the default one (so `python -m minikd.world --write` with no options reproduces it)."""
    assert WorldConfig.from_json(DATA / "world.json") == DEFAULT_WORLD
    fresh = build_default_sets(tmp_path, DEFAULT_WORLD)
    for name, path in fresh.items():
        assert (DATA / path.name).read_bytes() == path.read_bytes(), f"data/{path.name} is stale"


def test_cli_help_and_demo(capsys):
    with pytest.raises(SystemExit) as info:
        world.main(["--help"])
    assert info.value.code == 0
    world.main([])
    assert "verify=True" in capsys.readouterr().out


def test_cli_write_takes_families_digits_and_noise_and_records_them(tmp_path, capsys):
    world.main(["--write", "--out-dir", str(tmp_path), "--families", "add", "sort", "--digits", "3", "--noise", "0.1",
                "--n-train", "40", "--n-unlabelled", "10", "--n-test", "10", "--n-heldout", "4"])
    cfg = WorldConfig.from_json(tmp_path / "world.json")
    assert (cfg.families, cfg.digits, cfg.noise, cfg.n_train) == (("add", "sort"), 3, 0.1, 40)
    train = [json.loads(line) for line in (tmp_path / "train.jsonl").read_text().splitlines()]
    assert {r["task"] for r in train} == {"add", "sort"} and sum(r["label_noisy"] for r in train) == 4
    with pytest.raises(SystemExit):
        world.main(["--families", "mul"])
