"""brian2cuda (device ``cuda_standalone``): build preferences, cuRAND, and run errors.

brian2cuda generates a CUDA project and builds it with ``nvcc``. This module sets what that
build needs without a user editing Brian2 preferences:

* the target GPU is given, not detected (``detect_gpus`` off, ``gpu_id``,
  ``compute_capability``; default 9.0, an H100/H200), so the project also builds on a
  machine without a GPU or ``nvidia-smi``;
* ``cuda_runtime_version`` comes from ``nvcc --version``;
* C++17 for ``nvcc`` and the host compiler: the Thrust of CUDA >= 13 rejects the C++11 that
  brian2cuda 1.0a3 asks for;
* ``make -jN`` with N the number of cores (Brian2's default ``-j`` starts every nvcc at
  once, each near 1 GB of memory);
* cuRAND (brian2cuda links every program with ``-lcurand``): if the CUDA toolkit lacks it,
  the headers and library of the ``nvidia-curand`` wheel are used; that wheel ships only
  ``libcurand.so.10``, so a ``libcurand.so`` link to it is made in
  ``~/.cache/spide-brian/curand`` for the linker, and the wheel's folder is the program's
  run-time library path.

:func:`run_on_cuda` turns a program that was built but cannot run (no GPU, no driver) into
:class:`CUDARunError`, one line naming the project.
"""
from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from pathlib import Path

from .processes import bound_make_jobs

__all__ = ["DEFAULT_COMPUTE_CAPABILITY", "CURAND_CACHE", "CUDASetupError", "CUDARunError",
           "nvcc_release", "has_curand", "find_curand", "gpu_present", "configure_brian2cuda",
           "run_on_cuda"]

#: Compute capability compiled for unless told otherwise (H100 / H200).
DEFAULT_COMPUTE_CAPABILITY = 9.0
#: Folder of the ``libcurand.so`` link to the ``nvidia-curand`` wheel's library.
CURAND_CACHE = Path.home() / ".cache" / "spide-brian" / "curand"

_INSTALL_CURAND = "pip install nvidia-curand (or a CUDA toolkit with cuRAND)"


class CUDASetupError(RuntimeError):
    """Something brian2cuda needs to build a program is missing (named in the message)."""


class CUDARunError(RuntimeError):
    """brian2cuda built the program, but it could not run (no usable GPU)."""


def nvcc_release(nvcc=None):
    """CUDA release of ``nvcc`` as a float (``13.0``), or None without ``nvcc``.

    >>> nvcc_release("/nonexistent/nvcc") is None
    True
    """
    nvcc = nvcc or shutil.which("nvcc")
    if not nvcc or not os.path.exists(nvcc):
        return None
    output = subprocess.run([nvcc, "--version"], capture_output=True, text=True,
                            check=False).stdout
    match = re.search(r"release (\d+)\.(\d+)", output)
    return float(f"{match.group(1)}.{match.group(2)}") if match else None


def gpu_present():
    """Whether an NVIDIA GPU and its driver are visible (``nvidia-smi``, ``/dev/nvidia0``)."""
    return shutil.which("nvidia-smi") is not None and os.path.exists("/dev/nvidia0")


def _cuda_roots(nvcc=None):
    """Candidate CUDA toolkit folders (``nvcc`` may be a wrapper outside the toolkit)."""
    nvcc = nvcc or shutil.which("nvcc")
    roots = [os.environ.get("CUDA_PATH"), "/usr/local/cuda"]
    if nvcc:
        roots.insert(1, str(Path(os.path.realpath(nvcc)).parent.parent))
    return [Path(root) for root in roots if root and os.path.isdir(root)]


def _toolkit_has_curand(root):
    headers = (root / "include" / "curand.h").is_file()
    libraries = [path for pattern in ("lib64/libcurand.so", "lib/libcurand.so",
                                      "targets/*/lib/libcurand.so")
                 for path in glob.glob(str(root / pattern))]
    return headers and bool(libraries)


def _wheel_curand():
    """``(include_dir, lib_dir, library_file)`` of an installed nvidia-curand wheel."""
    try:
        import nvidia
    except ImportError:
        return None
    for base in getattr(nvidia, "__path__", []):
        for header in sorted(glob.glob(os.path.join(base, "*", "include", "curand.h"))):
            package = os.path.dirname(os.path.dirname(header))
            libraries = sorted(glob.glob(os.path.join(package, "lib", "libcurand.so*")))
            if libraries:
                return os.path.dirname(header), os.path.dirname(libraries[0]), libraries[0]
    return None


def _curand_source(nvcc=None):
    """``'toolkit'``, the wheel's ``(include_dir, lib_dir, library_file)``, or None."""
    if any(_toolkit_has_curand(root) for root in _cuda_roots(nvcc)):
        return "toolkit"
    return _wheel_curand()


