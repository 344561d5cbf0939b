"""What this machine offers each device of the capability table: usable or not, and why.

The capability table (:mod:`spide_brian.devices`) says what a device can do; this module
checks what a device needs here: a C++ compiler, the brian2genn / brian2cuda packages, a GeNN
tree at ``GENN_PATH``, ``nvcc`` and cuRAND, a GPU.
"""
from __future__ import annotations

import importlib.util
import os
import shutil

from .cuda import gpu_present, has_curand
from .devices import CAPABILITIES

__all__ = ["device_status", "requirements_missing"]


def _has_module(name):
    return importlib.util.find_spec(name) is not None


def requirements_missing(name):
    """Reasons why device ``name`` cannot run here (an empty list when it can)."""
    missing = []
    compiler = shutil.which("g++") or shutil.which("c++")
    if name in ("cython", "cpp_standalone", "genn", "cuda_standalone") and not compiler:
        missing.append("no C++ compiler (install g++)")
    if name == "cython" and not _has_module("Cython"):
        missing.append("Cython is not installed (pip install cython)")
    if name == "genn":
        if not _has_module("brian2genn"):
            missing.append("brian2genn is not installed (pip install 'spide-brian[genn]')")
        genn_path = os.environ.get("GENN_PATH")
        if not genn_path or not os.path.isdir(os.path.join(genn_path, "bin")):
            missing.append("no GeNN 4.x tree at GENN_PATH")
    if name == "cuda_standalone":
        if not _has_module("brian2cuda"):
            missing.append("brian2cuda is not installed (pip install 'spide-brian[cuda]')")
        if not shutil.which("nvcc"):
            missing.append("no nvcc on PATH (install the CUDA toolkit)")
        elif not has_curand():
            missing.append("no cuRAND (pip install nvidia-curand)")
    if name == "genn" and not gpu_present():
        missing.append("no GPU (--genn-cpu-only runs GeNN's CPU backend)")
    if name == "cuda_standalone" and not gpu_present():
        missing.append("no GPU (nvidia-smi, /dev/nvidia0)" + (
            "; the CUDA program builds but cannot run" if not missing else ""))
    return missing


def device_status():
    """``(name, usable, reason)`` for every device of the capability table."""
    rows = []
    for name, caps in CAPABILITIES.items():
        missing = requirements_missing(name)
        if not caps.implemented:
            rows.append((name, False, f"{caps.note}" + (f"; here: {', '.join(missing)}"
                                                        if missing else "")))
        elif missing:
            rows.append((name, False, ", ".join(missing)))
        else:
            rows.append((name, True, caps.note))
    return rows
