"""`minikd` (= `python -m minikd`): the main job and the offline pipeline, one subcommand per step.

    minikd [run] [--quick]     the whole pipeline and Kim & Rush's comparison (minikd.machinery.pipeline)
    minikd generate            the teacher labels a prompt set -> JSONL (resumable, shardable)
    minikd filter              drop incorrect / truncated / too long / duplicate answers; optionally regenerate
    minikd train               train a student: --objective gt | seqkd | wordkd
    minikd eval                verified accuracy of a checkpoint on a prompt set (greedy or beam)
    minikd readme              copy the last run's tables and verdicts into README.md (minikd.machinery.rendering)
    minikd report              rebuild the run's lab report page, runs/<profile>/report.html (one offline HTML file)
    minikd bench               how fast this machine trains and decodes (minikd.machinery.bench)
    minikd serve               the teacher over HTTP, OpenAI-style; `minikd generate --api URL` labels through it

The offline pipeline by hand (Kim & Rush 2016, four steps; the student step never loads the teacher):

    minikd generate --teacher runs/default/teacher.pt --prompts data/unlabelled.jsonl --out runs/seq.jsonl
    minikd filter --data runs/seq.jsonl --out runs/seq.filtered.jsonl
    minikd train --objective seqkd --data runs/seq.filtered.jsonl --out runs/student_seqkd.pt
    minikd eval --model runs/student_seqkd.pt --data data/test.jsonl

Every subcommand has --help. Bad input (a malformed dataset line, a missing or mismatched checkpoint)
is one line on stderr, `minikd <command>: error: ...`, and exit status 2 — never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from minikd.runtime import DATA_DIR, Progress, runs_dir
from minikd.data import DatasetError, read_jsonl

# Subcommands another module parses itself (imported only when used, so `minikd --help` always works).
DELEGATED = {"run": ("minikd.machinery.pipeline", "the whole pipeline and the comparison table (default)"),
             "readme": ("minikd.machinery.rendering", "copy the main job's and lessons 11-16's results and verdicts into README.md"),
             "report": ("minikd.machinery.report_page", "rebuild the lab report page runs/<profile>/report.html from results.json"),
             "bench": ("minikd.machinery.bench", "training and decoding speed of this machine"),
             "serve": ("minikd.machinery.serve", "serve a teacher over HTTP (OpenAI-style /v1/completions; minikd.machinery.serve)")}
OBJECTIVES = {"gt": "masked SFT on ground-truth answers (the baseline)",
              "seqkd": "masked SFT on teacher-written answers (sequence-level KD; the teacher is never loaded)",
              "wordkd": "online word-level KD: CE + KL to the teacher's distribution at every answer position"}


def default_teacher() -> Path:
    return runs_dir() / "default" / "teacher.pt"


def add_machine_args(p) -> None:
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, mps")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (default: torch's choice). These models are small: on a busy "
                   "CPU, 1 thread is often much faster than several, which wait for each other")


def _need_file(path, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{what} {path}: no such file")
    return path


def _load_teacher(path, tok, device: str):
    """The teacher checkpoint, with a hint when it does not exist yet."""
    from minikd.train import load_model
    if not Path(path).exists():
        raise ValueError(f"teacher checkpoint {path}: no such file (train one with "
                         "`python -m lessons.l05_train_teacher` or `minikd run`, or pass --teacher)")
    model, ckpt = load_model(path, tok, device=device)
    return model


def _read_prompts(path, limit: int | None) -> list[dict]:
    records = []
    for lineno, r in enumerate(read_jsonl(_need_file(path, "prompt file")), start=1):
        if not isinstance(r.get("prompt"), str) or not r["prompt"]:
            raise DatasetError(path, lineno, "missing or not a non-empty string", field="prompt",
                               reason="bad_prompt")
        records.append(r)
        if limit and len(records) == limit:
            break
    if not records:
        raise DatasetError(path, None, "holds no records", reason="empty_file")
    return records


# ---------------------------------------------------------------------------------------------------
# minikd generate
# ---------------------------------------------------------------------------------------------------


def cmd_generate(args) -> int:
    from minikd.machinery.labelling import generate_dataset, merge_shards, shard_path
    from minikd.tokenizer import Tokenizer

    out = Path(args.out)
    if args.merge:
        paths = [shard_path(out, r, args.world_size) for r in range(args.world_size)]
        merge_shards(paths, out)
        print(f"merged {len(paths)} shards into {out}")
        return 0
    if args.api:
        return _generate_via_api(args)
    _join_ranks(args)
    tok = Tokenizer.default()
    teacher = _load_teacher(args.teacher, tok, args.device)
    records = _read_prompts(args.prompts, args.limit)
    print(f"generate: {len(records)} prompts from {args.prompts}, teacher {args.teacher} "
          f"({teacher.num_params():,} parameters), {args.method}"
          + (f" (rank {args.rank} of {args.world_size})" if args.world_size > 1 else ""), flush=True)
    path = generate_dataset(teacher, tok, records, out, method=args.method, beam_size=args.beam_size,
                            temperature=args.temperature, top_k=args.top_k, seed=args.seed, rank=args.rank,
                            world_size=args.world_size, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                            teacher_ckpt=args.teacher, chunk=args.chunk, overwrite=args.overwrite)
    print(f"wrote {path} (+ {path.name}.meta.json)")
    if args.world_size > 1:
        _merge_when_all_done(out, args)
    return 0


def _generate_via_api(args) -> int:
    """`minikd generate --api URL`: the same records and sidecar, written by a server (minikd.machinery.client)."""
    from minikd.machinery.client import api_dataset, base_urls
    if args.method == "beam" or args.top_k is not None or args.world_size > 1:
        raise ValueError("--api decodes greedy or samples (--temperature, --seed): beam search, --top-k and "
                         "--world-size are for a local --teacher (use --concurrency for speed)")
    if args.max_new_tokens is None:
        raise ValueError("--api needs --max-new-tokens (the client cannot count the server's tokens)")
    records = _read_prompts(args.prompts, args.limit)
    print(f"generate: {len(records)} prompts from {args.prompts} through {base_urls(args.api)[0]} "
          f"(model {args.model or 'the first the server lists'}, API style {args.api_style}), {args.method}, "
          f"{args.concurrency} requests at a time", flush=True)
    path = api_dataset(args.api, records, args.out, model=args.model, api_key_env=args.api_key_env,
                       max_new_tokens=args.max_new_tokens,
                       temperature=0.0 if args.method == "greedy" else args.temperature, seed=args.seed,
                       concurrency=args.concurrency, timeout=args.timeout, retries=args.retries, chunk=args.chunk,
                       overwrite=args.overwrite, prompts_per_request=args.prompts_per_request,
                       api_style=args.api_style, system=args.system, logprobs=not args.no_logprobs)
    print(f"wrote {path} (+ {path.name}.meta.json)")
    return 0


def _join_ranks(args) -> None:
    """Under torchrun: join the group (minikd.machinery.launch), whose rank and size are the shard's."""
    from minikd import ranks
    from minikd.machinery import launch
    if launch.init() > 1 and (args.rank, args.world_size) != (ranks.rank(), ranks.world_size()):
        raise ValueError(f"under torchrun the shard is the rank's ({ranks.rank()} of "
                         f"{ranks.world_size()}): drop --rank/--world-size")