def has_curand(nvcc=None):
    """Whether cuRAND is in the CUDA toolkit or an installed nvidia-curand wheel (changes
    nothing, unlike :func:`find_curand`)."""
    return _curand_source(nvcc) is not None


def find_curand(nvcc=None, link_folder=None):
    """Where the cuRAND headers and library are for a brian2cuda build.

    Returns
    -------
    dict or None
        ``{}`` when the CUDA toolkit of ``nvcc`` has cuRAND; ``include_dirs``,
        ``library_dirs`` and ``runtime_library_dirs`` (lists of folders) for the
        nvidia-curand wheel (the link ``libcurand.so`` is made in ``link_folder``,
        default :data:`CURAND_CACHE`, when the wheel has only a versioned file); None if
        neither exists.
    """
    source = _curand_source(nvcc)
    if source is None:
        return None
    if source == "toolkit":
        return {}
    include_dir, lib_dir, library = source
    library_dirs = [lib_dir]
    if not os.path.exists(os.path.join(lib_dir, "libcurand.so")):
        folder = Path(link_folder or CURAND_CACHE)
        folder.mkdir(parents=True, exist_ok=True)
        link = folder / "libcurand.so"
        if os.path.realpath(link) != os.path.realpath(library):
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(library)
        library_dirs = [str(folder), lib_dir]
    return {"include_dirs": [include_dir], "library_dirs": library_dirs,
            "runtime_library_dirs": [lib_dir]}


def _with_cxx17(arguments):
    return [arg for arg in arguments if not arg.startswith("-std=")] + ["-std=c++17"]


def configure_brian2cuda(compute_capability=DEFAULT_COMPUTE_CAPABILITY, gpu_id=0, jobs=None):
    """Import brian2cuda (registering ``cuda_standalone``) and set its build preferences.

    Parameters
    ----------
    compute_capability : float
        GPU architecture compiled for (``9.0`` is ``-arch=sm_90``).
    gpu_id : int
        CUDA device the program runs on (``CUDA_VISIBLE_DEVICES`` still applies).
    jobs : int, optional
        Parallel compiler processes (default: one per core, unless the user set
        ``devices.cpp_standalone.extra_make_args_unix``).

    Raises
    ------
    CUDASetupError
        brian2cuda, ``nvcc`` or cuRAND is missing; the message says what to install.
    """
    try:
        import brian2cuda  # noqa: F401  (registers the cuda_standalone device)
    except ImportError as error:
        raise CUDASetupError("device 'cuda_standalone' needs brian2cuda and brian2 2.5.4: "
                             "install the cuda extra in its own environment "
                             "(pip install 'spide-brian[cuda]')") from error
    from brian2 import prefs

    nvcc = shutil.which("nvcc")
    release = nvcc_release(nvcc)
    if release is None:
        raise CUDASetupError("device 'cuda_standalone' needs nvcc (the CUDA toolkit) on PATH")
    curand = find_curand(nvcc)
    if curand is None:
        raise CUDASetupError(f"brian2cuda links cuRAND, which was not found: {_INSTALL_CURAND}")
    backend = prefs.devices.cuda_standalone.cuda_backend
    backend.detect_gpus = False
    backend.gpu_id = int(gpu_id)
    backend.compute_capability = float(compute_capability)
    backend.cuda_runtime_version = release
    backend.extra_compile_args_nvcc = _with_cxx17(backend.extra_compile_args_nvcc)
    prefs.codegen.cpp.extra_compile_args_gcc = _with_cxx17(
        prefs.codegen.cpp.extra_compile_args_gcc)
    bound_make_jobs(jobs)
    for key, folders in curand.items():
        current = list(prefs["codegen.cpp." + key])
        prefs["codegen.cpp." + key] = current + [f for f in folders if f not in current]


def run_on_cuda(network, duration, directory):
    """Build and run ``network`` under the (already selected) cuda_standalone device.

    A program that compiles but cannot start its CUDA context (no GPU, no or an old driver)
    raises :class:`CUDARunError`: one line naming the project and the reason (the program's
    own CUDA error message is printed to standard error as it runs).
    """
    try:
        network.run(duration, namespace={})
    except RuntimeError as error:
        if "Project run failed" not in str(error):
            raise
        reason = _cuda_error(directory)
        raise CUDARunError(
            f"the CUDA program was built in {directory} but could not run "
            f"({reason}); cuda_standalone needs an NVIDIA GPU and its driver") from error


def _cuda_error(directory):
    """The first line of the program's saved standard output that mentions CUDA or the GPU,
    else what is known (its CUDA errors go to standard error, shown as it runs)."""
    path = Path(directory) / "results" / "stdout.txt"
    lines = path.read_text(errors="replace").splitlines() if path.is_file() else []
    for line in lines:
        if "cuda" in line.lower() or "gpu" in line.lower():
            return line.strip()
    if not gpu_present():
        return "no GPU here: no nvidia-smi or /dev/nvidia0"
    return lines[-1].strip() if lines else "its error output is printed above"
