"""Device selection and the one capability table of the Brian2 model.

Every device difference of the model is a field of :class:`Capabilities`; the builder and
the trainer ask the table, never the device name.

========================  =======  =======  ==============  ====  ===============
capability                numpy    cython   cpp_standalone  genn  cuda_standalone
========================  =======  =======  ==============  ====  ===============
implemented               yes      yes      yes             no    no
slow_clock_summed         yes      yes      yes             no    yes
synaptic_rr_reads_groups  yes      yes      yes             no    yes
rerun_without_build       no       no       yes             no    yes
batch_clock_update        yes      yes      yes             no    yes
event_reads_source        yes      yes      yes             no    yes
========================  =======  =======  ==============  ====  ===============

``slow_clock_summed``: per-sample constants (F x, the feedback norm) are summed once per slot
by Synapses on a slot-long clock; otherwise every step (brian2genn has a single clock).
``synaptic_rr_reads_groups``: the per-sample gradient accumulation is a synaptic
``run_regularly`` reading pre/post variables (GeNN cannot compile that; a replay window of
spike events is the planned replacement). ``rerun_without_build``: a compiled program is run
again with new weights and data (``device.run(run_args=...)``).
``batch_clock_update``: the SGD step of the weight copies is a second synaptic
``run_regularly`` on a mini-batch-long clock, ordered after the per-slot accumulation
(``order``, which brian2genn does not accept); otherwise the accumulation and the SGD step
run together every slot, the step multiplied by the update flag. Used when a run holds whole
mini-batches (capacity a multiple of B; :class:`~spide_brian.schedule.SampleTables` puts the
update of a short last mini-batch at the end of its padded slot range).
``event_reads_source``: an ``on_pre`` statement may read presynaptic variables (brian2genn
forbids it). The gradient current ``g = W_c^T error`` is then delivered once per sample by
one event of each output neuron at the error step; otherwise it is a summed variable
recomputed every step.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Capabilities", "CAPABILITIES", "capabilities", "default_device", "DEVICE_ALIASES"]


@dataclass(frozen=True)
class Capabilities:
    name: str
    implemented: bool
    standalone: bool
    slow_clock_summed: bool
    synaptic_rr_reads_groups: bool
    rerun_without_build: bool
    batch_clock_update: bool
    event_reads_source: bool
    codegen_target: str | None = None
    note: str = ""


CAPABILITIES = {
    "numpy": Capabilities("numpy", True, False, True, True, False, True, True,
                          codegen_target="numpy", note="runtime, no compiler needed; slowest"),
    "cython": Capabilities("cython", True, False, True, True, False, True, True,
                           codegen_target="cython",
                           note="runtime, compiled per code object (cached)"),
    "cpp_standalone": Capabilities("cpp_standalone", True, True, True, True, True, True, True,
                                   note="compiled once, reruns with run_args; fastest on CPU"),
    "genn": Capabilities("genn", False, True, False, False, False, False, False,
                         note="planned (brian2genn, brian2 2.5.x stack)"),
    "cuda_standalone": Capabilities("cuda_standalone", False, True, True, True, True, True, True,
                                    note="planned (brian2cuda)"),
}

DEVICE_ALIASES = {"runtime": "numpy"}


def capabilities(device: str) -> Capabilities:
    """Capabilities of ``device`` (``'runtime'`` means the numpy target)."""
    name = DEVICE_ALIASES.get(device, device)
    if name not in CAPABILITIES:
        raise ValueError(f"unknown device {device!r}; choose one of "
                         f"{', '.join(list(CAPABILITIES) + list(DEVICE_ALIASES))}")
    caps = CAPABILITIES[name]
    if not caps.implemented:
        raise NotImplementedError(f"device {name!r} is not supported yet ({caps.note}); use "
                                  "cpp_standalone, cython or numpy")
    return caps


def default_device() -> str:
    """The fastest usable device: cpp_standalone when a C++ compiler is present, else numpy."""
    import shutil
    return "cpp_standalone" if shutil.which("g++") or shutil.which("c++") else "numpy"
