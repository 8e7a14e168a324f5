"""Lesson 13 — on-policy distillation: the student writes, the teacher grades every token it wrote.

Sequence-level KD (lesson 8; Kim & Rush 2016) trains the student on the teacher's text, so every prefix it
learns from is one the teacher wrote; at test time it continues its own. On-policy distillation lets the
student write and has the frozen teacher grade every token of it (MiniLLM, Gu et al. 2024; GKD, Agarwal
et al. 2024; the on-policy distillation recipe Thinking Machines published in 2025):

    1. the student samples answers y to training prompts x (T = 1, the KV cache, seeded by (seed, step))
    2. the teacher reads x + y once: its next-token distribution at every position of the student's prefix
    3. loss = KL(p_student || p_teacher), the reverse KL over the whole vocabulary, at every sampled token

It is one more objective of the one training loop (minikd.on_policy.on_policy_objective + OnPolicyData).
As the published recipes do, it starts from a seq-KD student: seq-KD for half of the student budget (200
of 400 steps), then four continuations of the same weights, at EQUAL compute, on the same prompts, each
given the compute of 100 more seq-KD steps (a quarter of the budget, not a half: the default run must
fit in 5 minutes on 2 cores):
    seq-KD                    100 more seq-KD steps (teacher text, SFT loss)
    on-policy                 reverse KL to the teacher's distribution at T = 1
    on-policy, sharp teacher  reverse KL to softmax(z_teacher / 0.5): the teacher sampled at T = 0.5,
                              nearer to its greedy answer than its T = 1 samples are
    GKD lambda = 0.5          every other step on-policy (reverse KL, T = 1), the others seq-KD batches

Accounting rule (minikd.on_policy.Compute). Work is counted in token-passes, one token through one model,
and FLOPs = 2N per forward token-pass + 4N per backward one (N = that model's parameters). A seq-KD step:
the student reads its batch forward and backward. An on-policy step: sampling (every prompt token and
every written token read once, the KV cache), the teacher's forward pass and the student's forward and
backward passes over prompt + sample. The teacher's labelling of the seq-KD data is paid once, before the
split, and counted for no arm. Every other arm gets as many steps as the seq-KD continuation's compute
buys at its cost per step, estimated on one batch of the base student (a check compares what each arm
really spent).

What to look at:
  1. the teacher as a target: how often its answer is right greedy, sampled at T = 1 and at T = 0.5 (a
     teacher trained on noisy labels may have learned the noise as probability: right greedy, wrong sampled);
  2. one on-policy batch: the student's own answers, the mask under one, the reverse KL at each token;
  3. the compute table: student forward/backward, teacher forward and generated tokens of every arm;
  4. accuracy on the test and heldout splits, every arm, paired by seed; the loss curves;
  5. exposure bias: accuracy when the student continues the first half of the teacher's answer vs from
     its own start, and how often its answer is the teacher's token for token.

Run:  python -m lessons.l13_on_policy      (--fast: tiny models, seconds; the default run reuses the teacher
      of lesson 5 and the teacher answers lesson 8 stored under runs/default/)
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch

from lessons import lesson_parser
from minikd.machinery import rendering
from minikd.runtime import runs_dir
from minikd.data import IGNORE_INDEX, SFTData, read_jsonl
from minikd.evaluate import accuracy, score
from minikd.machinery.labelling import generate_dataset
from minikd.losses import reverse_kl
from minikd.on_policy import Compute, MixedData, OnPolicyData, on_policy_objective, seq_kd_steps_for
from lessons.kit import get_profile, get_teacher, load_split, profile_dir, train_model
from minikd.charts import ascii_bars, ascii_chart, save_line_plot
from minikd.verdict import mean, mean_std
from minikd.seqkd import as_examples, drop_reason, filter_records
from minikd.what_seqkd_loses import continue_from, first_divergence, prefix_correct
from minikd.tokenizer import Tokenizer
from minikd.train import TrainConfig, train
from minikd.verdict import LOG, check, claim
from minikd.word_kd import run_teacher

T_SHARP = 0.5  # the sharp teacher's temperature
SHARE = 0.5  # GKD's lambda: the share of on-policy steps in the mixture
CONTINUE_LR = 3e-3  # every continuation's peak learning rate (warmup, then cosine, like every run)
MAX_NEW_TOKENS = 40  # sampled and evaluated answers are cut here (the teacher's longest answer: 27 tokens)
EXPOSURE_PROMPTS = 300  # the first test prompts: the teacher-as-target and exposure-bias slice
EXPOSURE_KEYS = ("test", "heldout", "own start", "teacher prefix")  # the measures every arm gets, in table order
TOLERANCE = 0.15  # how far an arm's counted compute may miss the budget (its per-step cost is estimated)
ARMS = {  # name -> (share of on-policy steps, teacher temperature)
    "seq-KD": (0.0, 1.0),
    "on-policy": (1.0, 1.0),
    "on-policy, sharp teacher": (1.0, T_SHARP),
    f"GKD lambda = {SHARE}": (SHARE, 1.0),
}


@dataclass
class Setup:
    """Everything every arm of every seed shares."""
    profile: object
    tok: Tokenizer
    teacher: object
    examples: list  # the seq-KD data: the teacher's answers, rendered for SFT
    prompts: list  # the same prompts, rendered: what the student answers on-policy (same order)
    device: str
    base_steps: int  # seq-KD steps of the base student: half of the student budget
    cont_steps: int  # the continuations get the compute of this many more seq-KD steps
    lr: float  # the continuations' peak learning rate
    max_new_tokens: int  # the student's sampled answers are cut at this length


def seqkd_examples(teacher, tok, profile, limit: int | None) -> list[dict]:
    """Lesson 8's stored teacher answers (made once, shared: same file, same settings), cut-off ones dropped."""
    prompts = load_split("unlabelled", profile, tok)
    path = profile_dir(profile) / "seqkd_unlabelled_greedy.jsonl"
    generate_dataset(teacher, tok, prompts, path, teacher_ckpt=profile_dir(profile) / "teacher.pt",
                     stale="restart", max_new_tokens=limit)
    raw = list(read_jsonl(path))
    kept, _ = filter_records(raw, lambda r: drop_reason(r, tok, profile.block_size, verify=False))
    if not kept:  # only the --fast teacher (a few steps) is this bad; lesson 8 does the same
        kept, _ = filter_records(raw, lambda r: drop_reason(r, tok, profile.block_size, False, drop_truncated=False))
    return as_examples(kept, tok)


