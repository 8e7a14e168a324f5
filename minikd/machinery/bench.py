"""`minikd bench`: how fast do the presets train and decode on this machine, and is minikd's model as fast
as a plain PyTorch GPT-2 of the same size?

Three measurements, each on the footing the anchor codebases use:
- training on random full blocks (batch x seq_len tokens, every one real): minikd's GPT against
  minikd.machinery.reference_gpt, a plain PyTorch GPT-2 stack with the same config and parameter count, timed in the
  same process, interleaved repeat by repeat; the median and the min-max spread of each, and their ratio;
- training on real batches of the prompt world (data/train.jsonl), with TrainConfig.length_groups: tokens/s
  counted twice, over every computed position (padding included) and over the useful (non-padding) ones;
- greedy decoding of the teacher preset, with the KV cache and by recomputing the whole sequence.

FLOP/s are estimates, not counts: 6 x N x tokens/s for training (2N forward + 4N backward) and 2 x N x
tokens/s for decoding, N = the non-embedding parameters (Kaplan et al. 2020); attention's own T^2 term is
left out. Training is set next to one large fp32 matmul timed in the same run, the machine's practical
ceiling. Peak memory is torch.cuda.max_memory_allocated on CUDA; a CPU has no per-step counter, so there the
process's peak resident memory (whole run) is printed instead, labelled so.

These are measurements for the README, not tests: run them on a quiet machine.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from minikd.device import synchronize
from minikd.runtime import DATA_DIR, get_device
from minikd.data import SFTData, load_sft
from minikd.model import GPT, get_config
from minikd.machinery.reference_gpt import RefGPT, copy_weights
from minikd.machinery.serve import BATCH_WINDOW_MS
from minikd.tokenizer import Tokenizer
from minikd.train import TrainConfig, accumulate_gradients, micro_batches, optimizer_step, setup, sft_objective
from minikd.verdict import claim


def matmul_flops(n: int = 2048, repeats: int = 10, device="cpu") -> float:
    """FLOP/s of an n x n fp32 matmul (2 n^3 FLOPs each), best of a few timed rounds."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    best = 0.0
    for _ in range(3):
        a @ b  # warm up
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(repeats):
            a @ b
        _sync(device)
        best = max(best, 2 * n ** 3 * repeats / (time.perf_counter() - t0))
    return best


def model_gemm_flops(preset: str, vocab_size: int, tokens: int = 4096, repeats: int = 5, device="cpu") -> float:
    """FLOP/s of exactly the matrix multiplies one training step of `preset` does, timed on their own.

    Every Linear layer (in -> out) of the model costs three products per step over `tokens` rows: the
    forward x @ W^T, and in the backward dX = dY @ W and dW = dY^T @ x. Timed alone, they show the most
    any implementation of this model could reach at these shapes, before attention, GELU, LayerNorm and
    the optimizer add their time: small inner dimensions (128 here) keep a CPU far from its large-matmul rate.
    """
    cfg = get_config(preset, vocab_size=vocab_size)
    C = cfg.n_embd
    shapes = [(C, 3 * C), (C, C), (C, 4 * C), (4 * C, C)] * cfg.n_layer + [(C, vocab_size)]  # (in, out)
    mats = [(torch.randn(tokens, i, device=device), torch.randn(o, i, device=device),
             torch.randn(tokens, o, device=device)) for i, o in shapes]

    def products():
        for x, w, dy in mats:
            x @ w.t()  # forward (tokens, out)
            dy @ w  # gradient of the input (tokens, in)
            dy.t() @ x  # gradient of the weight (out, in)

    flops = sum(3 * 2 * tokens * i * o for i, o in shapes) * repeats
    best = 0.0
    for _ in range(3):
        products()  # warm up
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(repeats):
            products()
        _sync(device)
        best = max(best, flops / (time.perf_counter() - t0))
    return best


def _sync(device):
    synchronize(device)  # CUDA and MPS (minikd.device)


# -- memory --------------------------------------------------------------------------------------------

