"""Device selection and the one capability table of the Brian2 model.

Every device difference of the model is a field of :class:`Capabilities`; the builder and
the trainer ask the table, never the device name.

========================  =======  =======  ==============  ====  ===============
capability                numpy    cython   cpp_standalone  genn  cuda_standalone
========================  =======  =======  ==============  ====  ===============
implemented               yes      yes      yes             yes   yes
slow_clock_summed         yes      yes      yes             no    yes
synaptic_rr_reads_groups  yes      yes      yes             no    yes
rerun_without_build       no       no       yes             no    no
batch_clock_update        yes      yes      yes             no    yes
event_reads_source        yes      yes      yes             no    yes
event_delivery_steps      0        0        0               1     0
step_order                Brian2   Brian2   Brian2          GeNN  Brian2
========================  =======  =======  ==============  ====  ===============

``slow_clock_summed``: per-sample constants (F x, the feedback norm) are summed once per slot
by Synapses on a slot-long clock; otherwise every step (brian2genn has a single clock).
``synaptic_rr_reads_groups``: the per-sample gradient accumulation is a synaptic
``run_regularly`` reading pre/post variables (GeNN cannot compile that; a replay window of
spike events replaces it there: :mod:`spide_brian.replay`). ``rerun_without_build``: a compiled program is run
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
On brian2 < 2.6 ``synaptic_rr_reads_groups`` is off on every device (see
:func:`capabilities`).
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

``cuda_standalone`` (brian2cuda 1.0a3, the release for brian2 2.5.4; measured without a
GPU): nvcc compiles the project of the route brian2 2.5.4 selects for a one-layer feedback
net (replay route: ``on_pre`` reading presynaptic variables, the SGD step on a mini-batch
clock, monitors on a slot clock) and also the other route (synaptic ``run_regularly``
reading pre/post variables, summed variables on slot-long clocks, ``order``). Its generated
main loop calls the code objects in Brian2's schedule (start, groups, thresholds, synapses,
resets), so events are delivered in the step of the spike.
brian2 2.5.4 has no ``run_args``: one build per run, as on genn. :mod:`spide_brian.cuda`
holds the build preferences.
"""
from __future__ import annotations

import os
import shlex
import signal
import sys
from dataclasses import dataclass, replace

__all__ = ["Capabilities", "CAPABILITIES", "capabilities", "default_device", "DEVICE_ALIASES",
           "GENN_STEP_ORDER", "bound_make_jobs", "tie_children_to_this_process"]


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
    event_delivery_steps: int = 0
    step_order: tuple | None = None
    codegen_target: str | None = None
    note: str = ""


#: GeNN's order of operations within one step, as a Brian2 schedule (see ``step_order``).
GENN_STEP_ORDER = ("start", "groups", "synapses", "thresholds", "resets", "end")

CAPABILITIES = {
    "numpy": Capabilities("numpy", True, False, True, True, False, True, True,
                          codegen_target="numpy", note="runtime, no compiler needed; slowest"),
    "cython": Capabilities("cython", True, False, True, True, False, True, True,
                           codegen_target="cython",
                           note="runtime, compiled per code object (cached)"),
    "cpp_standalone": Capabilities("cpp_standalone", True, True, True, True, True, True, True,
                                   note="compiled once, reruns with run_args; fastest on CPU"),
    "genn": Capabilities("genn", True, True, False, False, False, False, False,
                         event_delivery_steps=1, step_order=GENN_STEP_ORDER,
                         note="brian2genn (brian2 2.5.x stack): event-driven gradients "
                              "(spide_brian.replay), one build per run"),
    "cuda_standalone": Capabilities("cuda_standalone", True, True, True, True, False, True, True,
                                    note="brian2cuda (brian2 2.5.4 stack): nvcc build per run, "
                                         "needs an NVIDIA GPU to run"),
}

DEVICE_ALIASES = {"runtime": "numpy"}


