"""The report of a study folder: accuracy against each axis, seeds aggregated.

``spide-brian sweep --report STUDY_DIR`` reads ``STUDY_DIR/results.csv`` and the copy of the
study file next to it (``STUDY_DIR/study.toml``, written by the sweep), and writes

* ``report.json``: the counts of points by status, for every axis and each of its values the
  mean, sample standard deviation, minimum, maximum and number of finished points of the
  final and the best test accuracy (over all other axes and the seeds), the configurations
  (the points without their seed) ranked by their mean final test accuracy over seeds, and
  the errors of the failed points;
* ``report.png``: one panel per axis (the seed axis only when it is the only one), the mean
  final and best test accuracy against the axis value, with the standard deviation as error
  bars and every finished point as a dot.

Only rows of points in the current study file count (a results table keeps rows of points
an edited study no longer has).
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from .study import StudyError, load_study
from .sweep import RESULTS_NAME, STUDY_COPY_NAME, table_cell as _cell

__all__ = ["ReportError", "study_report", "write_report", "format_report",
           "REPORT_NAME"]

REPORT_NAME = "report"
METRICS = ("test_accuracy", "best_test_accuracy")
SEED_AXIS = "seed"


class ReportError(ValueError):
    """A study folder that cannot be reported on; the message names the file and the fix."""


def _number(text):
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _statistics(values):
    """``mean, std (ddof 1; 0 for one value), min, max, n`` of a list of floats."""
    if not values:
        return {"mean": None, "std": None, "min": None, "max": None, "n": 0}
    array = np.asarray(values, dtype=float)
    return {"mean": float(array.mean()),
            "std": float(array.std(ddof=1)) if len(array) > 1 else 0.0,
            "min": float(array.min()), "max": float(array.max()), "n": int(len(array))}


def _read_rows(path):
    try:
        with open(path, newline="", encoding="utf-8") as stream:
            reader = csv.DictReader(stream)
            if not reader.fieldnames or "point" not in reader.fieldnames \
                    or "status" not in reader.fieldnames:
                raise ReportError(f"{path} is not a results table of a sweep (it has no "
                                  "'point' and 'status' columns)")
            return list(reader)
    except FileNotFoundError:
        raise ReportError(f"no {RESULTS_NAME} in {Path(path).parent}: run the study first "
                          "(spide-brian sweep STUDY.toml --out STUDY_DIR)") from None
    except (UnicodeDecodeError, csv.Error) as error:
        raise ReportError(f"{path} cannot be read as CSV ({error}); it is corrupt") from None


def study_report(folder):
    """The summary of the study in ``folder`` (see the module docstring) as a dict.

    Raises
    ------
    ReportError
        If the folder has no results table or no study file, or either is unreadable.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ReportError(f"no study folder {folder}")
    try:
        study = load_study(folder / STUDY_COPY_NAME)
    except StudyError as error:
        raise ReportError(f"{error} (the sweep keeps a copy of the study file in its "
                          f"folder as {STUDY_COPY_NAME}; copy the study file there)") from None
    rows = {row["point"]: row for row in _read_rows(folder / RESULTS_NAME)}
    points = [(point, rows.get(point.id)) for point in study.points]
    done = [(point, row) for point, row in points if row and row["status"] == "done"]
    failed = [(point, row) for point, row in points if row and row["status"] == "failed"]

    def metric_values(selected):
        return {metric: [value for value in (_number(row.get(metric)) for _, row in selected)
                         if value is not None] for metric in METRICS}

    axes = {}
    for name, values in study.axes.items():
        entries = []
        for value in values:
            selected = [(p, r) for p, r in done if _cell(p.axes[name]) == _cell(value)]
            measured = metric_values(selected)
            entries.append({"value": value, **{m: _statistics(measured[m]) for m in METRICS},
                            "accuracies": measured["test_accuracy"]})
        axes[name] = entries

    configurations = {}
    for point, row in done:
        key = tuple((n, _cell(v)) for n, v in point.axes.items() if n != SEED_AXIS)
        entry = configurations.setdefault(key, {
            "settings": {n: v for n, v in point.axes.items() if n != SEED_AXIS}, "rows": []})
        entry["rows"].append(row)
    ranked = []
    for entry in configurations.values():
        measured = metric_values([(None, row) for row in entry["rows"]])
        seconds = [v for v in (_number(row.get("seconds")) for row in entry["rows"])
                   if v is not None]
        ranked.append({"settings": entry["settings"],
                       **{m: _statistics(measured[m]) for m in METRICS},
                       "seconds": _statistics(seconds)})
    ranked.sort(key=lambda item: -(item["test_accuracy"]["mean"] or 0.0))
    return {
        "study": study.name, "folder": str(folder), "backend": study.backend,
        "dataset": study.dataset,
        "counts": {"points": len(points), "done": len(done), "failed": len(failed),
                   "pending": len(points) - len(done) - len(failed)},
        "axes": axes, "configurations": ranked,
        "failed": [{"point": p.id, "settings": p.axes, "error": r.get("error", "")}
                   for p, r in failed],
    }


