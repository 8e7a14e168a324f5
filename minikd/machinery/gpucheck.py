"""`python -m minikd.gpucheck`: the whole GPU check in one command, ending with a block to paste into the README.

1. the GPU: name, memory, compute capability; torch, CUDA, cuDNN and driver versions; the device policy
   (minikd.device: bf16 where native, fp16 + GradScaler on a T4 / V100);
2. `pytest -m cuda` (tests/test_cuda.py): autocast training tracks float32, KV-cache decoding equals
   recomputing, resume is exact under deterministic algorithms, the quick main job runs;
3. every lesson, `python -m lessons.<name> --fast --device cuda` (MINIKD_DEVICE=cuda for the two that take
   no --device), in one fresh runs/ folder as a learner would run them;
4. `minikd run --quick --device cuda` in a fresh runs/ folder (MINIKD_RUNS), timed;
5. with two GPUs or more: a 2-rank NCCL run, `torchrun --nproc_per_node 2 -m minikd train ... --device cuda`;
6. throughput per preset on random full blocks, timed with torch.cuda.synchronize: tokens/s, ms per step,
   peak memory (torch.cuda.max_memory_allocated) and MFU, the model FLOP/s (6 N per token, Kaplan et al.
   2020) over the GPU's nominal dense peak at the policy's dtype (NVIDIA's datasheets; "n/a" for a GPU
   not in PEAK_TFLOPS, or in float32).

Each step but the last runs in its own process and prints as it goes. Exit status 0 when every step passed,
1 when one failed (the block says which), 2 with "no CUDA device: ..." when torch sees no GPU: nothing is
run then, so no GPU result can be recorded from a machine that has none.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from minikd.device import device_policy, synchronize
from minikd.model import GPT, get_config
from minikd.runtime import ROOT

# Nominal dense tensor-core peaks, TFLOP/s, at the dtype the device policy picks for the GPU (NVIDIA's
# datasheets; no sparsity). First match in the GPU name wins, so the specific names come first; None: a
# GPU whose figure we have not checked (its MFU prints "n/a").
PEAK_TFLOPS = (("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.0), ("H200", 989.0), ("A100", 312.0),
               ("L40S", 362.0), ("L40", None), ("L4", 121.0), ("A10G", None), ("A10", 125.0), ("V100-PCIE", 112.0),
               ("V100", 125.0), ("T4", 65.0))


def card() -> str:
    """One line naming the GPU and the software stack that drives it."""
    p = torch.cuda.get_device_properties(0)
    line = (f"{p.name}, {p.total_memory / 2 ** 30:.1f} GiB, compute capability {p.major}.{p.minor}, "
            f"{torch.cuda.device_count()} device(s); torch {torch.__version__}, CUDA {torch.version.cuda}, "
            f"cuDNN {torch.backends.cudnn.version()}")
    if shutil.which("nvidia-smi"):
        smi = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True)
        if smi.returncode == 0 and smi.stdout.strip():
            line += f", driver {smi.stdout.split()[0]}"
    return line


def run_step(title: str, shown: str, argv: list[str], env: dict | None = None) -> dict:
    """Run `python <argv>` in the repository, echo its output line by line, time it."""
    print(f"\n== {title}: {shown}", flush=True)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *argv], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        print(line, end="", flush=True)
        lines.append(line)
    rc = proc.wait()
    return {"title": title, "command": shown, "rc": rc, "seconds": time.perf_counter() - t0, "output": "".join(lines)}


def pytest_result(step: dict) -> str:
    """pytest's summary line; a run where a cuda test was skipped on a GPU machine counts as failed."""
    summary = next((line.strip("= ") for line in reversed(step["output"].splitlines()) if " in " in line), "")
    if "skipped" in summary or "passed" not in summary:
        step["rc"] = step["rc"] or 1
    return summary or f"exit status {step['rc']}"


def quick_result(step: dict, runs: Path) -> str:
    path = runs / "quick" / "results.json"
    if step["rc"] != 0 or not path.exists():
        return f"failed (exit status {step['rc']})"
    times = json.loads(path.read_text())["times"]
    return "results.json written; stages " + ", ".join(f"{k} {v:.0f} s" for k, v in times.items())


def lesson_steps(runs: str) -> list[dict]:
    """Every lesson, --fast, on CUDA, sharing one runs/ folder (the teacher is trained once, as for a learner)."""
    env = {**os.environ, "MINIKD_RUNS": runs, "MINIKD_DEVICE": "cuda"}
    steps = []
    for path in sorted((ROOT / "lessons").glob("l[0-9][0-9]_*.py")):
        takes_device = "device=False" not in path.read_text(encoding="utf-8")
        argv = ["-m", f"lessons.{path.stem}", "--fast"] + (["--device", "cuda"] if takes_device else [])
        step = run_step(f"lesson {path.stem}", "python " + " ".join(argv), argv, env=env)
        step["result"] = "ran" if step["rc"] == 0 else f"failed (exit status {step['rc']})"
        steps.append(step)
    return steps


