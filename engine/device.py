"""Where the network runs and in which precision: device names, the choice of "auto", autocast.

Stdlib only at import (torch is imported by the functions that need it), so that option checks
(engine.options) and the Blender add-on can read :data:`DEVICES` without loading torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import InvalidOptionError

if TYPE_CHECKING:
    import torch

SPIN_COUNT = "10000"  # libgomp spin iterations before an idle thread sleeps (its default: 300,000)
DEVICES = ("cpu", "cuda", "mps", "auto")  # "cuda:N" also names one CUDA GPU
DEFAULT_DEVICE = "cpu"  # the CPU build of torch is what the install commands give


def limit_thread_spinning() -> None:
    """Let torch's idle OpenMP threads (libgomp, the Linux CPU wheels') sleep after :data:`SPIN_COUNT`
    spins instead of 300,000: spinning threads fight any other busy process (Blender, a second
    engine), while never spinning slows every pass (the measurements: docs/decisions.md, "Threads").
    Takes effect only before torch is first imported (the CLI, the worker and
    ``engine.Reconstructor`` call it first); a wait policy or spin count the user set wins."""
    import os

    if "OMP_WAIT_POLICY" not in os.environ:
        os.environ.setdefault("GOMP_SPINCOUNT", SPIN_COUNT)


def check_device_name(name: object) -> str:
    """``name`` lower-cased when it is one of :data:`DEVICES` or ``cuda:N``; InvalidOptionError otherwise
    (no check of the hardware: see :func:`pick_device`)."""
    if not isinstance(name, str):
        raise InvalidOptionError(f"device must be one of {', '.join(DEVICES)} (or cuda:N), got {name!r}")
    low = name.lower()
    if low in DEVICES or (low.startswith("cuda:") and low[5:].isdigit()):
        return low
    raise InvalidOptionError(f"device must be one of {', '.join(DEVICES)} (or cuda:N), got {name!r}")


def pick_device(name: str) -> torch.device:
    """A checked device name (:func:`check_device_name`) → torch device: "auto" → cuda, else mps, else
    cpu; an explicit GPU that torch cannot see is an InvalidOptionError."""
    import torch

    name = check_device_name(name)
    has_mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InvalidOptionError("device 'cuda' requested but torch sees no CUDA GPU (is this a CPU build of torch?)")
    if name == "mps" and not has_mps:
        raise InvalidOptionError("device 'mps' requested but Metal is not available here")
    return torch.device(name)


def available_devices() -> list[str]:
    """The devices this machine can run the network on, CPU first."""
    import torch

    found = ["cpu"]
    if torch.cuda.is_available():
        found.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.append("mps")
    return found


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU's feature flags as ``/proc/cpuinfo`` lists them (``cpuinfo``: its text, read when not
    given); empty where there is no such file (macOS, Windows)."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                cpuinfo = f.read()
        except OSError:
            cpuinfo = ""
    return set(cpuinfo.split())


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether the CPU computes bf16 in hardware: AMX tiles (Intel Sapphire Rapids and later) or
    AVX-512 bf16 (AMD Zen 4, Intel Cooper Lake). Where it does not, bf16 autocast is emulated and
    slower than fp32 (an Intel Ice Lake: 1.7× slower per training step)."""
    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags(cpuinfo))


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 where the hardware runs it fast (a CPU with native bf16, :func:`cpu_has_native_bf16`; CUDA,
    or fp16 on GPUs without bf16), else None: full precision. The networks' last layers run in fp32
    under autocast (engine.network, engine.light_network)."""
    import torch

    if device.type == "cpu":
        is_amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
        amx = is_amx is not None and is_amx()
        return torch.bfloat16 if (amx or cpu_has_native_bf16()) else None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return None