def teacher_as_target(teacher, tok, records: list[dict], limit: int, fast: bool) -> list[list[int]]:
    """Step 1: how often the teacher is right greedy vs sampled (T = 1, T_SHARP); returns its greedy answers."""
    own, ended = zip(*continue_from(teacher, tok, records, [[] for _ in records], limit))
    rows = {"greedy": [score(r["prompt"], tok.decode(a), e) for r, a, e in zip(records, own, ended)]}
    for T in (1.0, T_SHARP):
        rows[f"sampled at T = {T:g}"] = accuracy(teacher, tok, records, method="sample", temperature=T, seed=0,
                                                 max_new_tokens=limit)["correct"]
    print(ascii_bars({k: round(100 * sum(v) / len(v), 1) for k, v in rows.items()}, width=30, unit="%"))
    floats = {k: [float(x) for x in v] for k, v in rows.items()}
    claim("sampled at T = 1, the teacher is right less often than greedy", floats["sampled at T = 1"],
          floats["greedy"], "<", "sampled − greedy, per prompt", scale=100, unit="points", fast=fast)
    claim(f"sampled at T = {T_SHARP:g}, the teacher is right more often than at T = 1",
          floats[f"sampled at T = {T_SHARP:g}"], floats["sampled at T = 1"], ">",
          f"T = {T_SHARP:g} − T = 1, per prompt", scale=100, unit="points", fast=fast)
    return [list(a) for a in own]


