"""`minikd bench`: how fast do the presets train and decode on this machine?

Training throughput is reported as tokens/s and as achieved FLOP/s = 6 x N x tokens/s (N = the
non-embedding parameters, the usual estimate of forward + backward cost), next to what one large fp32
matrix multiply reaches on the same machine in the same run — the practical ceiling of the CPU.
Decoding compares the KV cache with recomputing the whole sequence at every new token.

These are measurements for the README, not tests: run them on a quiet machine.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch
import torch.nn.functional as F

from minikd.common import get_device
from minikd.model import GPT, get_config
from minikd.tokenizer import Tokenizer
from minikd.train import TrainConfig, make_optimizer


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
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def train_throughput(preset: str, vocab_size: int, batch_size: int = 64, seq_len: int = 64,
                     steps: int = 20, device="cpu", compile: bool = False) -> dict:
    """Time full optimizer steps (forward, backward, AdamW) of a preset on random tokens."""
    torch.manual_seed(0)
    model = GPT(get_config(preset, vocab_size=vocab_size)).to(device)
    opt = make_optimizer(model, TrainConfig())
    fwd = torch.compile(model) if compile else model
    x = torch.randint(0, vocab_size, (batch_size, seq_len + 1), device=device)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if torch.device(device).type == "cuda"
                else torch.autocast("cpu", enabled=False))

    def step():
        with autocast:
            logits = fwd(x[:, :-1])
        F.cross_entropy(logits.reshape(-1, vocab_size), x[:, 1:].reshape(-1)).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(3 if not compile else 5):
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    seconds = (time.perf_counter() - t0) / steps
    tok_s = batch_size * seq_len / seconds
    return {"preset": preset, "params": model.num_params(), "ms_per_step": 1e3 * seconds,
            "tokens_per_s": tok_s, "flops": model.flops_per_token() * tok_s}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="minikd bench", description=__doc__.split("\n")[0])
    parser.add_argument("--presets", nargs="+", default=["student", "teacher"])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="timed optimizer steps per preset")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--matmul-size", type=int, default=2048, help="n of the n x n reference matmul")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument("--no-generate", action="store_true", help="skip the decoding benchmark")
    args = parser.parse_args(argv)
    device = get_device(args.device)
    vocab_size = Tokenizer.default().vocab_size  # the shipped tokenizer's: the models' real output layer

    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, device {device}")
    peak = matmul_flops(n=args.matmul_size, device=device)
    print(f"large fp32 matmul ({args.matmul_size} x {args.matmul_size}): {peak / 1e9:.1f} GFLOP/s\n")
    print(f"training, batch {args.batch_size} x {args.seq_len} tokens:")
    print(f"  {'preset':8s} {'compile':7s} {'params':>9s} {'ms/step':>8s} {'tokens/s':>9s} "
          f"{'GFLOP/s':>8s} {'of matmul':>9s} {'its GEMMs alone':>16s}")
    results = []
    for preset in args.presets:
        gemm = model_gemm_flops(preset, vocab_size, tokens=args.batch_size * args.seq_len, device=device)
        for comp in ([False, True] if args.compile else [False]):
            r = train_throughput(preset, vocab_size, batch_size=args.batch_size, seq_len=args.seq_len, steps=args.steps,
                                 device=device, compile=comp)
            r["compile"], r["of_matmul"], r["gemm_flops"] = comp, r["flops"] / peak, gemm
            results.append(r)
            print(f"  {preset:8s} {str(comp):7s} {r['params']:9,d} {r['ms_per_step']:8.1f} "
                  f"{r['tokens_per_s']:9,.0f} {r['flops'] / 1e9:8.1f} {100 * r['of_matmul']:8.0f}% "
                  f"{gemm / 1e9:7.1f} = {100 * gemm / peak:3.0f}%")
    print("  (its GEMMs alone: the model's own matrix products timed without anything else — the ceiling "
          "at these shapes)")
    if not args.no_generate:
        from minikd.generate import bench_generation
        model = GPT(get_config("teacher", vocab_size=vocab_size)).to(device)
        g = bench_generation(model)
        print("\ndecoding, teacher preset:")
        print("  " + ", ".join(f"{k} {v:,.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in g.items()))
    return {"matmul_flops": peak, "train": results}


if __name__ == "__main__":
    main()
