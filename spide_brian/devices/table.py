"""The one capability table of the Brian2 model (what the model may use on each device).

Every device difference of the model is a field of :class:`Capabilities`; the builder and
the trainer ask the table, never the device name.

========================  =======  =======  ==============  ====  ===============
capability                numpy    cython   cpp_standalone  genn  cuda_standalone
========================  =======  =======  ==============  ====  ===============
slow_clock_summed         yes      yes      yes             no    yes
synaptic_rr_reads_groups  yes      yes      yes             no    yes
rerun_without_build       no       no       yes             no    no
batch_clock_update        yes      yes      yes             no    yes
event_reads_source        yes      yes      yes             no    yes
shared_parameters         yes      yes      yes             no    no
event_writes_two_targets  yes      yes      yes             no    yes
membrane_in_volts         yes      yes      yes             no    no
event_delivery_steps      0        0        0               1     0
step_order                Brian2   Brian2   Brian2          GeNN  Brian2
========================  =======  =======  ==============  ====  ===============

``slow_clock_summed``: per-sample constants (F x, the feedback norm) are summed once per slot
by Synapses on a slot-long clock; otherwise every step (brian2genn has a single clock).
``synaptic_rr_reads_groups``: the per-sample gradient accumulation is a synaptic
``run_regularly`` reading pre/post variables (GeNN cannot compile that; a replay window of
spike events replaces it there: the replay route of :mod:`spide_brian.routes`).
``rerun_without_build``: a compiled program is run again with new weights and data (``device.run(run_args=...)``).
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
On brian2 < 2.6 ``synaptic_rr_reads_groups`` is off on every device (see
:func:`capabilities`).
``shared_parameters``: a parameter used by many synapses or neurons (a convolution's kernel
element, a channel's bias) is held once by a parameter group and read through linked
variables indexed by a synaptic variable; its gradient is gathered by a summed variable
moved to the commit step (:mod:`spide_brian.sharing`). brian2genn has no linked variables;
on brian2cuda the construction has not been built yet, so it is refused there. Needs the
direct route (off on brian2 < 2.6, as ``synaptic_rr_reads_groups``).
``event_writes_two_targets``: one ``on_pre`` may write two postsynaptic variables (a
conductance synapse opens the excitatory or the inhibitory conductance of its target,
docs/biophysics.md B5); brian2genn allows one ``+=`` per event, so conductances are refused
on genn.
``membrane_in_volts``: the neurons' membranes as Brian2 differential equations in volts
(``--membrane volts``, docs/biophysics.md B8): the state updater integrates over one model
step, so a model step must be one device step (not GeNN, whose model steps are two), and the
equations are read in the direct route's slot code (off on brian2 < 2.6 with it; the
brian2cuda stack is 2.5.4). Elsewhere the discrete membrane is the same model.
``event_delivery_steps``: the device step, counted from a spike's own step, in which its
synaptic events are applied: 0 under Brian2's schedule (after the thresholds of the same
step), 1 on GeNN (in the neuron update of the next step, after that step's host-side
``run_regularly``). A model step lasts ``1 + event_delivery_steps`` device steps
(:mod:`spide_brian.schedule`): its updates and thresholds run at the first, the events of
its spikes are applied before the next model step, so every spike hop takes one model step
on every device, as in the numpy reference (``timing='brian'``).
``step_order``: the order of operations within one device step, as a Brian2 network
schedule (``None``: Brian2's default, ``start, groups, thresholds, synapses, resets,
end``). GeNN's is ``start, groups, synapses, thresholds, resets, end``: brian2genn runs the
``run_regularly`` operations on the host, then GeNN's synapse update computes the summed
variables and delivers the events of the previous step's spikes, then its neuron update
applies them and tests the thresholds. A runtime target run with this schedule and GeNN's
other fields reproduces GeNN's spike counts (used by the tests; brian2genn itself accepts
no custom schedule).

``cuda_standalone`` has the full row: nvcc compiles both routes of the model, and the
generated program keeps Brian2's schedule, so events are delivered in the step of the
spike; without ``run_args`` on its Brian2 it builds one program per run, as genn does. The
measurements behind every row, with their versions and dates, are in ``docs/devices.md``;
:mod:`spide_brian.devices.cuda` holds brian2cuda's build preferences.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, replace

__all__ = ["Capabilities", "CAPABILITIES", "capabilities", "default_device", "DEVICE_ALIASES",
           "GENN_STEP_ORDER", "brian2_at_least", "check_membrane", "check_synapses",
           "OPTION_CAPABILITIES", "refused_options"]


@dataclass(frozen=True)
class Capabilities:
    """What the model may use on one device (the fields are explained above)."""

    name: str
    standalone: bool
    slow_clock_summed: bool
    synaptic_rr_reads_groups: bool
    rerun_without_build: bool
    batch_clock_update: bool
    event_reads_source: bool
    shared_parameters: bool = False
    event_writes_two_targets: bool = True
    membrane_in_volts: bool = False
    event_delivery_steps: int = 0
    step_order: tuple | None = None
    codegen_target: str | None = None
    note: str = ""


#: GeNN's order of operations within one step, as a Brian2 schedule (see ``step_order``).
GENN_STEP_ORDER = ("start", "groups", "synapses", "thresholds", "resets", "end")

#: What every construct of the model needs, as on Brian2's own devices.
_FULL = dict(slow_clock_summed=True, synaptic_rr_reads_groups=True, batch_clock_update=True,
             event_reads_source=True, shared_parameters=True, membrane_in_volts=True)

CAPABILITIES = {
    "numpy": Capabilities("numpy", standalone=False, rerun_without_build=False,
                          codegen_target="numpy", note="runtime, no compiler needed; slowest",
                          **_FULL),
    "cython": Capabilities("cython", standalone=False, rerun_without_build=False,
                           codegen_target="cython",
                           note="runtime, compiled per code object (cached)", **_FULL),
    "cpp_standalone": Capabilities("cpp_standalone", standalone=True, rerun_without_build=True,
                                   note="compiled once, reruns with run_args; fastest on CPU",
                                   **_FULL),
    "genn": Capabilities("genn", standalone=True, slow_clock_summed=False,
                         synaptic_rr_reads_groups=False, rerun_without_build=False,
                         batch_clock_update=False, event_reads_source=False,
                         event_writes_two_targets=False,
                         event_delivery_steps=1, step_order=GENN_STEP_ORDER,
                         note="brian2genn (brian2 2.5.x stack): event-driven gradients "
                              "(the replay route of spide_brian.routes), one build per run"),
    "cuda_standalone": Capabilities("cuda_standalone", standalone=True,
                                    rerun_without_build=False,
                                    note="brian2cuda (brian2 2.5.4 stack): nvcc build per run, "
                                         "needs an NVIDIA GPU to run",
                                    **dict(_FULL, shared_parameters=False,
                                           membrane_in_volts=False)),
}

DEVICE_ALIASES = {"runtime": "numpy"}


def capabilities(device: str) -> Capabilities:
    """Capabilities of ``device`` (``'runtime'`` means the numpy target)."""
    name = DEVICE_ALIASES.get(device, device)
    if name not in CAPABILITIES:
        raise ValueError(f"unknown device {device!r}; choose one of "
                         f"{', '.join(list(CAPABILITIES) + list(DEVICE_ALIASES))}")
    caps = CAPABILITIES[name]
    if caps.synaptic_rr_reads_groups and not brian2_at_least(2, 6):
        # measured: on brian2 2.5.4 the per-sample synaptic run_regularly reading pre/post
        # variables gives wrong gradients (numpy target); the replay route is exact there
        caps = replace(caps, synaptic_rr_reads_groups=False, shared_parameters=False,
                       membrane_in_volts=False)
    return caps


def check_synapses(caps, config):
    """Raise a ``ValueError`` naming the fix where the device ``caps`` cannot build the
    synapses of ``config`` (conductances need ``event_writes_two_targets``)."""
    if config.synapse == "conductance" and not caps.event_writes_two_targets:
        raise ValueError(
            f"conductance synapses open one of two conductances per spike, which the "
            f"{caps.name} device cannot write from one event (capability "
            "event_writes_two_targets); use numpy, cython or cpp_standalone, or --backend "
            "reference")


#: The capabilities without which a device refuses an option of ``train``, and that option.
OPTION_CAPABILITIES = {
    "shared_parameters": "convolutional and locally connected models (--model)",
    "synaptic_rr_reads_groups": "--dropout",
    "event_writes_two_targets": "--synapse conductance",
    "membrane_in_volts": "--membrane volts",
}


def refused_options(caps):
    """The options of ``train`` that the device ``caps`` refuses, one per missing
    capability of :data:`OPTION_CAPABILITIES`."""
    return [option for field, option in OPTION_CAPABILITIES.items()
            if not getattr(caps, field)]


def check_membrane(caps, membrane):
    """Raise a ``ValueError`` naming the fix where the device ``caps`` cannot build the
    ``membrane`` (``'discrete'`` or ``'volts'``; volts need ``membrane_in_volts``)."""
    if membrane == "volts" and not caps.membrane_in_volts:
        raise ValueError(
            f"the membrane in volts is not built on the {caps.name} device (capability "
            "membrane_in_volts: one device step per model step, the direct route, Brian2 "
            ">= 2.6); use numpy, cython or cpp_standalone, or --membrane discrete (the same "
            "model)")


def brian2_at_least(major, minor):
    """Whether the installed Brian2 is version ``major.minor`` or newer."""
    import brian2
    version = tuple(int(part) for part in brian2.__version__.split(".")[:2])
    return version >= (major, minor)


def default_device() -> str:
    """The fastest usable device: cpp_standalone when a C++ compiler is present, else numpy."""
    return "cpp_standalone" if shutil.which("g++") or shutil.which("c++") else "numpy"
