"""The student runs of the main job (the machinery; a learner need not read it): one job per (method, seed, steps),
trained from files on disk and cached by every setting it depends on, spread over the ranks; word-level KD's
T and alpha chosen on a validation slice first (word_kd_choice, which lesson 6 calls too).
"""

from __future__ import annotations

import contextlib
import io
import time
from pathlib import Path

from minikd import ranks
from minikd.device import device_policy
from minikd.data import examples_fingerprint, load_sft, read_jsonl
from minikd.evaluate import accuracy, answer_limit, answer_nll, score, SLACK
from minikd.machinery.cache import cached_topk_store, load_cached_json, save_cached_json
from minikd.machinery.labelling import filter_dataset, teacher_fingerprint
from minikd.machinery.stages import (data_fingerprint, get_teacher, load_split, note, profile_dir, stage,
                                     teacher_greedy, train_student)
from minikd.runtime import get_device
from minikd.tokenizer import Tokenizer
from minikd.train import load_model, save_checkpoint, sft_objective
from minikd.what_seqkd_loses import form_entropy_bits
from minikd.world import surface_form

CORE_METHODS = ("gt", "word_kd", "seq_kd", "seq_kd+word")  # the default run's methods: Kim & Rush's core four
BEAM_EVAL = ("gt", "seq_kd")  # students also decoded with beam search: greedy vs beam, Kim & Rush's contrast
# What each student trains on: the labelled training set, or one of the teacher's filtered files.
POOLS = {"gt": "ground truth", "word_kd": "ground truth", "seq_kd": "greedy", "seq_kd_beam": "beam",
         "seq_kd+word": "greedy", "seq_inter": "inter", "seq_kd_unlabelled": "unlabelled"}
TOKEN_KD = ("word_kd", "seq_kd+word")  # the methods that train on the teacher's stored distributions (logits)
BEAM = {"beam_size": 5, "length_penalty": 1.0}  # rank beams by log-prob per token: else short answers win
# (T, alpha) settings tried for word-level KD: Hinton's softening (T > 1), plain (T = 1), sharpening (T < 1);
# alpha = 1 is pure KL to the teacher, 0.5 mixes in cross-entropy on the (noisy) labels.
SHOWCASE = 6  # the first test prompts whose answers results.json keeps (the report page shows them side by side)
WORD_KD_GRID = [{"temperature": t, "alpha": a} for t, a in ((0.5, 1.0), (1.0, 0.5), (1.0, 1.0), (2.0, 1.0))]


def assign(jobs_list: list[dict], world: int) -> list[list[dict]]:
    """Jobs to ranks, decided before any starts and the same on every rank: the longest (most steps)
    first, each to the least-loaded rank (a tie goes to the lower rank)."""
    load, out = [0] * world, [[] for _ in range(world)]
    for job in sorted(jobs_list, key=lambda j: -j["steps"]):  # stable: equal lengths keep their order
        r = load.index(min(load))
        out[r].append(job)
        load[r] += job["steps"]
    return out


def describe_answers(records: list[dict], texts: list[str] | None = None) -> dict:
    """Per family: verified accuracy of the answers and the entropy of their surface forms."""
    texts = texts if texts is not None else [r["completion"] for r in records]
    by_task: dict = {}
    for r, text in zip(records, texts):
        by_task.setdefault(r["task"], []).append((score(r["prompt"], text), surface_form(r["task"], text)))
    return {"n": len(records),
            "acc": sum(ok for v in by_task.values() for ok, _ in v) / max(1, len(records)),
            "acc_by_task": {t: sum(ok for ok, _ in v) / len(v) for t, v in sorted(by_task.items())},
            "form_entropy_bits": {t: form_entropy_bits([f for _, f in v]) for t, v in sorted(by_task.items())}}


def _objective(method: str, store: dict | None, word_kd: dict | None):
    """SFT, or word-level KD from the teacher's stored distributions (re-tempered to word_kd's T)."""
    if method in TOKEN_KD:
        from minikd.word_kd import topk_objective
        return topk_objective(store, temperature=word_kd["temperature"], alpha=word_kd["alpha"])
    return sft_objective


