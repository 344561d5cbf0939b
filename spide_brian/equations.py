"""Loading and specialising the model text in ``equations/``.

Every piece of the model (forward neuron, ternary couple halves, connections, plasticity,
readout, input, feedback norm, the per-sample slot) is a text file ``equations/<piece>.eq``
made of a header comment and sections::

    # what the file models, docs/method.md section, meaning of the variables
    [model]
    v : 1      # Brian2 equations (comments allowed)
    [every_step]
    v = lam*v + I_syn      # Brian2 abstract code

Two macros keep the pieces short and shared:

``SLOT_TIME`` (a line of a model section)
    replaced by the ``[slot_time]`` subexpressions of ``schedule.eq``;
``SGD(weight, accumulator, buffer)`` and ``PROJECT(weight, scale)`` (lines of statements)
    replaced by the ``[sgd]`` and ``[project]`` sections of ``plasticity.eq`` with the names
    substituted (:func:`brian2.utils.stringtools.word_substitute`).

Numbers never enter the text: parameters are ``(shared, constant)`` variables or namespace
constants supplied by :mod:`spide_brian.network`.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

from brian2 import Equations
from brian2.utils.stringtools import word_substitute

__all__ = ["equations_dir", "load_sections", "model_equations", "slot_time_names", "statements"]

#: Names of the optimiser constants inside Synapses (they may not shadow pre/post names).
SYNAPTIC_HYPERPARAMETERS = {"momentum": "momentum_syn", "weight_decay": "weight_decay_syn"}

_SECTION = re.compile(r"^\[(\w+)\]\s*$")
_MACRO = re.compile(r"^(SGD|PROJECT)\(([^)]*)\)\s*$")


def equations_dir() -> Path:
    """Folder holding the ``.eq`` files: the source tree's ``equations/`` or the installed copy.

    The installed copy is looked for in ``spide_brian/equations_data``.
    """
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "equations", here / "equations_data"):
        if (candidate / "forward_neuron.eq").is_file():
            return candidate
    raise FileNotFoundError(
        f"the model equations (forward_neuron.eq ...) are neither in {here.parent / 'equations'} "
        f"nor in {here / 'equations_data'}; reinstall spide-brian")


@functools.lru_cache(maxsize=None)
def load_sections(piece: str) -> dict:
    """Sections of ``equations/<piece>.eq`` as ``{name: text}`` (the header is ``'header'``)."""
    path = equations_dir() / f"{piece}.eq"
    sections = {"header": []}
    current = "header"
    for line in path.read_text().splitlines():
        match = _SECTION.match(line)
        if match:
            current = match.group(1)
            if current in sections:
                raise ValueError(f"{path}: section [{current}] appears twice")
            sections[current] = []
            continue
        sections[current].append(line)
    return {name: "\n".join(lines).strip("\n") for name, lines in sections.items()}


def _section(piece, section):
    sections = load_sections(piece)
    if section not in sections:
        raise KeyError(f"{piece}.eq has no section [{section}] (has: {', '.join(sections)})")
    return sections[section]


def _strip_comment(line):
    return line.split("#", 1)[0].rstrip()


def model_equations(piece: str, section: str = "model", **substitutions) -> Equations:
    """Brian2 :class:`~brian2.equations.equations.Equations` of a model section.

    ``SLOT_TIME`` is expanded; ``substitutions`` are passed to ``Equations`` (Brian2's
    specialisation by renaming or fixing a name).
    """
    lines = []
    for line in _section(piece, section).splitlines():
        if line.strip() == "SLOT_TIME":
            lines.extend(_section("schedule", "slot_time").splitlines())
        else:
            lines.append(line)
    return Equations("\n".join(lines), **substitutions)


@functools.lru_cache(maxsize=None)
def slot_time_names() -> frozenset:
    """Names of the ``[slot_time]`` subexpressions of ``schedule.eq`` (the step and phase
    of the per-sample slot, computed from ``t``)."""
    return frozenset(Equations(_section("schedule", "slot_time")).names)


def statements(piece: str, section: str, **names) -> str:
    """Abstract code of a statement section, comments removed and macros expanded.

    ``names`` renames identifiers (word substitution), e.g. ``w='weight'``.
    """
    out = []
    for raw in _section(piece, section).splitlines():
        line = _strip_comment(raw)
        if not line.strip():
            continue
        macro = _MACRO.match(line.strip())
        if macro:
            out.append(_expand_macro(macro.group(1), macro.group(2)))
        else:
            out.append(line.strip())
    code = "\n".join(out)
    return word_substitute(code, names) if names else code


def _expand_macro(kind, arguments):
    args = [a.strip() for a in arguments.split(",")]
    if kind == "SGD":
        if len(args) != 3:
            raise ValueError(f"SGD(weight, accumulator, buffer) needs 3 names, got {arguments!r}")
        mapping = dict(zip(("WEIGHT", "ACCUMULATOR", "BUFFER"), args))
        return statements("plasticity", "sgd", **mapping)
    if len(args) != 2:
        raise ValueError(f"PROJECT(weight, scale) needs 2 names, got {arguments!r}")
    return statements("plasticity", "project", WEIGHT=args[0], FRO_SCALE=args[1])


def learning_code(piece: str, accumulate: str, divide_by: str | None = None,
                  project: str | None = None, part: str = "both") -> str:
    """Per-sample code of a synaptic weight copy: accumulate, (project), SGD step.

    Parameters
    ----------
    piece, accumulate : str
        File and section of the gradient accumulation (``grad = grad + ...``).
    divide_by : str, optional
        Name of the scale dividing the accumulated sum (``reset_amount_syn`` = V for spiking
        layers; none for the readout).
    project : str, optional
        Name of the feedback scale variable (``fro_scale_post``) for feedback copies.
    part : {'both', 'accumulate', 'update'}
        ``'accumulate'`` gives the accumulation alone (run every slot), ``'update'`` the
        projection and SGD step alone (run where a mini-batch may end, after the
        accumulation), ``'both'`` the two in sequence.
    """
    if part not in ("both", "accumulate", "update"):
        raise ValueError(f"part must be 'both', 'accumulate' or 'update', not {part!r}")
    lines = []
    if part in ("both", "accumulate"):
        lines.append(statements(piece, accumulate))
    if part in ("both", "update"):
        lines += ["update_now = update_flag(t)",
                  f"gradient = grad/{divide_by}" if divide_by else "gradient = grad"]
        if project:
            lines.append(_expand_macro("PROJECT", f"w, {project}"))
        sgd = _expand_macro("SGD", "w, grad, momentum_buffer")
        lines.append(word_substitute(sgd, SYNAPTIC_HYPERPARAMETERS))
    return "\n".join(lines)
