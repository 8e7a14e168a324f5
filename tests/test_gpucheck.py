"""`python -m minikd.gpucheck` without a GPU: what it would run, and the block it prints, from a CPU run of
its own throughput step. (No GPU has run it; tests/test_cuda.py holds the checks it runs on one.)"""

import torch

from minikd.machinery import gpucheck


def test_without_cuda_it_runs_nothing_and_says_so(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpucheck.main([]) == 2
    assert "no CUDA device" in capsys.readouterr().err


def test_every_lesson_runs_fast_on_cuda(monkeypatch):
    seen = []
    monkeypatch.setattr(gpucheck, "run_step",
                        lambda title, shown, argv, env=None: seen.append((argv, env)) or {"rc": 0})
    steps = gpucheck.lesson_steps("/tmp/runs")
    lessons = sorted(p.stem for p in (gpucheck.ROOT / "lessons").glob("l[0-9][0-9]_*.py"))
    assert [argv[1] for argv, _ in seen] == [f"lessons.{name}" for name in lessons] and len(steps) == len(lessons)
    assert all("--fast" in argv and env["MINIKD_DEVICE"] == "cuda" for argv, env in seen)
    assert sum("--device" in argv for argv, _ in seen) >= len(lessons) - 2  # l01, l02 use no device


def test_the_readme_block_from_a_cpu_throughput_run():
    speed = [gpucheck.throughput("tiny", 64, batch_size=4, steps=2, device="cpu")]
    assert speed[0]["tokens_per_s"] > 0 and speed[0]["mfu"] is None and speed[0]["precision"] == "fp32"
    step = {"title": "CUDA tests", "command": "python -m pytest -m cuda", "result": "4 passed", "seconds": 3.0}
    block = gpucheck.markdown("a CPU, for this test", [step], speed)
    assert "| tiny | fp32 | 4x" in block and "| preset | dtype | batch | tokens/s | ms/step | peak MiB | MFU |" in block
    assert gpucheck.peak_tflops("NVIDIA H100 80GB HBM3") == 989.0 and gpucheck.peak_tflops("Tesla T4") == 65.0
    assert gpucheck.peak_tflops("NVIDIA H100 PCIe") == 756.0 and gpucheck.peak_tflops("NVIDIA A10G") is None