def _plotted_axes(report):
    names = [name for name in report["axes"] if name != SEED_AXIS]
    return names or list(report["axes"])


def _draw(report):
    from .plotting import new_figure

    names = _plotted_axes(report)
    figure, panels = new_figure(n_columns=max(1, len(names)))
    for ax, name in zip(panels, names):
        entries = report["axes"][name]
        labels = [_cell(entry["value"]) for entry in entries]
        numeric = all(isinstance(e["value"], (int, float)) and not isinstance(e["value"], bool)
                      for e in entries)
        x = [float(e["value"]) for e in entries] if numeric else list(range(len(entries)))
        # the best series a little to the right, so that equal values stay visible
        span = (max(x) - min(x)) or 1.0
        for metric, style, label, shift in (("test_accuracy", "-o", "final", 0.0),
                                            ("best_test_accuracy", "--s", "best", 0.015)):
            mean = [np.nan if e[metric]["mean"] is None else e[metric]["mean"]
                    for e in entries]
            spread = [np.nan if e[metric]["std"] is None else e[metric]["std"]
                      for e in entries]
            ax.errorbar([p + shift * span for p in x], mean, yerr=spread, fmt=style,
                        capsize=3, markersize=4,
                        label=f"{label} test accuracy (mean ± sd)")
        for position, entry in zip(x, entries):
            ax.plot([position] * len(entry["accuracies"]), entry["accuracies"], ".",
                    color="0.45", markersize=4, zorder=3)
        ax.set_xticks(x, labels)
        ax.set_xlabel(name)
        ax.set_ylabel("test accuracy")
        ax.set_title(f"{report['study']}: {name}")
    panels[0].legend(loc="best")
    return figure


def write_report(folder, out=None):
    """Write ``report.json`` and ``report.png`` for the study in ``folder`` (or into ``out``);
    returns ``(report, png path)``."""
    from .plotting import render_figure

    report = study_report(folder)
    target = Path(out) if out is not None else Path(folder)
    png = render_figure(_draw, report, target / f"{REPORT_NAME}.png")
    return report, png


def _accuracy(statistics):
    if statistics["mean"] is None:
        return "-"
    return f"{statistics['mean']:.4f} ± {statistics['std']:.4f} (n={statistics['n']})"


def format_report(report, top=10):
    """The report as lines of text: counts, the best configurations, each axis."""
    counts = report["counts"]
    lines = [f"study {report['study']}: {counts['points']} points, {counts['done']} done, "
             f"{counts['failed']} failed, {counts['pending']} not run"]
    if report["configurations"]:
        lines.append(f"best configurations (final test accuracy over seeds; top {top}):")
        for entry in report["configurations"][:top]:
            settings = " ".join(f"{n}={_cell(v)}" for n, v in entry["settings"].items())
            lines.append(f"  {_accuracy(entry['test_accuracy'])}  best "
                         f"{_accuracy(entry['best_test_accuracy'])}  {settings or '(base)'}")
    for name, entries in report["axes"].items():
        lines.append(f"{name}:")
        for entry in entries:
            lines.append(f"  {_cell(entry['value']):>12}  {_accuracy(entry['test_accuracy'])}")
    for entry in report["failed"]:
        lines.append(f"failed {entry['point']}: {entry['error']}")
    return lines