def _merge_when_all_done(out: Path, args) -> None:
    """Under torchrun every rank waits at a barrier and rank 0 merges; run by hand, say how to merge."""
    from minikd import ranks
    from minikd.machinery import launch
    if ranks.world_size() > 1:
        from minikd.machinery.labelling import merge_shards, shard_path
        ranks.barrier()  # every rank has finished its shard
        if ranks.is_main():
            merge_shards([shard_path(out, r, args.world_size) for r in range(args.world_size)], out)
            print(f"rank 0: merged {args.world_size} shards into {out}")
        ranks.barrier()  # no rank returns before the merged file is there
    else:
        print(f"shard {args.rank} of {args.world_size} done; when every rank is done: "
              f"minikd generate --merge --out {out} --world-size {args.world_size}")


def add_generate(sub) -> None:
    p = sub.add_parser("generate", help="the teacher labels a prompt set -> JSONL (resumable, shardable)",
                       description="u = teacher(s): the teacher writes an answer for every prompt; records are "
                       "appended and flushed one by one, so a killed run started again resumes where it stopped. "
                       "Under torchrun (torchrun --nproc_per_node N -m minikd generate ...) each rank labels its "
                       "shard with its own copy of the teacher and rank 0 merges them; by hand, shard with "
                       "--rank/--world-size and merge with --merge.")
    p.add_argument("--teacher", default=str(default_teacher()), help="teacher checkpoint (default: %(default)s)")
    p.add_argument("--prompts", default=str(DATA_DIR / "unlabelled.jsonl"),
                   help="JSONL with a 'prompt' (and 'id') per line (default: the shipped unlabelled set)")
    p.add_argument("--out", required=True, help="output JSONL (a sidecar <out>.meta.json records the settings)")
    p.add_argument("--method", choices=["greedy", "sample", "beam"], default="greedy")
    p.add_argument("--beam-size", type=int, default=1, help="beam only (default 1)")
    p.add_argument("--temperature", type=float, default=1.0, help="sample only")
    p.add_argument("--top-k", type=int, default=None, help="sample only: keep the k most likely tokens")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--max-new-tokens", type=int, default=None, help="default: what the longest prompt leaves (<= 96)")
    p.add_argument("--batch-size", type=int, default=256, help="rows decoded at once")
    p.add_argument("--chunk", type=int, default=256, help="prompts per chunk (the unit of resuming)")
    p.add_argument("--limit", type=int, default=None, help="only the first N prompts")
    p.add_argument("--rank", type=int, default=int(os.environ.get("RANK", 0)))
    p.add_argument("--world-size", type=int, default=int(os.environ.get("WORLD_SIZE", 1)))
    p.add_argument("--merge", action="store_true", help="merge the --world-size shards of --out and exit")
    p.add_argument("--overwrite", action="store_true", help="start over if --out exists with other settings")
    api = p.add_argument_group("through a server (text in, text out; --teacher is not read)")
    api.add_argument("--api", default=None, metavar="URL", help="an OpenAI-style server: minikd serve, a hosted "
                     "chat API, vLLM, llama.cpp, Ollama (e.g. http://127.0.0.1:8000/v1)")
    api.add_argument("--api-style", choices=["auto", "chat", "completions"], default="auto", help="chat: "
                     "POST /chat/completions (the prompt as the user message; a reasoning model's separate trace is "
                     "kept as 'reasoning'); completions: POST /completions (the prompt as raw text); auto (default): "
                     "chat, unless --prompts-per-request > 1 or the server has no chat endpoint (one probe decides; "
                     "the sidecar records the choice)")
    api.add_argument("--system", default=None, metavar="TEXT", help="chat only: a system message sent before every "
                     "prompt (minikd serve refuses it: its teacher was trained without one)")
    api.add_argument("--no-logprobs", action="store_true", help="do not ask for log-probs (some hosted reasoning "
                     "models refuse the field); teacher_logprob is then null")
    api.add_argument("--model", default=None, help="the model name to ask for (default: the first in /v1/models)")
    api.add_argument("--api-key-env", default=None, metavar="VAR", help="read the API key from this environment "
                     "variable (sent as a Bearer header; never written to a file or printed)")
    api.add_argument("--concurrency", type=int, default=4, help="requests in flight at once (default 4)")
    api.add_argument("--timeout", type=float, default=60.0, help="seconds per request (default 60)")
    api.add_argument("--retries", type=int, default=5, help="tries again after a dropped connection, a timeout, "
                     "429 or 5xx (default 5)")
    api.add_argument("--prompts-per-request", type=int, default=1, help="prompts sent in one request (default 1; "
                     ">= --chunk: the server decodes each chunk as one batch, as a local run does)")
    add_machine_args(p)
    p.set_defaults(func=cmd_generate)


