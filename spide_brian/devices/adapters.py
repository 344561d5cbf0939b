"""One adapter per device: what it needs on this machine, its options, how a build is selected
and run, and how its known failures read.

The trainer (:class:`spide_brian.brian_backend.BrianTrainer`), the command line and
``spide-brian info`` talk to a device only through its adapter and its row of the
capability table (:mod:`spide_brian.devices.table`); none of them compares device
names. Adding a device is one adapter here and one row there.

An adapter answers:

``missing()``
    reasons why the device cannot run here (an empty list when it can);
``check_installed()``
    raise at once, with the install command, when a package the device needs is missing;
``prepare_runtime()``
    settings of a runtime device before its objects are built (the code-generation target);
``select_build(directory)``
    ``set_device`` for one build in ``directory``; returns ``run(network, duration,
    directory)``, which turns the device's known failures into one-line errors;
``select_rerunnable()`` and ``rerun(run_args)``
    ``set_device`` for a program that is built once, and one rerun of it with new values;
``options``
    its :class:`DeviceOption` s: command-line flags and the trainer keywords they set.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass, field

from .table import CAPABILITIES, DEVICE_ALIASES, capabilities
from .cuda import (DEFAULT_COMPUTE_CAPABILITY, CUDARunError, CUDASetupError,
                   configure_brian2cuda, gpu_present, has_curand, run_on_cuda)
from .genn import GeNNNotFoundError, run_on_genn
from .processes import bound_make_jobs, tie_children_to_this_process

__all__ = ["DeviceOption", "DeviceAdapter", "ADAPTERS", "adapter_for", "device_status",
           "device_options", "DEVICE_ERRORS"]

#: Errors of the devices that carry a one-line message for the user.
DEVICE_ERRORS = (GeNNNotFoundError, CUDASetupError, CUDARunError)


@dataclass(frozen=True)
class DeviceOption:
    """A device's option: the command-line flag and the trainer keyword it sets.

    ``flag_value`` turns the parsed flag into the keyword's value; a flag left at its
    default (``None`` or ``False``) sets nothing.
    """

    flag: str
    keyword: str
    help: str
    kind: type = None
    metavar: str = None
    flag_value: object = None

    @property
    def dest(self):
        """The argparse attribute of the flag."""
        return self.flag.lstrip("-").replace("-", "_")

    def add_to(self, group):
        """Add the flag to an argparse group."""
        if self.kind is bool:
            group.add_argument(self.flag, action="store_true", help=self.help)
        else:
            group.add_argument(self.flag, type=self.kind, default=None, metavar=self.metavar,
                               help=self.help)

    def value(self, given):
        return self.flag_value(given) if self.flag_value else given


def _has_module(name):
    return importlib.util.find_spec(name) is not None


def _compiler():
    return shutil.which("g++") or shutil.which("c++")


def _network_run(network, duration, directory):
    network.run(duration, namespace={})


@dataclass
class DeviceAdapter:
    """The numpy runtime target; the base of every adapter."""

    name = "numpy"
    title = "numpy runtime target"
    options_declared = ()
    settings: dict = field(default_factory=dict)

    def __post_init__(self):
        known = {option.keyword for option in self.options_declared}
        unknown = set(self.settings) - known
        if unknown:
            raise ValueError(f"device {self.name!r} takes no option "
                             f"{', '.join(sorted(unknown))}"
                             + (f" (its options: {', '.join(sorted(known))})" if known else ""))

    @property
    def caps(self):
        return capabilities(self.name)

    def missing(self):
        return []

    def check_installed(self):
        """Raise ``NotImplementedError`` naming the install step if a package is missing."""

    def prepare_runtime(self):
        from brian2 import prefs

        prefs.codegen.target = self.caps.codegen_target

    def select_build(self, directory):
        raise NotImplementedError(f"device {self.name!r} builds no standalone program")

    def select_rerunnable(self):
        raise NotImplementedError(f"device {self.name!r} cannot rerun a compiled program")

    def rerun(self, run_args):
        raise NotImplementedError(f"device {self.name!r} cannot rerun a compiled program")


class CythonAdapter(DeviceAdapter):
    name = "cython"
    title = "cython runtime target"

    def missing(self):
        missing = [] if _compiler() else ["no C++ compiler (install g++)"]
        if not _has_module("Cython"):
            missing.append("Cython is not installed (pip install cython)")
        return missing


class CppStandaloneAdapter(DeviceAdapter):
    name = "cpp_standalone"
    title = "C++ standalone program"

    def missing(self):
        return [] if _compiler() else ["no C++ compiler (install g++)"]

    def select_build(self, directory):
        from brian2 import set_device

        bound_make_jobs()
        tie_children_to_this_process()
        set_device(self.name, directory=directory)
        return _network_run

    def select_rerunnable(self):
        from brian2 import device, set_device

        bound_make_jobs()
        tie_children_to_this_process()
        set_device(self.name, build_on_run=False)
        device.activate(build_on_run=False)

    def rerun(self, run_args):
        from brian2 import device

        tie_children_to_this_process()
        device.run(run_args=run_args, with_output=False)


class GeNNAdapter(DeviceAdapter):
    name = "genn"
    title = "GeNN device (--device genn)"
    options_declared = (
        DeviceOption("--genn-cpu-only", "use_gpu", "use GeNN's single-threaded CPU backend "
                     "instead of the GPU", kind=bool, flag_value=lambda given: not given),
        DeviceOption("--genn-path", "genn_path",
                     "GeNN 4.x source tree (default: the GENN_PATH variable)", kind=str),
    )

    def missing(self):
        missing = [] if _compiler() else ["no C++ compiler (install g++)"]
        if not _has_module("brian2genn"):
            missing.append("brian2genn is not installed (pip install 'spide-brian[genn]')")
        genn_path = self.settings.get("genn_path") or os.environ.get("GENN_PATH")
        if not genn_path or not os.path.isdir(os.path.join(genn_path, "bin")):
            missing.append("no GeNN 4.x tree at GENN_PATH")
        if self.settings.get("use_gpu", True) and not gpu_present():
            missing.append("no GPU (--genn-cpu-only runs GeNN's CPU backend)")
        return missing

    def check_installed(self):
        try:
            import brian2genn  # noqa: F401  (registers the genn device)
        except ImportError as error:
            raise NotImplementedError(
                "device 'genn' needs brian2genn and brian2 2.5.x: install the genn "
                "extra in its own environment (pip install 'spide-brian[genn]')") from error

    def select_build(self, directory):
        from brian2 import prefs, set_device

        if self.settings.get("genn_path"):
            prefs.devices.genn.path = self.settings["genn_path"]
        set_device(self.name, use_GPU=bool(self.settings.get("use_gpu", True)),
                   directory=directory)
        return run_on_genn


class CUDAAdapter(DeviceAdapter):
    name = "cuda_standalone"
    title = "CUDA device (--device cuda_standalone, brian2cuda)"
    options_declared = (
        DeviceOption("--cuda-compute-capability", "compute_capability",
                     "GPU architecture to compile for, e.g. 8.0 (A100), 8.9 (L4), 9.0 "
                     f"(H100/H200) (default: {DEFAULT_COMPUTE_CAPABILITY})", kind=float,
                     metavar="X.Y"),
    )

    @property
    def compute_capability(self):
        return float(self.settings.get("compute_capability") or DEFAULT_COMPUTE_CAPABILITY)

    def missing(self):
        missing = [] if _compiler() else ["no C++ compiler (install g++)"]
        if not _has_module("brian2cuda"):
            missing.append("brian2cuda is not installed (pip install 'spide-brian[cuda]')")
        if not shutil.which("nvcc"):
            missing.append("no nvcc on PATH (install the CUDA toolkit)")
        elif not has_curand():
            missing.append("no cuRAND (pip install nvidia-curand)")
        if not gpu_present():
            missing.append("no GPU (nvidia-smi, /dev/nvidia0)" + (
                "; the CUDA program builds but cannot run" if not missing else ""))
        return missing

    def check_installed(self):
        configure_brian2cuda(self.compute_capability)   # missing pieces fail here

    def select_build(self, directory):
        from brian2 import set_device

        configure_brian2cuda(self.compute_capability)
        set_device(self.name, directory=directory, with_output=False)
        return run_on_cuda


#: The adapter class of every device of the capability table.
ADAPTERS = {adapter.name: adapter for adapter in (
    DeviceAdapter, CythonAdapter, CppStandaloneAdapter, GeNNAdapter, CUDAAdapter)}
assert set(ADAPTERS) == set(CAPABILITIES), "every capability row needs an adapter"


def adapter_for(device, **settings):
    """The adapter of ``device`` (``'runtime'`` means numpy) with its ``settings`` (the
    keywords of its :class:`DeviceOption` s; ``None`` values are left out)."""
    capabilities(device)            # unknown names fail here, listing the devices
    name = DEVICE_ALIASES.get(device, device)
    return ADAPTERS[name]({key: value for key, value in settings.items() if value is not None})


def device_options():
    """``[(adapter class, DeviceOption)]`` of every device that has options."""
    return [(adapter, option) for adapter in ADAPTERS.values()
            for option in adapter.options_declared]


def device_status():
    """``(name, usable, reason)`` for every device of the capability table."""
    rows = []
    for name, adapter in ADAPTERS.items():
        missing = adapter().missing()
        rows.append((name, not missing, ", ".join(missing) if missing else CAPABILITIES[name].note))
    return rows