def nccl_step(tmp: str) -> dict:
    """Two ranks on two GPUs (NCCL), the README's "Scaling out" command on CUDA."""
    argv = ["-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "minikd", "train", "--objective", "gt",
            "--preset", "tiny", "--profile", "quick", "--steps", "6", "--limit", "64", "--device", "cuda",
            "--out", str(Path(tmp) / "s2.pt")]
    step = run_step("2-rank NCCL", "torchrun --nproc_per_node 2 -m minikd train ... --device cuda", argv,
                    env={**os.environ, "MINIKD_RUNS": tmp})
    step["result"] = "ran" if step["rc"] == 0 else f"failed (exit status {step['rc']})"
    return step


def peak_tflops(name: str) -> float | None:
    return next((tf for key, tf in PEAK_TFLOPS if key in name), None)


def throughput(preset: str, vocab_size: int, batch_size: int = 32, steps: int = 20, device: str = "cuda") -> dict:
    """Training steps of a preset on random full blocks under the training loop's own setup (train.setup),
    timed between synchronize() calls: tokens/s, ms per step, peak memory (CUDA), MFU (a known GPU)."""
    from minikd.machinery.bench import peak_memory_mib, reset_peak_memory, train_step
    from minikd.train import TrainConfig, setup
    torch.manual_seed(0)
    model = GPT(get_config(preset, vocab_size=vocab_size))
    T = min(128, model.config.block_size)
    x = torch.randint(0, vocab_size, (batch_size, T + 1))
    policy = device_policy(device)
    dev, optimizer, autocast, fwd, _ = setup(model, TrainConfig(device=device), policy)
    step = train_step(fwd, optimizer, x.to(dev), autocast)
    for _ in range(3):
        step()  # warm-up: kernels, allocator
    reset_peak_memory(dev)
    synchronize(dev)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(dev)
    seconds = (time.perf_counter() - t0) / steps
    tok_s = batch_size * T / seconds
    peak = peak_tflops(torch.cuda.get_device_name(dev)) if dev.type == "cuda" else None
    mfu = model.flops_per_token() * tok_s / (peak * 1e12) if peak and policy.precision != "fp32" else None
    return {"preset": preset, "precision": policy.precision, "tokens_per_s": tok_s, "ms_per_step": 1e3 * seconds,
            "peak_mib": peak_memory_mib(dev), "mfu": mfu, "batch": f"{batch_size}x{T}"}


def markdown(card_line: str, steps: list[dict], speed: list[dict]) -> str:
    """The block for the README: the GPU, every command with its result and wall time, the throughput table."""
    today = datetime.date.today().isoformat()
    rows = "\n".join(f"| {s['title']} | `{s['command']}` | {s['result']} | {s['seconds']:.0f} s |" for s in steps)
    fast = "\n".join(f"| {r['preset']} | {r['precision']} | {r['batch']} | {r['tokens_per_s']:,.0f} | "
                     f"{r['ms_per_step']:.1f} | {'n/a' if r['peak_mib'] is None else format(r['peak_mib'], ',.0f')} | "
                     f"{'n/a' if r['mfu'] is None else format(100 * r['mfu'], '.1f') + ' %'} |"
                     for r in speed)
    return (f"GPU check, {today}, `python -m minikd.gpucheck`\n\ncard: {card_line}\n\n"
            f"| step | command | result | wall time |\n|---|---|---|---|\n{rows}\n\n"
            f"| preset | dtype | batch | tokens/s | ms/step | peak MiB | MFU |\n|---|---|---|---|---|---|---|\n{fast}")


def main(argv=None) -> int:
    argparse.ArgumentParser(prog="python -m minikd.gpucheck", description=__doc__.split("\n")[0]).parse_args(argv)
    if not torch.cuda.is_available():
        build = torch.version.cuda or "none (a CPU-only wheel)"
        print(f"no CUDA device: torch {torch.__version__} (CUDA build: {build}) sees no GPU, "
              "torch.cuda.is_available() is False; nothing was run and there is no GPU result to record",
              file=sys.stderr)
        return 2
    card_line = f"{card()}; policy: {device_policy('cuda').why}"
    print(f"card: {card_line}", flush=True)
    tests = run_step("CUDA tests", "python -m pytest -m cuda",
                     ["-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider"])
    tests["result"] = pytest_result(tests)
    steps = [tests]
    with tempfile.TemporaryDirectory() as tmp:
        steps += lesson_steps(str(Path(tmp) / "lessons"))
        quick = run_step("quick main job", "minikd run --quick --device cuda",
                         ["-m", "minikd", "run", "--quick", "--device", "cuda"], env={**os.environ, "MINIKD_RUNS": tmp})
        quick["result"] = quick_result(quick, Path(tmp))
        steps.append(quick)
        if torch.cuda.device_count() >= 2:
            steps.append(nccl_step(tmp))
    from minikd.tokenizer import Tokenizer
    speed = [throughput(preset, Tokenizer.default().vocab_size) for preset in ("student", "teacher")]
    failed = [s["title"] for s in steps if s["rc"] != 0]
    print("\n== paste into the README:\n\n" + markdown(card_line, steps, speed))
    if failed:
        print(f"\ngpucheck: failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