# ---------------------------------------------------------------------------------------------------
# minikd filter
# ---------------------------------------------------------------------------------------------------


def cmd_filter(args) -> int:
    from minikd.machinery.labelling import filter_dataset, report_path
    from minikd.tokenizer import Tokenizer

    tok = Tokenizer.default()
    teacher = _load_teacher(args.regenerate_with, tok, args.device) if args.regenerate_with else None
    filter_dataset(_need_file(args.data, "dataset"), args.out, tok, args.block_size, verify=not args.no_verify,
                   drop_truncated=not args.keep_truncated, dedupe=not args.no_dedupe, regenerate=teacher,
                   tries=args.tries, temperature=args.temperature, seed=args.seed)
    print(f"wrote {args.out} and {report_path(args.out)}")
    return 0


def add_filter(sub) -> None:
    p = sub.add_parser("filter", help="drop incorrect / truncated / too-long / duplicate answers; regenerate",
                       description="Curate a generated dataset. Counts per reason are printed and saved to "
                       "<out>.report.json. --regenerate-with samples new answers for the dropped prompts "
                       "(rejection sampling: up to --tries per prompt, the first that passes is kept).")
    p.add_argument("--data", required=True, help="input JSONL (e.g. the output of minikd generate)")
    p.add_argument("--out", required=True, help="output JSONL")
    p.add_argument("--block-size", type=int, default=128, help="the student's context: longer records are dropped")
    p.add_argument("--no-verify", action="store_true", help="do not drop answers the verifier rejects")
    p.add_argument("--keep-truncated", action="store_true",
                   help="keep cut-off answers (they stay flagged ended=false; training refuses them)")
    p.add_argument("--no-dedupe", action="store_true", help="keep duplicate (prompt, completion) pairs")
    p.add_argument("--regenerate-with", default=None, metavar="CKPT", help="teacher checkpoint to resample with")
    p.add_argument("--tries", type=int, default=4, help="samples per dropped prompt (default 4)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature for regeneration")
    p.add_argument("--seed", type=int, default=0)
    add_machine_args(p)
    p.set_defaults(func=cmd_filter)


