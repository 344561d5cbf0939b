"""The processes of a standalone build: how many compilers run at once, and that the compiler
and the simulation program end with the Python process that started them."""
from __future__ import annotations

import os
import shlex
import signal
import sys

__all__ = ["bound_make_jobs", "tie_children_to_this_process", "tied_command",
           "unguarded_commands", "restore_unguarded_commands"]


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


def tied_command(command, sig=signal.SIGKILL):
    """``command`` (an argument list) behind the guard that signals it with ``sig`` when
    this Python process ends, even by SIGKILL (Linux ``PR_SET_PDEATHSIG``).

    Start the returned list with :mod:`subprocess` from this process: the guard checks that
    its parent is this process, asks the kernel for the signal and replaces itself with
    ``command``. Elsewhere than on Linux ``command`` comes back unchanged.
    """
    command = [str(part) for part in command]
    if not sys.platform.startswith("linux"):
        return command
    return _guard_prefix(sig) + command


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


def unguarded_commands():
    """The compiler and program commands of cpp_standalone without the guard of
    :func:`tie_children_to_this_process` (the user's own, or Brian2's), by preference name:
    what another process passes to :func:`restore_unguarded_commands` before it guards them
    for itself."""
    from brian2 import prefs

    commands = {}
    for pref in (_MAKE_PREF, _RUN_PREF):
        value = prefs[pref]
        guarded = _PARENT_DEATH_GUARD in (value if isinstance(value, str) else list(value))
        commands[pref] = _UNGUARDED[pref] if guarded and pref in _UNGUARDED else value
    return commands


def restore_unguarded_commands(commands):
    """Set the commands of :func:`unguarded_commands` (from another process) as this
    process's preferences; :func:`tie_children_to_this_process` guards them again."""
    from brian2 import prefs

    for pref, value in commands.items():
        _UNGUARDED.pop(pref, None)
        prefs[pref] = value