def _examples(profile, tok, kept, pool: str, train_set: list[dict] | None = None) -> list[dict]:
    if pool == "ground truth":
        return train_set if train_set is not None else load_split("train", profile, tok)
    return load_sft(kept[pool], tok, profile.block_size)[0]


def build_stores(profile, teacher, tok, kept, teacher_id: str, times: dict,
                 pools=tuple(sorted({POOLS[m] for m in TOKEN_KD})), did: list | None = None) -> dict[str, str]:
    """Stage 4b: the teacher's full next-token distribution (top-k with k = V, at T = 1) at every answer
    position of the pools token-level KD trains on, computed once and stored (minikd.word_kd). Training
    from the store gives exactly the online loss (up to fp16 rounding) without a teacher forward pass per
    step; re-tempering the stored log-probs to another T is exact too (word_kd.topk_objective).
    On W ranks, pool i is rank i mod W's."""
    t0 = stage(5, "word-KD: the teacher's distributions at every answer position, stored once (k = V)")
    stores = {}
    for i, pool in enumerate(pools):
        path = profile_dir(profile) / f"teacher_logits_{pool.replace(' ', '_')}_{teacher_id}.pt"
        stores[pool] = str(path)
        if i % ranks.world_size() != ranks.rank():
            continue  # another rank's pool
        note(did, f"logits: {pool}")
        examples = _examples(profile, tok, kept, pool)
        _, built = cached_topk_store(teacher, examples, tok, teacher.config.vocab_size, path)
        print(f"  {pool}: {len(examples)} examples -> {path.stat().st_size / 1e6:.0f} MB ({path.name})" if built
              else f"  {pool}: cached ({path.name})")
    ranks.barrier()  # every pool's store is on disk
    times["logits"] = time.perf_counter() - t0
    return stores


def curve_point(acc: dict) -> dict:
    """One point of a learning curve, from evaluate.accuracy on the test set: overall and per family."""
    return {"acc": acc["acc"], **{f"acc/{t}": v for t, v in acc["acc_by_task"].items()}}