# ---------------------------------------------------------------------------------------------------
# minikd train
# ---------------------------------------------------------------------------------------------------


def cmd_train(args) -> int:
    import hashlib

    from minikd.model import get_config
    from minikd.machinery.stages import get_profile
    from minikd.tokenizer import Tokenizer
    from minikd.train import CheckpointError

    from minikd import ranks
    from minikd.machinery import launch
    launch.init()  # under torchrun: DDP, each rank its slice of every batch (minikd.train)
    profile = get_profile(args.profile)
    tok = Tokenizer.load(args.tokenizer) if args.tokenizer else Tokenizer.default()  # the student's
    data = args.data or (None if args.objective == "seqkd" else str(DATA_DIR / "train.jsonl"))
    if data is None:
        raise ValueError("--objective seqkd trains on teacher-written data: pass --data (from minikd generate/filter)")
    _need_file(data, "dataset")
    if args.objective != "wordkd" and args.teacher:
        raise ValueError(f"--teacher is only used by --objective wordkd; {args.objective} never loads a teacher")

    examples = _train_examples(args, data, tok, profile)  # Step 1: the data — a file, nothing else

    # Step 2: the objective. Only word-level KD needs the teacher, in memory, at every step.
    # meta: every setting outside the TrainConfig that shapes the weights (a resumed run must share them).
    meta = {"objective": args.objective, "data": str(data), "profile": args.profile, "limit": args.limit,
            "data_sha256": hashlib.sha256(Path(data).read_bytes()).hexdigest()}
    objective = _train_objective(args, tok, meta)

    # Step 3: train (the loop prints its progress line and checkpoints to --out) and save.
    config = get_config(args.preset, vocab_size=tok.vocab_size, block_size=profile.block_size)
    steps = args.steps or profile.student_steps
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    print(f"train: {args.objective} ({OBJECTIVES[args.objective]})\n  {len(examples)} examples from {data}; "
          f"{args.preset} preset; {steps} steps x {profile.batch_size} sequences; -> {out}", flush=True)
    lr = profile.teacher_lr if args.preset == profile.teacher_preset else profile.student_lr
    try:
        model, history = _train_resumable(config, examples, steps, profile, lr, objective, meta, tok, out, args)
    except CheckpointError as e:  # --out holds a checkpoint of another run, or something else
        raise CheckpointError(f"{e}; pass --overwrite to start over, or choose another --out") from None
    print(f"saved {out} ({model.num_params():,} parameters, final loss {history[-1]['loss']:.4f})")
    return 0