def capabilities(device: str) -> Capabilities:
    """Capabilities of ``device`` (``'runtime'`` means the numpy target)."""
    name = DEVICE_ALIASES.get(device, device)
    if name not in CAPABILITIES:
        raise ValueError(f"unknown device {device!r}; choose one of "
                         f"{', '.join(list(CAPABILITIES) + list(DEVICE_ALIASES))}")
    caps = CAPABILITIES[name]
    if caps.synaptic_rr_reads_groups and not _brian2_at_least(2, 6):
        # measured: on brian2 2.5.4 the per-sample synaptic run_regularly reading pre/post
        # variables gives wrong gradients (numpy target); the replay route is exact there
        caps = replace(caps, synaptic_rr_reads_groups=False)
    if not caps.implemented:
        raise NotImplementedError(f"device {name!r} is not supported yet ({caps.note}); use "
                                  "cpp_standalone, cython or numpy")
    return caps


def _brian2_at_least(major, minor):
    import brian2
    version = tuple(int(part) for part in brian2.__version__.split(".")[:2])
    return version >= (major, minor)


def bound_make_jobs(jobs=None):
    """Compile standalone projects with ``jobs`` make jobs (default: one per CPU core)
    instead of Brian2's default unbounded ``-j``, which starts every compiler at once. A
    user's own setting is kept unless ``jobs`` is given."""
    from brian2 import prefs

    pref = "devices.cpp_standalone.extra_make_args_unix"
    if jobs is not None or list(prefs[pref]) == ["-j"]:
        prefs[pref] = [f"-j{int(jobs or os.cpu_count() or 1)}"]


#: Runs a command after asking the kernel to send it ``argv[1]`` when its parent (this Python
#: process, pid ``argv[2]``) ends (Linux ``PR_SET_PDEATHSIG``, kept across ``exec``); exits at
#: once if the parent already ended before the request was in place.
_PARENT_DEATH_GUARD = (
    "import ctypes, os, sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, int(sys.argv[1]), 0, 0, 0)\n"
    "if os.getppid() != int(sys.argv[2]):\n"
    "    sys.exit(1)\n"
    "os.execvp(sys.argv[3], sys.argv[3:])\n")
_MAKE_PREF = "devices.cpp_standalone.make_cmd_unix"
_RUN_PREF = "devices.cpp_standalone.run_cmd_unix"
#: The user's commands before the guard was put in front of them.
_UNGUARDED = {}


def _guard_prefix(sig):
    return [sys.executable, "-I", "-c", _PARENT_DEATH_GUARD, str(int(sig)), str(os.getpid())]


def tie_children_to_this_process():
    """Make the compiler (``make``) and the simulation program (``./main``) of a
    cpp_standalone project end when this Python process ends, even by SIGKILL.

    Brian2 starts ``make`` with ``os.system`` and the program with ``subprocess.call``; both
    commands are preferences (``devices.cpp_standalone.make_cmd_unix``, ``run_cmd_unix``).
    This puts a small guard in front of each that asks the kernel to signal the command when
    its parent ends: ``make`` gets SIGTERM (it passes it on to the compilers it runs and
    removes half-written targets), the program SIGKILL. ``make`` runs through ``sh -c``, so
    its command starts with ``exec`` to keep this process its parent. The guard reads this
    process's id, so call this before every build and run (it is cheap). Linux only; a no-op
    elsewhere. The user's own commands are kept behind the guard.
    """
    if not sys.platform.startswith("linux"):
        return
    from brian2 import prefs

    make_cmd = prefs[_MAKE_PREF]
    if _PARENT_DEATH_GUARD not in make_cmd:
        _UNGUARDED[_MAKE_PREF] = make_cmd
    make_prefix = " ".join(shlex.quote(part) for part in _guard_prefix(signal.SIGTERM))
    prefs[_MAKE_PREF] = f"exec {make_prefix} {_UNGUARDED.get(_MAKE_PREF, 'make')}"

    run_cmd = prefs[_RUN_PREF]
    run_cmd = [run_cmd] if isinstance(run_cmd, str) else list(run_cmd)
    if _PARENT_DEATH_GUARD not in run_cmd:
        _UNGUARDED[_RUN_PREF] = run_cmd
    prefs[_RUN_PREF] = _guard_prefix(signal.SIGKILL) + list(_UNGUARDED.get(_RUN_PREF, ["./main"]))


def default_device() -> str:
    """The fastest usable device: cpp_standalone when a C++ compiler is present, else numpy."""
    import shutil
    return "cpp_standalone" if shutil.which("g++") or shutil.which("c++") else "numpy"