def student_job(profile, job: dict, device="cpu") -> dict:
    """Train and measure one student; cache the result (with its settings) at job["cache"].

    job: method, seed, steps, word_kd (T, alpha or None), settings (the cache key), cache (a path), and
    "val" (validation-only run for the word-KD choice: train without the last profile.n_val records, score on
    them). Reads everything from disk and seeds itself from the job, so it runs the same on any rank."""
    tok = Tokenizer.default()
    method, seed, steps = job["method"], job["seed"], job["steps"]
    kept = {k: Path(v) for k, v in job["kept"].items()}
    val = job.get("val", False)
    train_set = load_split("train", profile, tok)
    examples = _examples(profile, tok, kept, POOLS[method], train_set)
    store = None
    if method in TOKEN_KD:  # the teacher's distributions, read from disk: the teacher itself is not loaded
        from minikd.word_kd import load_topk_store
        store = load_topk_store(job["store"], expect_fingerprint=tok.fingerprint, expect_examples=examples)
    if val:
        examples = examples[:-profile.n_val]  # a prefix: store rows still belong to the same indices

    test_set = load_split("test", profile, tok)
    limit = answer_limit(train_set)
    eval_s, last = [0.0], {}  # time spent measuring the curve (not training time); the last measurement

    def eval_fn(m):
        e0 = time.perf_counter()
        last["greedy"] = accuracy(m, tok, test_set, max_new_tokens=limit, batch_size=len(test_set))
        eval_s[0] += time.perf_counter() - e0
        return curve_point(last["greedy"])

    s0 = time.perf_counter()
    model, history = train_student(profile, tok, examples, seed, str(device), _objective(method, store, job["word_kd"]),
                                   steps=steps, log_every=0, eval_fn=None if val else eval_fn,
                                   eval_every=-(-steps // profile.curve_points))  # ceil: curve_points points, the last at the end
    train_s = time.perf_counter() - s0 - eval_s[0]
    if val:
        held = train_set[-profile.n_val:]  # the labels are never read: verify uses the prompt
        metrics = {"val_acc": accuracy(model, tok, held, max_new_tokens=limit)["acc"], "train_seconds": train_s}
    else:
        metrics = measure_student(model, tok, profile, kept, history, last["greedy"], limit,
                                  beam=method in BEAM_EVAL)
        metrics.update(train_seconds=train_s, params=model.num_params(), n_examples=len(examples),
                       text_bytes=sum(len(e["completion"].encode("utf-8")) for e in examples),
                       logit_bytes=Path(job["store"]).stat().st_size if store is not None else 0)
        if job.get("model"):  # the weights too, for a lesson that reads the model itself (lesson 6)
            save_checkpoint(job["model"], model, steps, tok.fingerprint, meta={"settings": job["settings"]})
    record = save_cached_json(job["cache"], job["settings"], {"metrics": metrics})
    shown = metrics.get("val_acc", metrics.get("greedy_acc"))
    print(f"  {job['name']}: {'validation' if val else 'test'} accuracy {100 * shown:.1f}%  "
          f"({train_s:.0f} s, {steps} steps)", flush=True)
    return record


def measure_student(model, tok, profile, kept, history, greedy: dict, limit: int, beam: bool) -> dict:
    """Everything the tables need from one trained student; `greedy` is its last curve measurement
    (evaluate.accuracy on the test set after the last step)."""
    test_set, heldout = load_split("test", profile, tok), load_split("heldout", profile, tok)
    teacher_test = load_sft(kept["test"], tok, profile.block_size)[0]
    curve = [{"step": r["step"], "acc": r["acc"],
              "acc_by_task": {k.split("/", 1)[1]: v for k, v in r.items() if k.startswith("acc/")}}
             for r in history if "acc" in r]
    beam = accuracy(model, tok, test_set, method="beam", max_new_tokens=limit, **BEAM) if beam else None
    held = accuracy(model, tok, heldout, max_new_tokens=limit)
    return {
        "greedy_acc": greedy["acc"], "acc_by_task": greedy["acc_by_task"],
        "beam_acc": beam and beam["acc"], "beam_acc_by_task": beam and beam["acc_by_task"],
        "heldout_acc": held["acc"], "heldout_by_task": held["acc_by_task"],
        "own_logprob": greedy["mean_logprob"],
        "nll_gt": answer_nll(model, test_set, tok.pad_id),
        "nll_teacher_data": answer_nll(model, teacher_test, tok.pad_id),
        "outputs": describe_answers(test_set, greedy["outputs"]),
        "showcase": showcase(greedy),
        "curve": curve,
    }


def showcase(greedy: dict) -> dict:
    """The answers to the first SHOWCASE test prompts, right or wrong (the report page shows them side by side)."""
    return {"texts": greedy["outputs"][:SHOWCASE], "correct": greedy["correct"][:SHOWCASE]}


class Context(dict):
    """What every student job of one run shares: profile, the filtered teacher files (kept), what they hold (pools),
    the teacher's fingerprint and its stored distributions (stores)."""

    @property
    def folder(self) -> Path:
        return profile_dir(self["profile"]) / "students"


def pool_fingerprints(kept: dict[str, Path], train_set: list[dict]) -> dict[str, str]:
    """What each pool a student trains on holds (data.examples_fingerprint): the ground truth and every
    filtered teacher file. A student's cache key carries its pool's, so a pool of other examples (not merely
    another number of them) trains it again."""
    pools = {name: examples_fingerprint(list(read_jsonl(path))) for name, path in kept.items()}
    pools["ground truth"] = examples_fingerprint(train_set)
    return pools


def student_settings(ctx: Context, method: str, seed: int, steps: int, word_kd: dict | None, val: bool) -> dict:
    """Everything a cached student result depends on: a change to any of these retrains it."""
    profile = ctx["profile"]
    return {"profile": profile.name, "preset": profile.student_preset, "method": method, "steps": steps,
            "batch_size": profile.batch_size, "lr": profile.student_lr, "seed": seed,
            "word_kd": word_kd if method in TOKEN_KD else None,
            "beam": BEAM if POOLS[method] in ("beam", "inter") else None,
            "pool": ctx["pools"][POOLS[method]], "teacher": ctx["teacher_id"], "data": data_fingerprint(),
            "curve_points": profile.curve_points, "validation": profile.n_val if val else None,
            "beam_eval": BEAM if method in BEAM_EVAL and not val else None, "limit": SLACK,
            "device": ctx.get("device")}


def make_job(ctx: Context, method: str, seed: int, steps: int, word_kd: dict | None, val: bool = False) -> dict:
    name = f"{method}-seed{seed}-{steps}steps" + ("-T{temperature}-a{alpha}".format(**word_kd) if val else "")
    return {"name": name, "method": method, "seed": seed, "steps": steps, "word_kd": word_kd, "val": val,
            "kept": {k: str(v) for k, v in ctx["kept"].items()}, "cache": str(ctx.folder / f"{name}.json"),
            "model": None if val else str(ctx.folder / f"{name}.pt"), "need_model": False,
            "store": ctx["stores"].get(POOLS[method]) if method in TOKEN_KD else None,
            "settings": student_settings(ctx, method, seed, steps, word_kd, val)}


def saved_model(job: dict, tok: Tokenizer | None = None, device="cpu"):
    """The job's trained student, when its weights were saved by the same settings as its result; else None
    (a result cached before the weights were kept, or by other settings: the student is trained again)."""
    path = Path(job["model"]) if job.get("model") else None
    if path is None or not path.exists():
        return None
    model, ckpt = load_model(path, tok or Tokenizer.default(), device=str(device))
    return model if ckpt["meta"].get("settings") == job["settings"] else None


def run_student_jobs(profile, jobs_list: list[dict], device="cpu", did: list | None = None) -> dict[str, dict]:
    """Every job's result (student_job's record), by name: read from its cache when that holds the same
    settings, else trained. The jobs to train are spread over the ranks (assign; rank 0 decides which are
    cached, so every rank sees the same list), each trained alone on its rank; the results of other ranks'
    jobs come back through their cache files once every rank is done."""
    todo = ranks.broadcast_object([j["name"] for j in jobs_list if load_cached_json(j["cache"], j["settings"]) is None
                                   or (j.get("need_model") and saved_model(j) is None)])
    world = ranks.world_size()
    print(f"  {len(jobs_list) - len(todo)} cached, training {len(todo)} student(s)"
          + (f" on {world} ranks" if todo and world > 1 else ""), flush=True)
    mine = assign([j for j in jobs_list if j["name"] in todo], world)[ranks.rank()]
    done = {}
    with ranks.alone():  # a student trains on one rank, not spread over them
        for job in mine:
            done[job["name"]] = student_job(profile, job, device)
    if mine:
        note(did, "students: " + ", ".join(job["name"] for job in mine))
    ranks.barrier()  # every rank's students are trained and cached
    for job in jobs_list:
        if job["name"] not in done:
            done[job["name"]] = load_cached_json(job["cache"], job["settings"])
            if done[job["name"]] is None:
                raise RuntimeError(f"{job['cache']}: the result of {job['name']} is missing after every rank finished")
    return done


def sweep_jobs(ctx: Context) -> list[dict]:
    """T and alpha for word-level KD are chosen by accuracy on a validation slice of the training set (its
    last n_val records, held out of these runs; the test set is never used to choose): one job per setting."""
    return [make_job(ctx, "word_kd", 0, ctx["profile"].student_steps, wk, val=True) for wk in WORD_KD_GRID]


def pick_word_kd(grid: list[dict], done: dict) -> tuple[dict, list[dict]]:
    """The setting with the best validation accuracy (a tie goes to the first of the grid), and the sweep."""
    sweep = [{**job["word_kd"], "val_acc": done[job["name"]]["metrics"]["val_acc"]} for job in grid]
    best = max(sweep, key=lambda s: s["val_acc"])
    for s in sweep:
        print(f"  word-KD T = {s['temperature']:<4} α = {s['alpha']:<4} validation accuracy "
              f"{100 * s['val_acc']:5.1f}%" + ("   <- chosen" if s is best else ""))
    return {"temperature": best["temperature"], "alpha": best["alpha"]}, sweep


def word_kd_choice(profile, device="auto") -> tuple[dict, list[dict]]:
    """The main job's word-KD choice on its own (lessons 6, 7, 11): the cached teacher, its distributions on
    the training set, the validation sweep — the same cached files the main job reads and writes. It runs in
    this one process: it never starts ranks of its own."""
    device = get_device(device)
    tok = Tokenizer.default()
    teacher, _ = get_teacher(profile, device=str(device))
    teacher_id = teacher_fingerprint(teacher)
    ctx = Context(profile=profile, kept={}, pools=pool_fingerprints({}, load_split("train", profile, tok)),
                  teacher_id=teacher_id, device=device_policy(device).key,
                  stores=build_stores(profile, teacher, tok, {}, teacher_id, {}, pools=("ground truth",)))
    ctx.folder.mkdir(parents=True, exist_ok=True)
    grid = sweep_jobs(ctx)
    return pick_word_kd(grid, run_student_jobs(profile, grid, str(device)))


def kept_pools(profile, teacher, tok) -> dict[str, Path]:
    """The filtered teacher files a default run's students read, made as the main job's stages 3-4 make them in
    one process (pipeline.teacher_data, full=False): the greedy answers to the training and the test prompts,
    labelled once (cached), cut-off and too-long answers dropped, wrong ones kept."""
    kept = {}
    for name, split in (("greedy", "train"), ("test", "test")):
        path = teacher_greedy(profile, teacher, tok, split)
        kept[name] = path.with_name(path.stem + ".filtered.jsonl")
        with contextlib.redirect_stdout(io.StringIO()):  # its table is the main job's to print
            report = filter_dataset(path, kept[name], tok, profile.block_size, verify=False)
        print(f"  the teacher's answers ({name}): {report['output']} of {report['input']} kept ({kept[name].name})")
    return kept


def showdown_students(profile, methods: list[str], seeds: list[int], device="auto",
                      models: bool = False) -> dict[tuple[str, int], dict]:
    """The main job's own students of `methods` x `seeds` at the profile's budget, by (method, seed): each one's
    {"metrics": student_job's, "model": the trained GPT (models=True) or None}, read from the main job's
    settings-keyed cache (runs/<profile>/students/) or, when missing, trained in this process and cached there,
    so the main job reuses them. The lessons that compare or measure the showdown's methods (6, 11) read these: their
    numbers are the showdown's, from the same students."""
    unknown = [m for m in methods if m not in CORE_METHODS]
    if unknown:
        raise ValueError(f"showdown_students: {unknown} are not among the main job's methods {list(CORE_METHODS)}")
    device = get_device(device)
    tok = Tokenizer.default()
    teacher, _ = get_teacher(profile, device=str(device))
    teacher_id = teacher_fingerprint(teacher)
    kept = kept_pools(profile, teacher, tok)
    token_pools = tuple(sorted({POOLS[m] for m in methods if m in TOKEN_KD}))
    ctx = Context(profile=profile, kept=kept, pools=pool_fingerprints(kept, load_split("train", profile, tok)),
                  teacher_id=teacher_id, device=device_policy(device).key,
                  stores=build_stores(profile, teacher, tok, kept, teacher_id, {}, pools=token_pools)
                  if token_pools else {})
    ctx.folder.mkdir(parents=True, exist_ok=True)
    word_kd = None
    if token_pools:  # T and alpha as the main job chooses them: its cached validation sweep
        grid = sweep_jobs(ctx)
        word_kd, _ = pick_word_kd(grid, run_student_jobs(profile, grid, str(device)))
    jobs = {(m, s): make_job(ctx, m, s, profile.student_steps, word_kd if m in TOKEN_KD else None)
            | {"need_model": models} for m in methods for s in seeds}
    done = run_student_jobs(profile, list(jobs.values()), str(device))
    return {key: {"metrics": done[job["name"]]["metrics"],
                  "model": saved_model(job, tok, device) if models else None} for key, job in jobs.items()}