def _train_examples(args, data, tok, profile) -> list[dict]:
    """`minikd train`'s examples: for seqkd a cut-off (ended=false) record is an error; --limit applies."""
    if args.objective == "seqkd":
        from minikd.machinery.labelling import load_teacher_data
        examples = load_teacher_data(data, tok, profile.block_size)
        sources = {e.get("source") for e in examples}
        if sources != {"teacher"}:
            print(f"note: --objective seqkd on records whose source is {sorted(map(str, sources))}, not only 'teacher'")
    else:
        from minikd.data import load_sft
        examples, _ = load_sft(data, tok, profile.block_size)
    if args.limit:
        examples = examples[:args.limit]
    if not examples:
        raise DatasetError(data, None, "holds no records", reason="empty_file")
    return examples


def _train_objective(args, tok, meta: dict):
    """SFT, or word-level KD against a teacher of the same tokenizer (its settings added to `meta`)."""
    from minikd.train import sft_objective
    if args.objective != "wordkd":
        return sft_objective
    from minikd.train import load_checkpoint
    from minikd.word_kd import check_same_tokenizer, word_kd_objective
    teacher_path = args.teacher or str(default_teacher())
    if Path(teacher_path).exists():  # a teacher of another tokenizer: word-level KD is refused, naming both
        check_same_tokenizer(load_checkpoint(teacher_path)["tokenizer"], tok)
    teacher = _load_teacher(teacher_path, tok, "cpu")
    meta.update(teacher=teacher_path, temperature=args.temperature, alpha=args.alpha)
    return word_kd_objective(teacher, temperature=args.temperature, alpha=args.alpha)


def _train_resumable(config, examples, steps, profile, lr, objective, meta, tok, out: Path, args):
    """stages.train_model with a checkpoint every tenth of the run, resumed when --out holds one: a killed
    `minikd train` started again with the same arguments continues where it stopped and ends with the
    weights of a run that never stopped; a checkpoint of other settings is refused by train()
    (check_same_run), never silently continued."""
    from minikd.machinery.stages import train_model
    return train_model(config, examples, steps, profile, lr=lr, seed=args.seed, objective=objective, ckpt_path=out,
                       device=args.device, meta=meta, tok=tok, resume=out.exists() and not args.overwrite)


