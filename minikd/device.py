"""The one device policy: which device a run uses, in which precision, and why.

Every part of minikd asks here (training, the caches' keys, the GPU check), so a T4 on Colab, an Apple
laptop and an H100 each get one answer, said once:

    CUDA with native bf16 (compute capability >= 8.0: A100, H100, RTX 30xx/40xx)
        bf16 autocast. bf16 keeps float32's exponent range, so no loss scaling is needed.
    CUDA without native bf16 (T4 and V100: sm75 / sm70; P100)
        fp16 autocast + GradScaler. Such cards only *emulate* bf16 (slower than float32; a P100 raises
        CUBLAS_STATUS_NOT_SUPPORTED), but they have fp16 tensor cores (a T4: ~65 TFLOP/s fp16 against ~8
        in float32). fp16's narrow range lets small gradients underflow to 0, so the loss is multiplied by
        a scale before backward and the gradients divided by it before the step (the GradScaler; the same
        choice as nanoGPT's train.py).
    MPS (Apple)     float32: MPS autocast is young and fp16 without a scaler loses small gradients; the
                    course's models are small enough that float32 is fast enough.
    CPU             float32 by default (the readable, exact path). precision="bf16" turns CPU bf16
                    autocast on: it runs the same code as CUDA's bf16 path, which is how the tests check
                    that path without a GPU.

Under every autocast, the final LayerNorm, the output layer and every teacher forward that produces a
target run in float32 (minikd.model.GPT.forward, word_kd.run_teacher): losses and stored targets are
float32 numbers computed from float32 logits, not bf16 ones widened afterwards.

`non_blocking` copies only on CUDA: a non-blocking copy from pageable CPU memory whose source is then
freed is a known silent corruption on MPS, and on the CPU there is nothing to overlap.

MINIKD_DEVICE (an environment variable) is what "auto" means when it is set: the test session sets it to
"cpu" (tests/conftest.py), so `pytest` on a GPU machine still runs the lessons on the CPU unless asked.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}  # None: no autocast


@dataclass(frozen=True)
class DevicePolicy:
    device: torch.device  # where the model and batches live
    precision: str  # "fp32" | "bf16" | "fp16": the autocast dtype of the forward pass ("fp32": no autocast)
    grad_scaler: bool  # scale the loss before backward (fp16 only)
    non_blocking: bool  # copy batches to the device without waiting (CUDA only)
    why: str  # one sentence a learner can read in the log

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return DTYPES[self.precision]

    @property
    def key(self) -> str:
        """Device type and dtype, e.g. "cuda/bf16": what caches and checkpoints record and compare."""
        return f"{self.device.type}/{self.precision}"

    def autocast(self):
        """The context the student's forward pass runs in: autocast at the policy's dtype, or nothing."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)


def full_precision(device: torch.device | str):
    """A context where autocast is off: float32 layers inside an autocast region (final LayerNorm, output
    layer, teacher forwards). Harmless outside autocast."""
    try:
        return torch.autocast(torch.device(device).type, enabled=False)
    except (RuntimeError, ValueError):  # a torch with no autocast for this device type: nothing to turn off
        return contextlib.nullcontext()


def mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def native_bf16() -> bool:
    """Does the CUDA card compute in bf16 natively (not emulated)? torch < 2.3 has no including_emulation
    keyword; there, native bf16 means compute capability 8.0 or newer (Ampere)."""
    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:
        return torch.cuda.get_device_capability()[0] >= 8


def get_device(name: str = "auto") -> torch.device:
    """'auto' is MINIKD_DEVICE when set, else cuda > mps > cpu; any other name is used as given (and checked)."""
    name, where = str(name), ""  # a torch.device is fine too
    if name == "auto" and os.environ.get("MINIKD_DEVICE"):
        name, where = os.environ["MINIKD_DEVICE"], " (by MINIKD_DEVICE)"
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if mps_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked for{where}, but CUDA is not available on this machine")
    if name == "mps" and not mps_available():
        raise ValueError(f"device 'mps' asked for{where}, but MPS is not available on this machine")
    return torch.device(name)


def synchronize(device: torch.device | str) -> None:
    """Wait until the device has run everything queued: a GPU works asynchronously, so a clock read
    without this measures how fast work was queued, not done (CUDA and MPS alike; a CPU has no queue)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def auto_precision(device: torch.device) -> tuple[str, str]:
    """(precision, why) for a device when the run does not name one."""
    if device.type == "cuda":
        if native_bf16():
            return "bf16", "CUDA with native bf16: bf16 autocast, float32 range, no loss scaling"
        return "fp16", ("CUDA without native bf16 (emulated bf16 is slower than float32): fp16 autocast on "
                        "the fp16 tensor cores, GradScaler against underflowing gradients")
    if device.type == "mps":
        return "fp32", "MPS: float32 (MPS autocast is young; fp16 without a scaler loses small gradients)"
    return "fp32", f"{device.type}: float32, the exact and readable path"


def device_policy(device: str | torch.device = "auto", precision: str = "auto") -> DevicePolicy:
    """The device a run uses and how: autocast dtype (or none), GradScaler, non_blocking copies, and why."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    dev = get_device(device)
    if precision == "auto":
        precision, why = auto_precision(dev)
    else:
        why = f"{dev.type}: {precision} as asked"
    return DevicePolicy(dev, precision, grad_scaler=precision == "fp16", non_blocking=dev.type == "cuda", why=why)