def show_one_batch(setup: Setup, student) -> None:
    """Step 2: the student's own answer to a training prompt, the mask under it, the reverse KL at each token."""
    data = OnPolicyData(student, setup.prompts, setup.tok, batch_size=2, seed=0, max_new_tokens=setup.max_new_tokens)
    batch = {k: v.to(next(student.parameters()).device) for k, v in data.get_batch(0).items()}
    with torch.no_grad():
        rkl = reverse_kl(run_teacher(setup.teacher, batch["inputs"]), student(batch["inputs"]))  # (B, T)
    inputs, targets = batch["inputs"][0], batch["targets"][0]  # (T,) row 0
    n = int((inputs != setup.tok.pad_id).sum())  # its real length
    keep = (targets[:n] != IGNORE_INDEX).tolist()
    print(setup.tok.draw_mask(inputs[:n].tolist() + [int(targets[n - 1])], [0] + [int(k) for k in keep]))
    print("  reverse KL(student || teacher) at each sampled token, in nats (the loss is their mean):")
    cells = [f"{setup.tok.decode([int(t)])!r} {float(v):.2f}" for t, v, k in zip(targets[:n], rkl[0, :n], keep) if k]
    print("    " + " | ".join(cells))


def continue_arm(setup: Setup, base, name: str, steps: int, seed: int):
    """Train a copy of the base student for `steps` more steps in arm `name`; returns (model, history, Compute).

    Every arm draws the prompts of steps base_steps, base_steps + 1, ... (the seq-KD run's second half)."""
    share, t_teacher = ARMS[name]
    model, start = copy.deepcopy(base), setup.base_steps
    compute = Compute()
    offline = SFTData(setup.examples, setup.tok.pad_id, setup.profile.batch_size, seed=seed)
    on = OnPolicyData(model, setup.prompts, setup.tok, setup.profile.batch_size, seed, setup.max_new_tokens, compute)
    mixed = MixedData(on, offline, share)
    cfg = TrainConfig(steps=steps, lr=setup.lr, warmup=max(1, steps // 10), device=setup.device, seed=seed,
                      length_groups=min(setup.profile.length_groups, setup.profile.batch_size), log_every=0)
    history = train(model, lambda step: mixed.get_batch(start + step), on_policy_objective(setup.teacher, 1.0, t_teacher),
                    cfg)
    return model, history, compute


def steps_for_budget(setup: Setup, base, name: str, budget: float, seed: int) -> int:
    """How many steps of arm `name` the budget buys: its cost per step, estimated on one batch of the base."""
    share, _ = ARMS[name]
    offline = SFTData(setup.examples, setup.tok.pad_id, setup.profile.batch_size, seed=seed)
    n_student, n_teacher = base.num_params(), setup.teacher.num_params()
    if share == 0.0:
        return seq_kd_steps_for(budget, offline, n_student, start=setup.base_steps)
    probe = Compute()
    OnPolicyData(base, setup.prompts, setup.tok, setup.profile.batch_size, seed, setup.max_new_tokens,
                 probe).get_batch(setup.base_steps)
    seq_step = budget / seq_kd_steps_for(budget, offline, n_student, start=setup.base_steps)
    per_step = share * probe.flops(n_student, n_teacher) + (1 - share) * seq_step
    return max(1, round(budget / per_step))


def seq_kd_budget(setup: Setup, n_student: int, seed: int) -> float:
    """The continuation budget: the FLOPs of seq-KD steps base_steps .. base_steps + cont_steps - 1."""
    offline = SFTData(setup.examples, setup.tok.pad_id, setup.profile.batch_size, seed=seed)
    compute = Compute()
    for step in range(setup.base_steps, setup.base_steps + setup.cont_steps):
        compute.add_seq_kd(offline.get_batch(step), setup.tok.pad_id)
    return compute.flops(n_student, 0)


def measure(model, tok, evalset: dict, limit: int) -> dict:
    """Test and heldout accuracy; on the exposure slice (the first test prompts): right from its own start,
    right when continuing the first half of the teacher's answer, and the same tokens as the teacher's."""
    test, answers = evalset["test"], evalset["teacher answers"]
    own = continue_from(model, tok, test, [[] for _ in test], limit)
    correct = [score(r["prompt"], tok.decode(ids), e) for r, (ids, e) in zip(test, own)]
    n = len(answers)
    from_teacher = prefix_correct(model, tok, test[:n], answers, 0.5, limit)
    same = [first_divergence(ids, t) is None for (ids, _), t in zip(own[:n], answers)]
    heldout = accuracy(model, tok, evalset["heldout"], max_new_tokens=limit)["correct"]
    return {"test": mean(correct), "heldout": mean(heldout), "own start": mean(correct[:n]),
            "teacher prefix": mean(from_teacher), "same as teacher": mean(same)}


def run_seed(setup: Setup, seed: int, evalset: dict, limit: int, show: bool) -> dict:
    """Step 3 for one seed: the base (seq-KD, half the budget), then every arm at the same compute."""
    base, _ = train_model(setup.profile.student_config(setup.tok.vocab_size), setup.examples, setup.base_steps,
                          setup.profile, lr=setup.profile.student_lr, seed=seed, device=setup.device, tok=setup.tok,
                          log_every=0)
    if show:
        print(f"\nStep 2: one on-policy batch of the base student (seed {seed}): its own answer, the mask under it")
        show_one_batch(setup, base)
        print(f"\nStep 3: every arm continues the base at the compute of {setup.cont_steps} more seq-KD steps")
    out = {"base": {"measure": measure(base, setup.tok, evalset, limit)}, "n_student": base.num_params()}
    budget = seq_kd_budget(setup, base.num_params(), seed)
    for name in ARMS:
        steps = steps_for_budget(setup, base, name, budget, seed)
        t0 = time.perf_counter()
        model, history, compute = continue_arm(setup, base, name, steps, seed)
        seconds = time.perf_counter() - t0
        out[name] = {"steps": steps, "compute": compute, "history": history, "seconds": seconds, "budget": budget,
                     "measure": measure(model, setup.tok, evalset, limit)}
        m = out[name]["measure"]
        print(f"  seed {seed} {name:26s} {steps:4d} steps {seconds:5.1f} s | test {100 * m['test']:5.1f}% | "
              f"heldout {100 * m['heldout']:5.1f}%")
    return out


def show_compute(results: list[dict], n_student: int, n_teacher: int, fast: bool) -> None:
    """Step 4: the counted compute of every arm (seed 0), and the check that every arm matched the budget."""
    print(f"\nStep 4: compute per arm (seed 0; token-passes; FLOPs = 2N forward + 4N backward, N = "
          f"{n_student:,} student / {n_teacher:,} teacher parameters)")
    print(f"  {'arm':26s} {'steps':>16s} {'student fwd':>12s} {'student bwd':>12s} {'teacher fwd':>12s} "
          f"{'generated':>10s} {'GFLOPs':>8s}")
    for name in ARMS:
        r = results[0][name]
        c = r["compute"]
        kinds = ", ".join(f"{n} {k}" for k, n in c.steps.items())
        print(f"  {name:26s} {kinds:>16s} {c.student_forward:12,d} {c.student_backward:12,d} "
              f"{c.teacher_forward:12,d} {c.generated:10,d} {c.flops(n_student, n_teacher) / 1e9:8.2f}")
    ratios = [r[name]["compute"].flops(n_student, n_teacher) / r[name]["budget"] for r in results for name in ARMS]
    check(f"every arm spent the seq-KD continuation's compute to within {TOLERANCE:.0%}, every seed",
                 all(abs(x - 1) <= TOLERANCE for x in ratios),
                 f"spent / budget: {min(ratios):.3f} to {max(ratios):.3f} over {len(results)} seeds x {len(ARMS)} arms",
                 fast=fast)


def show_accuracy(results: list[dict]) -> dict:
    """Step 5: accuracy and the exposure-bias measures of every arm, mean over seeds; bars and loss curves."""
    names = ["base"] + list(ARMS)
    keys = EXPOSURE_KEYS + ("same as teacher",)
    means = {n: {k: mean(r[n]["measure"][k] for r in results) for k in keys} for n in names}
    print(f"\nStep 5: accuracy (mean of {len(results)} seeds), greedy; exposure slice: right from its own start, "
          "right continuing the teacher's first half, token for token the teacher's answer")
    print(f"  {'':26s}" + "".join(f"{k:>16s}" for k in keys))
    for n in names:
        print(f"  {n:26s}" + "".join(f"{100 * means[n][k]:15.1f}%" for k in keys))
    print(ascii_bars({n: round(100 * means[n]["test"], 1) for n in names}, width=30, unit="% test"))
    series = {n: ([100 * h["step"] / len(results[0][n]["history"]) for h in results[0][n]["history"]],
                  [h["loss"] for h in results[0][n]["history"]]) for n in ARMS}
    ylabel = "loss per token (seq-KD: NLL, on-policy: reverse KL)"
    print(ascii_chart(series, height=10, xlabel="% of the compute budget", ylabel=ylabel))
    png = save_line_plot(runs_dir() / "plots" / "l13_on_policy_losses.png", series, "% of the compute budget",
                         ylabel, "Continuations of a seq-KD student at equal compute (seed 0)")
    if png:
        print(f"  (also drawn to {png})")
    return means


def verdicts(results: list[dict], fast: bool) -> None:
    """Step 6: the comparisons, paired by seed (the arms of a seed share its base student and its prompts)."""
    def per_seed(name, key):
        return [r[name]["measure"][key] for r in results]

    def gap(name):  # exposure bias: right continuing the teacher's first half minus right from its own start
        return [a - b for a, b in zip(per_seed(name, "teacher prefix"), per_seed(name, "own start"))]

    what = "per seed, equal compute"
    for split in ("test", "heldout"):
        claim(f"continued seq-KD beats on-policy reverse KL to the teacher at T = 1 ({split} split)",
              per_seed("seq-KD", split), per_seed("on-policy", split), ">", f"seq-KD − on-policy, {what}",
              scale=100, unit="points", fast=fast)
    claim(f"a sharp teacher (T = {T_SHARP:g}) makes on-policy distillation more accurate than the teacher at T = 1",
          per_seed("on-policy, sharp teacher", "test"), per_seed("on-policy", "test"), ">",
          f"sharp − T = 1, test split, {what}", scale=100, unit="points", fast=fast)
    for name in ("on-policy, sharp teacher", f"GKD lambda = {SHARE}"):
        claim(f"{name} beats continued seq-KD (test split)", per_seed(name, "test"), per_seed("seq-KD", "test"),
              ">", f"{name} − seq-KD, {what}", scale=100, unit="points", fast=fast)
    claim("the base seq-KD student is right more often continuing the teacher's first half than from its own "
          "start (exposure bias)", per_seed("base", "teacher prefix"), per_seed("base", "own start"), ">",
          "teacher prefix − own start, per seed", scale=100, unit="points", fast=fast)
    for name in ("on-policy", "on-policy, sharp teacher"):
        claim(f"{name} training leaves a smaller exposure-bias gap than continued seq-KD", gap(name), gap("seq-KD"),
              "<", f"gap {name} − gap seq-KD (gap = teacher prefix − own start), {what}", scale=100,
              unit="points", fast=fast)


def results_table(results: list[dict], n_student: int, n_teacher: int) -> tuple[list[str], list[list]]:
    """The README's table: every arm's compute (seed 0) and accuracy, mean ± sd over seeds."""
    def pm(name, key):
        values = [100 * r[name]["measure"][key] for r in results]
        return f"{mean_std(values)[0]:.1f} ± {mean_std(values)[1]:.1f}"

    header = ["arm", "steps (seed 0)", "GFLOPs", "test %", "held-out %", "own start %", "teacher's first half %"]
    rows = [["base (seq-KD, half the budget)", "", ""] + [pm("base", k) for k in EXPOSURE_KEYS]]
    for name in ARMS:
        c = results[0][name]["compute"]
        steps = ", ".join(f"{n} {k}" for k, n in c.steps.items())
        rows.append([name, steps, f"{c.flops(n_student, n_teacher) / 1e9:.2f}"] + [pm(name, k) for k in EXPOSURE_KEYS])
    return header, rows


def make_setup(args, profile, tok, limit: int | None) -> Setup:
    """The teacher (cached by lesson 5), lesson 8's stored answers, the prompts rendered for sampling."""
    teacher, _ = get_teacher(profile, device=args.device, seed=0)
    examples = seqkd_examples(teacher, tok, profile, limit)
    prompts = [tok.render_prompt(e["prompt"]) for e in examples]
    base = profile.student_steps // 2
    return Setup(profile, tok, teacher, examples, prompts, args.device, base_steps=base, cont_steps=base // 2,
                 lr=CONTINUE_LR, max_new_tokens=limit or MAX_NEW_TOKENS)


def main(argv=None):
    parser = lesson_parser(__doc__, "tiny models, a slice of the data, 2 seeds")
    parser.add_argument("--seeds", type=int, default=3, help="seeds (each: a base student and every arm)")
    args = parser.parse_args(argv)
    profile = get_profile("quick" if args.fast else "default")
    tok = Tokenizer.default()
    limit = 16 if args.fast else None  # --fast: the barely trained teacher rarely stops; keep answers short
    seeds = [args.seed + i for i in range(2 if args.fast else args.seeds)]
    n_claims, start = len(LOG), time.perf_counter()
    setup = make_setup(args, profile, tok, limit)
    eval_limit = limit or MAX_NEW_TOKENS
    test = load_split("test", profile, tok)[:24 if args.fast else None]
    n_slice = 16 if args.fast else EXPOSURE_PROMPTS
    print(f"Step 1: the teacher as a target, on {n_slice} test prompts: how often its answer is right")
    answers = teacher_as_target(setup.teacher, tok, test[:n_slice], eval_limit, args.fast)
    evalset = {"test": test, "heldout": load_split("heldout", profile, tok), "teacher answers": answers}
    print(f"  the base: seq-KD on {len(setup.examples)} teacher answers for {setup.base_steps} steps "
          f"(half of the {profile.student_steps}-step student budget), seeds {seeds}")
    t0 = time.perf_counter()
    results = [run_seed(setup, s, evalset, eval_limit, show=(i == 0)) for i, s in enumerate(seeds)]
    show_compute(results, results[0]["n_student"], setup.teacher.num_params(), args.fast)
    mean = show_accuracy(results)
    print(f"\nStep 6: verdicts, paired by seed ({len(seeds)} seeds; {time.perf_counter() - t0:.0f} s of training "
          "and measuring)")
    verdicts(results, args.fast)
    print("\nCheck yourself")
    print("  1. Why is the on-policy loss divided by the number of tokens the student sampled, and what would a")
    print("     mean over every position of the batch (prompt and padding included) do to long and short answers?")
    print("  2. Step 1 compares the teacher greedy with the teacher sampled at T = 1. What does the reverse KL to")
    print("     its T = 1 distribution teach a student, and what changes at T = 0.5?")
    print("  3. An on-policy step costs several seq-KD steps. Which counted parts make it expensive here, and")
    print("     which of them would a larger teacher make worse?")
    rendering.save_lesson("l13_on_policy", args, LOG[n_claims:], seeds=seeds, seconds=time.perf_counter() - start,
                         table=results_table(results, results[0]["n_student"], setup.teacher.num_params()))
    return {"seeds": seeds, "mean": mean, "claims": LOG[n_claims:],
            "steps": {name: [r[name]["steps"] for r in results] for name in ARMS}}


if __name__ == "__main__":
    main()
