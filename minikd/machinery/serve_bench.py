"""`minikd bench --serve`: how many requests per second `minikd serve` answers, and how long each waits,
for 1, 4, 16 and 64 concurrent clients, with dynamic batching off and on.

A class labelling through one teacher is many clients sending one prompt each. With batching off the
server decodes one request at a time; with it on, greedy requests that arrive within the window are
decoded as one batch (minikd.machinery.serve.Batcher). Both servers run as `minikd serve` subprocesses
(the clients' threads do not share the server's interpreter), serving the same teacher; every level is
run `repeats` times, off and on back to back, so the two are paired by repeat. Each client sends its
requests one after another (chat, greedy, one prompt from data/unlabelled.jsonl each) with no retries:
a request that fails is counted, never hidden.

Without --teacher the teacher is an untrained model of --preset: it never writes the end token, so every
answer runs to max_tokens and each request costs the same. This is a measurement for the README, not a
test: run it on a quiet machine.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from minikd.data import read_jsonl
from minikd.machinery.client import APIError, Client
from minikd.runtime import DATA_DIR
from minikd.verdict import check, claim

LEVELS = (1, 4, 16, 64)


def untrained_teacher(preset: str, folder: Path) -> Path:
    """An untrained checkpoint of `preset` under `folder` (seed 0): a teacher of the right size and shape."""
    import torch
    from minikd.model import GPT, get_config
    from minikd.tokenizer import Tokenizer
    from minikd.train import save_checkpoint
    tok = Tokenizer.default()
    torch.manual_seed(0)
    path = folder / f"untrained_{preset}.pt"
    save_checkpoint(path, GPT(get_config(preset, vocab_size=tok.vocab_size)), step=0, fingerprint=tok.fingerprint)
    return path


def start_server(teacher: Path, window_ms: float, threads: int | None, device: str, log: Path):
    """`minikd serve` on 127.0.0.1, any free port: (the process, its URL)."""
    cmd = [sys.executable, "-m", "minikd", "serve", "--teacher", str(teacher), "--port", "0", "--device", device,
           "--batch-window-ms", str(window_ms)] + (["--threads", str(threads)] if threads else [])
    with open(log, "a") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
    line = proc.stdout.readline()
    if " at http://" not in line:
        proc.kill()
        raise RuntimeError(f"minikd serve did not start: {line!r}; see {log}")
    return proc, line.split(" at ")[1].split()[0]


def one_level(url: str, clients: int, per_client: int, prompts: list[str], max_tokens: int) -> dict:
    """`clients` threads, each sending `per_client` requests in a row: requests/s, latencies, failures."""
    latencies: list[float] = []
    failures: list[str] = []
    lock, start = threading.Lock(), threading.Barrier(clients)

    def client(c: int) -> None:
        api = Client(url, retries=0, timeout=300.0)
        start.wait()
        for k in range(per_client):
            body = {"messages": [{"role": "user", "content": prompts[(c * per_client + k) % len(prompts)]}],
                    "max_tokens": max_tokens, "temperature": 0}
            t0 = time.perf_counter()
            try:
                api.call("POST", f"{api.base}/chat/completions", body, lambda a: a["choices"][0]["message"]["content"])
                with lock:
                    latencies.append(time.perf_counter() - t0)
            except APIError as e:
                with lock:
                    failures.append(str(e))

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    ordered = sorted(latencies) or [float("nan")]
    return {"clients": clients, "requests": clients * per_client, "failed": len(failures),
            "requests_per_s": len(latencies) / seconds, "p50_ms": 1000 * statistics.median(ordered),
            "p95_ms": 1000 * ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], "errors": failures[:3]}


def run_levels(urls: dict, args, prompts: list[str]) -> list[dict]:
    """Every level, `repeats` times, the servers back to back (paired by repeat)."""
    rows = []
    for repeat in range(args.serve_repeats):
        for clients in args.serve_clients:
            for mode, url in urls.items():
                r = one_level(url, clients, args.serve_requests, prompts, args.serve_max_tokens)
                rows.append({"mode": mode, "repeat": repeat, **r})
                print(f"  repeat {repeat + 1}/{args.serve_repeats}  {clients:3d} clients  batching {mode:3s}  "
                      f"{r['requests_per_s']:8.1f} req/s  p50 {r['p50_ms']:8.1f} ms  p95 {r['p95_ms']:8.1f} ms  "
                      f"failed {r['failed']}", flush=True)
    return rows


def summarise(rows: list[dict], args) -> dict:
    """The table (medians over repeats) and the verdicts: the gain at 16 clients, no failure at the most."""
    print(f"\nminikd serve, {args.serve_requests} requests per client, {args.serve_max_tokens} tokens each, "
          f"median of {args.serve_repeats} repeats:")
    print(f"  {'clients':>7s} {'batching':>8s} {'req/s':>8s} {'p50 ms':>8s} {'p95 ms':>8s} {'failed':>6s}")
    table = {}
    for clients in args.serve_clients:
        for mode in ("off", "on"):
            mine = [r for r in rows if (r["clients"], r["mode"]) == (clients, mode)]
            med = {k: statistics.median(r[k] for r in mine) for k in ("requests_per_s", "p50_ms", "p95_ms")}
            table[(clients, mode)] = {**med, "failed": sum(r["failed"] for r in mine),
                                      "rps": [r["requests_per_s"] for r in mine]}
            print(f"  {clients:7d} {mode:>8s} {med['requests_per_s']:8.1f} {med['p50_ms']:8.1f} {med['p95_ms']:8.1f} "
                  f"{table[(clients, mode)]['failed']:6d}")
    gain_at = 16 if 16 in args.serve_clients else max(args.serve_clients)
    on, off = table[(gain_at, "on")]["rps"], table[(gain_at, "off")]["rps"]
    print(f"  batching on / off at {gain_at} clients: {statistics.median(on) / statistics.median(off):.2f}x requests/s")
    claim(f"with batching, {gain_at} clients get at least 3x the requests/s", on, [3 * x for x in off], ">",
          "on − 3 × off requests/s, per repeat", unit="req/s")
    most = max(args.serve_clients)
    failed = table[(most, "on")]["failed"] + table[(most, "off")]["failed"]
    check(f"no request failed at {most} concurrent clients", failed == 0,
          f"{failed} failed of {2 * most * args.serve_requests * args.serve_repeats}")
    return {"rows": rows, "gain_at": gain_at, "failed_at_most": failed}


def main(args) -> dict:
    """Start both servers, run every level, print the table and the verdicts, stop the servers."""
    prompts = [r["prompt"] for r in read_jsonl(DATA_DIR / "unlabelled.jsonl")][:512]
    with tempfile.TemporaryDirectory(prefix="minikd-serve-bench-") as folder:
        folder = Path(folder)
        teacher = Path(args.serve_teacher) if args.serve_teacher else untrained_teacher(args.serve_preset, folder)
        procs, urls = [], {}
        try:
            for mode, window in (("off", 0.0), ("on", args.serve_window_ms)):
                proc, urls[mode] = start_server(teacher, window, args.serve_threads, args.device, folder / "serve.log")
                procs.append(proc)
            what = args.serve_teacher or f"untrained {args.serve_preset} preset"
            print(f"serve benchmark: teacher {what}, batching off vs on ({args.serve_window_ms:g} ms window), "
                  f"clients {list(args.serve_clients)}", flush=True)
            for url in urls.values():  # warm up: the first requests pay for allocations
                one_level(url, 2, 2, prompts, args.serve_max_tokens)
            return summarise(run_levels(urls, args, prompts), args)
        finally:
            for proc in procs:
                proc.kill()
                proc.wait()