def reset_peak_memory(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mib(device) -> float | None:
    """torch.cuda.max_memory_allocated since the last reset, in MiB; None on a CPU (no such counter)."""
    if torch.device(device).type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2 ** 20


def process_peak_rss_mib() -> float | None:
    """The peak resident memory of this whole process so far, in MiB (None where `resource` is missing)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2 ** 20 if platform.system() == "Darwin" else rss / 2 ** 10  # bytes on macOS, KiB on Linux


def _mib(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.1f}"


# -- minikd's GPT against the plain reference, on random full blocks -------------------------------------

def train_step(fwd, optimizer, x, autocast):
    """One optimizer step (forward under the training loop's autocast, float32 loss, backward, AdamW) on x."""
    def step():
        with autocast:
            logits = fwd(x[:, :-1])  # (B, T, vocab)
        F.cross_entropy(logits.float().flatten(0, 1), x[:, 1:].flatten()).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return step


def seconds_per_step(step, steps: int, device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return (time.perf_counter() - t0) / steps


def _prepared(model, x, device, compile: bool):
    """The training loop's own setup (device, AdamW, autocast as minikd.device says, compile), warmed up."""
    device, optimizer, autocast, fwd, _ = setup(model, TrainConfig(device=str(device), compile=compile))
    step = train_step(fwd, optimizer, x.to(device), autocast)
    reset_peak_memory(device)
    for _ in range(5 if compile else 3):
        step()
    _sync(device)
    return step, peak_memory_mib(device)


def _spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def vs_reference(preset: str, vocab_size: int, batch_size: int = 64, seq_len: int = 128, repeats: int = 7,
                 steps: int = 5, device="cpu", compile: bool = False) -> dict:
    """ms per training step of minikd's GPT and of RefGPT (same config, same weights), interleaved:
    every repeat times `steps` steps of each, in alternating order, so a busy moment hits both alike.
    speedup = reference ms / minikd ms per repeat (> 1: minikd is faster); median and min-max."""
    torch.manual_seed(0)
    cfg = get_config(preset, vocab_size=vocab_size)
    mine, ref = GPT(cfg), RefGPT(cfg)
    copy_weights(ref, mine)
    if ref.num_params() != mine.num_params():
        raise ValueError(f"reference has {ref.num_params():,} parameters, minikd's {preset} {mine.num_params():,}")
    x = torch.randint(0, vocab_size, (batch_size, seq_len + 1))
    steps_of = {}
    steps_of["minikd"], peak = _prepared(mine, x, device, compile)  # alone on the device: its own peak
    steps_of["reference"], _ = _prepared(ref, x, device, compile)
    ms = {"minikd": [], "reference": []}
    for r in range(repeats):
        for name in (("minikd", "reference") if r % 2 == 0 else ("reference", "minikd")):
            ms[name].append(1e3 * seconds_per_step(steps_of[name], steps, device))
    tok_s = batch_size * seq_len / (statistics.median(ms["minikd"]) / 1e3)
    return {"preset": preset, "compile": compile, "params": mine.num_params(), "ref_params": ref.num_params(),
            "ms_per_step": _spread(ms["minikd"]), "ref_ms_per_step": _spread(ms["reference"]),
            "speedup": _spread([b / a for a, b in zip(ms["minikd"], ms["reference"])]), "ms": ms,
            "tokens_per_s": tok_s, "flops": mine.flops_per_token() * tok_s, "peak_mib": peak}


# -- real, length-grouped batches: useful vs padded tokens ------------------------------------------------

def real_batches(examples: list[dict], pad_id: int, batch_size: int, steps: int) -> tuple[list[dict], int]:
    """The first `steps` training batches of the examples (SFTData, seed 0) and their useful tokens: every
    row's real positions, ids[:-1]; what collate adds to reach the batch's longest row is padding."""
    data = SFTData(examples, pad_id, batch_size, seed=0)
    batches = [data.get_batch(step) for step in range(steps)]
    useful = sum(len(examples[i]["ids"]) - 1 for b in batches for i in b["index"].tolist())
    return batches, useful


def real_batch_throughput(preset: str, vocab_size: int, batches: list[dict], useful: int, length_groups: int,
                          device="cpu") -> dict:
    """Time the training loop's own steps (accumulate_gradients with length_groups micro-batches of
    similar-length rows, then clip + AdamW) on `batches`; tokens/s over computed and over useful positions.
    Computed = every micro-batch's rows x columns after trimming to its longest row."""
    torch.manual_seed(0)
    model = GPT(get_config(preset, vocab_size=vocab_size))
    device, optimizer, autocast, fwd, scaler = setup(model, TrainConfig(device=str(device)))
    batches = [{k: v.to(device) for k, v in b.items()} for b in batches]
    computed = sum(m["inputs"].numel() for b in batches for m in micro_batches(b, length_groups))

    def step(batch):
        accumulate_gradients(fwd, batch, sft_objective, length_groups, autocast, scaler)
        optimizer_step(model, optimizer, 1.0, scaler)

    for _ in range(2):
        step(batches[0])  # warm up
    reset_peak_memory(device)
    _sync(device)
    t0 = time.perf_counter()
    for b in batches:
        step(b)
    _sync(device)
    seconds = time.perf_counter() - t0
    return {"preset": preset, "length_groups": length_groups, "ms_per_step": 1e3 * seconds / len(batches),
            "padded_tokens": computed, "useful_tokens": useful, "padded_tokens_per_s": computed / seconds,
            "useful_tokens_per_s": useful / seconds, "flops": model.flops_per_token() * computed / seconds,
            "peak_mib": peak_memory_mib(device)}


# -- decoding -------------------------------------------------------------------------------------------

def decode_throughput(preset: str, vocab_size: int, device="cpu") -> dict:
    """generate.bench_generation (KV cache vs recomputing) plus FLOP/s = 2 N x cached tokens/s and peak memory."""
    from minikd.generate import bench_generation
    torch.manual_seed(0)
    model = GPT(get_config(preset, vocab_size=vocab_size)).to(device)
    reset_peak_memory(device)
    out = bench_generation(model)
    n = model.num_params(non_embedding=True)
    return {"preset": preset, **out, "flops": 2 * n * out["cache_tokens_per_s"], "peak_mib": peak_memory_mib(device)}


# -- the report -----------------------------------------------------------------------------------------

def print_header(device, matmul: float, matmul_size: int) -> None:
    card = f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, device {device}{card}")
    print(f"large fp32 matmul ({matmul_size} x {matmul_size}): {matmul / 1e9:.1f} GFLOP/s")
    print("FLOP/s are estimates: 6 N x tokens/s training, 2 N x tokens/s decoding, N = non-embedding parameters")
    print("peak MiB: torch.cuda.max_memory_allocated on CUDA; n/a on a CPU (the process's peak RSS is at the end)")


def print_vs_reference(rows: list[dict], args) -> None:
    print(f"\ntraining on random full blocks, batch {args.batch_size} x {args.seq_len} tokens: minikd's GPT vs "
          f"minikd.machinery.reference_gpt (plain PyTorch GPT-2, same config and parameters), {args.repeats} interleaved "
          f"repeats of {args.steps} steps, median [min-max]:")
    print(f"  {'preset':8s} {'compile':7s} {'params':>9s} {'ms/step':>20s} {'tokens/s':>9s} {'GFLOP/s':>8s} "
          f"{'of matmul':>9s} {'GEMMs alone':>13s} {'reference ms/step':>20s} {'minikd speed':>18s} {'peak MiB':>9s}")
    for r in rows:
        m, ref, s = r["ms_per_step"], r["ref_ms_per_step"], r["speedup"]
        print(f"  {r['preset']:8s} {str(r['compile']):7s} {r['params']:9,d} "
              f"{m['median']:7.1f} [{m['min']:.1f}-{m['max']:.1f}] {r['tokens_per_s']:9,.0f} {r['flops'] / 1e9:8.1f} "
              f"{100 * r['of_matmul']:8.0f}% {r['gemm_flops'] / 1e9:6.1f} = {100 * r['gemm_flops'] / args.matmul:3.0f}% "
              f"{ref['median']:7.1f} [{ref['min']:.1f}-{ref['max']:.1f}] "
              f"{s['median']:5.2f}x [{s['min']:.2f}-{s['max']:.2f}] {_mib(r['peak_mib']):>9s}")
    print("  (minikd speed: reference ms / minikd ms, > 1 = minikd faster; GEMMs alone: the model's own matrix "
          "products timed without anything else, GFLOP/s = share of the large matmul: the ceiling at these shapes)")
    for r in rows:  # the verdict, paired by repeat (each repeat timed both, back to back)
        claim(f"minikd's {r['preset']} GPT{' (compiled)' if r['compile'] else ''} trains as fast as the plain GPT-2 "
              "reference", r["ms"]["reference"], r["ms"]["minikd"], "≈",
              "reference − minikd ms/step, per interleaved repeat", unit="ms")


def print_real(rows: list[dict], args, n_examples: int) -> None:
    print(f"\ntraining on real batches of {args.batch_size} rows from data/train.jsonl ({n_examples} examples, "
          f"{args.real_steps} steps), split into length_groups micro-batches of similar-length rows:")
    print(f"  {'preset':8s} {'groups':>6s} {'ms/step':>8s} {'padded tok/s':>12s} {'useful tok/s':>12s} "
          f"{'useful share':>12s} {'GFLOP/s':>8s} {'peak MiB':>9s}")
    for r in rows:
        print(f"  {r['preset']:8s} {r['length_groups']:6d} {r['ms_per_step']:8.1f} {r['padded_tokens_per_s']:12,.0f} "
              f"{r['useful_tokens_per_s']:12,.0f} {100 * r['useful_tokens'] / r['padded_tokens']:11.0f}% "
              f"{r['flops'] / 1e9:8.1f} {_mib(r['peak_mib']):>9s}")
    print("  (padded: every computed position; useful: the rows' real tokens; GFLOP/s over computed positions)")


def print_decode(g: dict) -> None:
    print(f"\ndecoding, {g['preset']} preset, greedy, batch {g['batch_size']}, {g['new_tokens']} new tokens after "
          f"{g['prompt_len']}-token prompts:")
    print(f"  KV cache {g['cache_tokens_per_s']:,.0f} tokens/s ({g['flops'] / 1e9:.2f} GFLOP/s), recomputing "
          f"{g['full_tokens_per_s']:,.0f} tokens/s: {g['speedup']:.1f}x; same tokens: {g['same_tokens']}; "
          f"peak MiB {_mib(g['peak_mib'])}")


def parse_args(argv):
    p = argparse.ArgumentParser(prog="minikd bench", description=__doc__.split("\n")[0])
    p.add_argument("--presets", nargs="+", default=["student", "teacher"])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seq-len", type=int, default=128, help="random-block length (128: the presets' full context)")
    p.add_argument("--steps", type=int, default=5, help="timed optimizer steps per model per repeat")
    p.add_argument("--repeats", type=int, default=7, help="interleaved repeats of minikd vs the reference")
    p.add_argument("--real-steps", type=int, default=20, help="timed steps on real batches")
    p.add_argument("--length-groups", type=int, nargs="+", default=[1, 4], help="micro-batches per real batch")
    p.add_argument("--examples", type=int, default=None, help="first n records of data/train.jsonl (default all)")
    p.add_argument("--device", default="auto")
    p.add_argument("--matmul-size", type=int, default=2048, help="n of the n x n reference matmul")
    p.add_argument("--compile", action="store_true", help="also time both models under torch.compile")
    p.add_argument("--decode-preset", default="teacher")
    p.add_argument("--no-generate", action="store_true", help="skip the decoding benchmark")
    serve = p.add_argument_group("--serve: minikd serve's throughput and latency (minikd.machinery.serve_bench)")
    serve.add_argument("--serve", action="store_true", help="measure only the server: requests/s and p50/p95 "
                       "latency per number of concurrent clients, dynamic batching off vs on")
    serve.add_argument("--serve-clients", type=int, nargs="+", default=[1, 4, 16, 64])
    serve.add_argument("--serve-requests", type=int, default=4, help="requests each client sends, one after another")
    serve.add_argument("--serve-max-tokens", type=int, default=32, help="tokens per answer")
    serve.add_argument("--serve-repeats", type=int, default=3, help="rounds of every level (off and on paired)")
    serve.add_argument("--serve-window-ms", type=float, default=BATCH_WINDOW_MS, help="the batching window when on")
    serve.add_argument("--serve-threads", type=int, default=None, help="torch threads of each server")
    serve.add_argument("--serve-teacher", default=None, help="a teacher checkpoint (default: an untrained "
                       "--serve-preset model, whose answers all run to --serve-max-tokens)")
    serve.add_argument("--serve-preset", default="teacher")
    args = p.parse_args(argv)
    for name in ("batch_size", "seq_len", "steps", "repeats", "real_steps", "matmul_size", "serve_requests",
                 "serve_max_tokens", "serve_repeats"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if min(args.serve_clients) < 1:
        p.error(f"--serve-clients must all be >= 1, got {args.serve_clients}")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.serve:
        from minikd.machinery import serve_bench
        return serve_bench.main(args)
    device = get_device(args.device)
    tok = Tokenizer.default()  # the shipped tokenizer: the models' real output layer and the real batches
    args.matmul = matmul_flops(n=args.matmul_size, device=device)
    print_header(device, args.matmul, args.matmul_size)
    train = []
    for preset in args.presets:
        gemm = model_gemm_flops(preset, tok.vocab_size, tokens=args.batch_size * args.seq_len, device=device)
        for comp in ([False, True] if args.compile else [False]):
            r = vs_reference(preset, tok.vocab_size, args.batch_size, args.seq_len, args.repeats, args.steps,
                             device, comp)
            train.append({**r, "of_matmul": r["flops"] / args.matmul, "gemm_flops": gemm})
    print_vs_reference(train, args)
    examples, _ = load_sft(DATA_DIR / "train.jsonl", tok, get_config(args.presets[0], tok.vocab_size).block_size,
                           limit=args.examples)
    batches, useful = real_batches(examples, tok.pad_id, args.batch_size, args.real_steps)
    real = [real_batch_throughput(preset, tok.vocab_size, batches, useful, groups, device)
            for preset in args.presets for groups in args.length_groups]
    print_real(real, args, len(examples))
    decode = None if args.no_generate else decode_throughput(args.decode_preset, tok.vocab_size, device)
    if decode is not None:
        print_decode(decode)
    rss = process_peak_rss_mib()
    print(f"\nprocess peak resident memory (whole run, CPU side): {_mib(rss)} MiB")
    return {"device": str(device), "matmul_flops": args.matmul, "train": train, "real": real, "decode": decode,
            "peak_rss_mib": rss}


if __name__ == "__main__":
    main()
