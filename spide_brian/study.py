"""A simulation study: a grid of training runs described in a TOML file.

A study file has three tables::

    [study]
    name = "digits-t-tb"     # a label for the study
    dataset = "digits"       # default dataset of every point
    backend = "reference"    # 'reference' (default) or 'brian'
    limit = 200              # optional: first N training and test samples
    sample = 4               # optional: a random subset of K points of the grid ...
    seed = 0                 # ... drawn with this seed (default 0)

    [base]                   # SPIDEConfig fields shared by every point
    hidden_sizes = [64]
    epochs = 2

    [axes]                   # one axis per field: a list of values or a range table
    time_step = [10, 20]
    time_step_back = {start = 20, stop = 60, step = 20}    # 20, 40, 60 (stop included)
    seed = [0, 1]

An axis (and a ``[base]`` key) is any :class:`~spide_brian.config.SPIDEConfig` field, one
of ``dataset``, ``limit`` and ``seed`` (the config's seed), or a physical option of
``spide-brian train`` given as a string with its unit (``dt``, ``membrane_tau``,
``forward_duration``, ``backward_duration``, ``refractory``, ``tau_syn``:
``membrane_tau = ["10ms", "20ms", "inf"]``, checked for their dimensions here). The grid is the product of the
axes; each point has a stable id, a short hash of its complete settings (every config
field, the dataset, the limit and the backend), so that the same point of an edited study
keeps its id and its result. Only names are checked here: a value the config refuses
(``lr = -1``) makes its own point fail when it runs, not the study.
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import numbers
import random
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .biophysics import UNIT_OPTIONS, UnitError, parse_quantity
from .config import FLOAT_FIELDS, SPIDEConfig

__all__ = ["Study", "StudyPoint", "StudyError", "load_study", "parse_study", "point_id",
           "RUN_FIELDS", "BACKENDS"]

BACKENDS = ("reference", "brian")
#: Settings of a point that are not config fields: flags of ``spide-brian train``.
RUN_FIELDS = ("dataset", "limit")
CONFIG_FIELDS = tuple(item.name for item in dataclasses.fields(SPIDEConfig))
STUDY_KEYS = ("name", "dataset", "backend", "limit", "sample", "seed")
TABLES = ("study", "base", "axes")
#: Hexadecimal digits of a point id.
ID_LENGTH = 10


class StudyError(ValueError):
    """An invalid study file; the message names the table and the key."""


@dataclass(frozen=True)
class StudyPoint:
    """One training run of a study.

    Parameters
    ----------
    id : str
        Short hash of :attr:`settings` (see :func:`point_id`).
    settings : dict
        Everything the run is given: ``backend``, ``dataset``, ``limit`` and the config
        fields set by the study's ``[base]`` and ``[axes]``.
    axes : dict
        The point's value of each axis, in the order of the study file.
    """

    id: str
    settings: dict
    axes: dict

    @property
    def config_values(self) -> dict:
        """The config fields the point sets (the defaults stand for the others)."""
        return {name: value for name, value in self.settings.items() if name in CONFIG_FIELDS}

    def train_flags(self) -> list:
        """Arguments of ``spide-brian train`` that run this point (without ``--out``)."""
        flags = ["--backend", str(self.settings["backend"]),
                 "--dataset", str(self.settings["dataset"])]
        if self.settings.get("limit") is not None:
            flags += ["--limit", str(self.settings["limit"])]
        for name in UNIT_OPTIONS:
            if self.settings.get(name) is not None:
                flags += ["--" + name.replace("_", "-"), str(self.settings[name])]
        for name, value in self.config_values.items():
            flag = "--" + name.replace("_", "-")
            if isinstance(value, bool):
                flags.append(flag if value else "--no-" + name.replace("_", "-"))
            elif isinstance(value, (list, tuple)):
                flags += [flag, *(str(item) for item in value)]
            else:
                flags += [flag, str(value)]
        return flags


@dataclass(frozen=True)
class Study:
    """A parsed study: its settings and the points of its grid (after sampling)."""

    name: str
    backend: str
    dataset: str
    limit: object
    base: dict
    axes: dict
    points: tuple = field(default=())
    grid_size: int = 0
    path: object = None


def _normalised(name, value):
    """A JSON-stable form of a setting: tuples as lists, and a number of a float field as a
    float (``lr = 1`` and ``lr = 1.0`` are the same point)."""
    if isinstance(value, (list, tuple)):
        return list(value)
    if name in FLOAT_FIELDS and isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return value


def _default_settings():
    defaults = SPIDEConfig()
    return {name: _normalised(name, getattr(defaults, name)) for name in CONFIG_FIELDS}


def point_id(settings) -> str:
    """Stable id of a point: the first hex digits of the SHA-256 of its complete settings.

    ``settings`` holds the config fields the point sets, its backend, dataset and limit;
    a field at the config's default counts as not set, so that writing a default value out
    does not change the id, and neither does a config field added later.
    """
    defaults = _default_settings()
    # only what differs from the config's defaults: a new config field (at its default)
    # leaves every id as it was
    changed = {name: _normalised(name, value) for name, value in settings.items()
               if name not in defaults or _normalised(name, value) != defaults[name]}
    text = json.dumps(changed, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:ID_LENGTH]


def _check_names(table, names, allowed, what):
    unknown = [name for name in names if name not in allowed]
    if unknown:
        raise StudyError(f"[{table}] {unknown[0]!r} is not {what}; known: "
                         f"{', '.join(allowed)}")


def _range_values(name, spec):
    """The values of a range axis ``{start, stop, step}``: ``start, start+step, ...`` up to
    and including ``stop``."""
    _check_names(f"axes.{name}", spec, ("start", "stop", "step"), "a key of a range")
    missing = [key for key in ("start", "stop", "step") if key not in spec]
    if missing:
        raise StudyError(f"[axes] range {name!r} needs start, stop and step (missing "
                         f"{', '.join(missing)})")
    start, stop, step = spec["start"], spec["stop"], spec["step"]
    for key, value in (("start", start), ("stop", stop), ("step", step)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
                not math.isfinite(value):
            raise StudyError(f"[axes] range {name!r}: {key} must be a number, got {value!r}")
    if step == 0 or (stop - start) / step < 0:
        raise StudyError(f"[axes] range {name!r}: step {step} never goes from {start} to "
                         f"{stop}")
    count = int(math.floor((stop - start) / step + 1e-9)) + 1
    integral = all(isinstance(value, int) for value in (start, stop, step))
    return [start + index * step if integral else round(start + index * step, 12)
            for index in range(count)]


def _axis_values(name, spec):
    if isinstance(spec, dict):
        return _range_values(name, spec)
    if not isinstance(spec, list) or not spec:
        raise StudyError(f"[axes] {name!r} must be a non-empty list of values or a range "
                         f"table {{start = , stop = , step = }}, got {spec!r}")
    return list(spec)


def parse_study(data, path=None) -> Study:
    """Validate the tables of a study file and expand its grid.

    Parameters
    ----------
    data : dict
        The parsed TOML document.
    path : path-like, optional
        Where it was read from (for messages).

    Raises
    ------
    StudyError
        Naming the first unknown table, key or field, or an invalid study setting.
    """
    _check_names("top level", data, TABLES, "a table of a study file")
    study = data.get("study", {})
    base = dict(data.get("base", {}))
    axes_table = data.get("axes", {})
    for table, value in (("study", study), ("base", base), ("axes", axes_table)):
        if not isinstance(value, dict):
            raise StudyError(f"[{table}] must be a table, got {value!r}")
    _check_names("study", study, STUDY_KEYS, "a study setting")
    point_fields = CONFIG_FIELDS + RUN_FIELDS + tuple(UNIT_OPTIONS)
    what = "a SPIDEConfig field, dataset, limit or a physical option (dt, membrane_tau, ...)"
    _check_names("base", base, point_fields, what)
    _check_names("axes", axes_table, point_fields, what)
    if not axes_table:
        raise StudyError("[axes] is empty: a study needs at least one axis")
    backend = study.get("backend", "reference")
    if backend not in BACKENDS:
        raise StudyError(f"[study] backend must be one of {', '.join(BACKENDS)}, got "
                         f"{backend!r}")
    dataset = base.pop("dataset", study.get("dataset", "digits"))
    limit = base.pop("limit", study.get("limit"))
    for key in ("sample", "seed"):
        value = study.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < (1 if key == "sample" else 0)):
            raise StudyError(f"[study] {key} must be a{' positive' if key == 'sample' else ''}"
                             f" integer, got {value!r}")
    axes = {name: _axis_values(name, spec) for name, spec in axes_table.items()}
    for table, values in (("base", {k: [v] for k, v in base.items()}), ("axes", axes)):
        for name in set(values) & set(UNIT_OPTIONS):
            for value in values[name]:
                try:
                    parse_quantity(value, UNIT_OPTIONS[name], name)
                except UnitError as error:
                    raise StudyError(f"[{table}] {error}") from None
    points = []
    for values in itertools.product(*axes.values()):
        chosen = dict(zip(axes, values))
        settings = {"backend": backend, "dataset": dataset, "limit": limit, **base, **chosen}
        points.append(StudyPoint(id=point_id(settings), settings=settings, axes=chosen))
    ids = [point.id for point in points]
    if len(set(ids)) != len(ids):
        raise StudyError("[axes] two points of the grid have the same settings (an axis "
                         "repeats a value)")
    grid_size = len(points)
    sample = study.get("sample")
    if sample is not None and sample < grid_size:
        chosen_indices = sorted(random.Random(study.get("seed", 0)).sample(range(grid_size),
                                                                           sample))
        points = [points[index] for index in chosen_indices]
    name = study.get("name") or (Path(path).stem if path else "study")
    return Study(name=str(name), backend=backend, dataset=dataset, limit=limit, base=base,
                 axes=axes, points=tuple(points), grid_size=grid_size, path=path)


def load_study(path) -> Study:
    """Read and parse the study file at ``path`` (see :func:`parse_study`)."""
    path = Path(path)
    try:
        with open(path, "rb") as stream:
            data = tomllib.load(stream)
    except FileNotFoundError:
        raise StudyError(f"no study file {path}") from None
    except tomllib.TOMLDecodeError as error:
        raise StudyError(f"{path} is not valid TOML: {error}") from None
    return parse_study(data, path=path)
