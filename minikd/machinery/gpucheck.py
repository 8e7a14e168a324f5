"""`python -m minikd.gpucheck`: the whole GPU check in one command, ending with a block to paste into the README.

1. the GPU: name, memory, compute capability; torch, CUDA, cuDNN and driver versions;
2. `pytest -m cuda`: bf16 autocast training tracks float32, KV-cache decoding equals recomputing on CUDA,
   the quick main job runs on CUDA (tests/test_cuda.py);
3. `minikd run --quick --device cuda` in a fresh temporary runs/ folder (MINIKD_RUNS), timed;
4. `minikd bench --device cuda`: tokens/s (padded and useful), FLOP/s, peak memory, minikd vs a plain GPT-2.

Each step runs in its own process and prints as it goes. Exit status 0 when every step passed, 1 when one
failed (the block says which), 2 with "no CUDA device: ..." when torch sees no GPU: nothing is run then,
so no GPU result can be recorded from a machine that has none.
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

from minikd.runtime import ROOT


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


def markdown(card_line: str, steps: list[dict], bench_output: str) -> str:
    """The block for the README: the GPU, every command with its result and wall time, the bench's table."""
    today = datetime.date.today().isoformat()
    rows = "\n".join(f"| {s['title']} | `{s['command']}` | {s['result']} | {s['seconds']:.0f} s |" for s in steps)
    return (f"GPU check, {today}, `python -m minikd.gpucheck`\n\ncard: {card_line}\n\n"
            f"| step | command | result | wall time |\n|---|---|---|---|\n{rows}\n\n"
            f"`minikd bench --device cuda`:\n\n```text\n{bench_output.rstrip()}\n```")


def main(argv=None) -> int:
    argparse.ArgumentParser(prog="python -m minikd.gpucheck", description=__doc__.split("\n")[0]).parse_args(argv)
    if not torch.cuda.is_available():
        build = torch.version.cuda or "none (a CPU-only wheel)"
        print(f"no CUDA device: torch {torch.__version__} (CUDA build: {build}) sees no GPU, "
              "torch.cuda.is_available() is False; nothing was run and there is no GPU result to record",
              file=sys.stderr)
        return 2
    card_line = card()
    print(f"card: {card_line}", flush=True)
    steps = []
    tests = run_step("CUDA tests", "python -m pytest -m cuda", ["-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider"])
    tests["result"] = pytest_result(tests)
    steps.append(tests)
    with tempfile.TemporaryDirectory() as tmp:
        quick = run_step("quick main job", "minikd run --quick --device cuda",
                         ["-m", "minikd", "run", "--quick", "--device", "cuda"], env={**os.environ, "MINIKD_RUNS": tmp})
        quick["result"] = quick_result(quick, Path(tmp))
    steps.append(quick)
    bench = run_step("bench", "minikd bench --device cuda", ["-m", "minikd", "bench", "--device", "cuda"])
    bench["result"] = "table below" if bench["rc"] == 0 else f"failed (exit status {bench['rc']})"
    steps.append(bench)
    failed = [s["title"] for s in steps if s["rc"] != 0]
    print("\n== paste into the README:\n\n" + markdown(card_line, steps, bench["output"]))
    if failed:
        print(f"\ngpucheck: failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