def add_train(sub) -> None:
    p = sub.add_parser("train", help="train a student: --objective gt | seqkd | wordkd",
                       description="Train a student with the one training loop; the loss covers the answer "
                       "tokens only. " + " ".join(f"{k}: {v}." for k, v in OBJECTIVES.items())
                       + " Under torchrun (torchrun --nproc_per_node N -m minikd train ...) every step is spread "
                       "over the ranks (DDP), normalised by the answer tokens of the whole batch.",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--objective", choices=list(OBJECTIVES), required=True)
    p.add_argument("--data", default=None,
                   help="training JSONL (default data/train.jsonl for gt and wordkd; required for seqkd)")
    p.add_argument("--teacher", default=None, metavar="CKPT",
                   help=f"wordkd only: the teacher checkpoint (default {default_teacher()})")
    p.add_argument("--out", required=True, help="where to save the student checkpoint")
    p.add_argument("--tokenizer", default=None, metavar="PATH",
                   help="the student's tokenizer (a .tiktoken file beside its .json; default data/tokenizer.tiktoken). "
                   "gt and seqkd tokenize the text with it (e.g. data/tokenizer2.tiktoken); wordkd refuses a "
                   "teacher of another tokenizer")
    p.add_argument("--preset", default="student", help="model preset (tiny, student, teacher)")
    p.add_argument("--profile", default="default", help="steps, batch size, lr, context: default or quick")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps (default: the profile's student steps)")
    p.add_argument("--limit", type=int, default=None, help="only the first N examples")
    p.add_argument("--temperature", type=float, default=1.0, help="wordkd: softmax temperature T")
    p.add_argument("--alpha", type=float, default=0.5, help="wordkd: weight of the KL term (1 - alpha on CE)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true",
                   help="start over even if --out holds a checkpoint (default: resume it when it was made with "
                   "the same settings, refuse when not)")
    add_machine_args(p)
    p.set_defaults(func=cmd_train)


# ---------------------------------------------------------------------------------------------------
# minikd eval
# ---------------------------------------------------------------------------------------------------


def cmd_eval(args) -> int:
    from collections import defaultdict

    from minikd.data import write_jsonl
    from minikd.evaluate import decode_records, score
    from minikd.tokenizer import Tokenizer
    from minikd.train import load_model

    tok = Tokenizer.load(args.tokenizer) if args.tokenizer else Tokenizer.default()  # the model's own
    model, ckpt = load_model(_need_file(args.model, "checkpoint"), tok, device=args.device)
    records = _read_prompts(args.data, args.limit)
    beam = {"beam_size": args.beam_size} if args.method == "beam" else {}
    bar = Progress(f"eval ({args.method})", len(records), unit="prompts")
    by_task, outputs = defaultdict(list), []
    for s in range(0, len(records), args.chunk):  # chunks, so long evaluations show progress
        part = records[s:s + args.chunk]
        for r, g in zip(part, decode_records(model, tok, part, method=args.method, **beam)):
            ok = score(r["prompt"], g.text, g.ended)  # a cut-off answer is wrong
            by_task[r.get("task", "?")].append(ok)
            outputs.append({"id": r.get("id"), "prompt": r["prompt"], "completion": g.text, "correct": ok,
                            "ended": g.ended, "logprob": g.logprob})
        bar.update(s + len(part))
    bar.close()
    correct = [c for v in by_task.values() for c in v]
    print(f"{args.model} on {args.data} ({args.method}{', K=' + str(args.beam_size) if beam else ''}): "
          f"accuracy {100 * sum(correct) / len(correct):.1f}% of {len(correct)}")
    for task, v in sorted(by_task.items()):
        print(f"  {task:10s} {100 * sum(v) / len(v):5.1f}%  ({len(v)} prompts)")
    if args.out:
        write_jsonl(args.out, outputs)
        print(f"wrote the answers to {args.out}")
    return 0


def add_eval(sub) -> None:
    p = sub.add_parser("eval", help="verified accuracy of a checkpoint on a prompt set",
                       description="The model answers every prompt; the verifier (which recomputes the truth "
                       "from the prompt) scores it. A cut-off answer counts as wrong.")
    p.add_argument("--model", required=True, help="checkpoint to evaluate")
    p.add_argument("--data", default=str(DATA_DIR / "test.jsonl"), help="prompt set (default: %(default)s)")
    p.add_argument("--method", choices=["greedy", "beam"], default="greedy")
    p.add_argument("--beam-size", type=int, default=5, help="beam only (default 5)")
    p.add_argument("--limit", type=int, default=None, help="only the first N prompts")
    p.add_argument("--chunk", type=int, default=256, help="prompts per progress step")
    p.add_argument("--out", default=None, help="also write every answer to this JSONL")
    p.add_argument("--tokenizer", default=None, metavar="PATH",
                   help="the model's tokenizer, for a student trained with `train --tokenizer` (default: the shipped one)")
    add_machine_args(p)
    p.set_defaults(func=cmd_eval)


# ---------------------------------------------------------------------------------------------------
# The entry point
# ---------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minikd", description=__doc__.split("\n")[0],
                                     epilog=__doc__.split("\n", 2)[2],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, text) in DELEGATED.items():
        sub.add_parser(name, help=text, add_help=False)  # parsed by its own module
    add_generate(sub)
    add_filter(sub)
    add_train(sub)
    add_eval(sub)
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["run"] + argv  # `minikd` and `minikd --quick` mean `minikd run ...`
    command = argv[0]
    from minikd.train import CheckpointError, TrainingError
    try:
        if command in DELEGATED:
            import importlib
            importlib.import_module(DELEGATED[command][0]).main(argv[1:])
            return 0
        args = build_parser().parse_args(argv)
        if args.threads is not None:
            if args.threads < 1:
                raise ValueError(f"--threads must be >= 1, got {args.threads}")
            import torch
            torch.set_num_threads(args.threads)
        return args.func(args)
    except (DatasetError, CheckpointError, TrainingError, ValueError, OSError) as e:
        print(f"minikd {command}: error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"\nminikd {command}: interrupted" + ("; run the same command again to resume"
                                                    if command == "generate" else ""), file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    sys.exit(main())
