"""Running a study (:mod:`spide_brian.study`) on a Dask cluster: one task per point, one
results table, resumable.

Each point trains in its own process, ``spide-brian train`` started by a Dask task on a
worker, with its files in ``STUDY_DIR/points/<id>/`` (checkpoint, ``log.tsv``,
``summary.json`` and the captured output ``train.log``). Points on the Brian2 backend build
their standalone program in a folder of their worker, ``STUDY_DIR/builds/<worker>/``, so
that the points a worker runs one after the other reuse one program where their model
structure is the same (a worker runs one point at a time; the build folder's lock guards
the rest). The training process is tied to
the worker process: when a worker dies, even by SIGKILL, its training process ends too, and
Dask runs the task again on another (or the restarted) worker, which resumes the point from
its last checkpoint.

The client alone writes ``STUDY_DIR/results.csv``, one row per point, rewritten atomically
after every finished point. A second run of the same study skips the points whose row says
``done`` (and ``failed`` ones unless asked to retry them), so an interrupted study continues
where it stopped.
"""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

__all__ = ["run_study", "run_point", "ResultsTable", "METRIC_COLUMNS", "RESULTS_NAME",
           "STUDY_COPY_NAME", "POINTS_FOLDER", "default_study_dir", "table_cell"]

RESULTS_NAME = "results.csv"
#: The copy of the study file in the study folder.
STUDY_COPY_NAME = "study.toml"
POINTS_FOLDER = "points"
#: Folder of the workers' standalone build folders (Brian2 points).
BUILDS_FOLDER = "builds"
SUMMARY_NAME = "summary.json"
CHECKPOINT_NAME = "checkpoint.json"
TRAIN_LOG_NAME = "train.log"
#: Columns of the results table after the point's settings.
METRIC_COLUMNS = ("test_accuracy", "best_test_accuracy", "forward_rate", "backward_rate",
                  "train_energy_pj", "epochs_done", "train_seconds", "seconds", "device",
                  "spide_brian", "brian2")
#: Lines of a failed point's output kept as its error.
ERROR_LINES = 5
DONE, FAILED = "done", "failed"


def default_study_dir(study):
    """Folder of a study's results when none is given: ``output/studies/<name>``."""
    return Path("output") / "studies" / study.name


# -- on a worker ----------------------------------------------------------------------------
def _metrics(history, versions, device, train_seconds=None):
    """The metric columns of a finished run from its per-epoch history."""
    last = history[-1] if history else {}
    return {
        "test_accuracy": last.get("test_accuracy"),
        "best_test_accuracy": max((row["test_accuracy"] for row in history), default=None),
        "forward_rate": last.get("forward_rate"),
        "backward_rate": last.get("backward_rate"),
        "train_energy_pj": last.get("train_energy_pj"),
        "epochs_done": last.get("epoch"),
        "train_seconds": (train_seconds if train_seconds is not None
                          else sum(row.get("seconds", 0.0) for row in history)),
        "device": device,
        "spide_brian": versions.get("spide_brian"),
        "brian2": versions.get("brian2"),
    }


def _summary_metrics(path):
    summary = json.loads(Path(path).read_text(encoding="utf-8"))
    return _metrics(summary.get("history", []), summary.get("versions", {}),
                    summary.get("device"), summary.get("train_seconds"))


def _backend(flags):
    """The ``--backend`` among ``spide-brian train`` flags (None if they name none)."""
    flags = list(flags)
    if "--backend" in flags and flags.index("--backend") + 1 < len(flags):
        return flags[flags.index("--backend") + 1]
    return None


def _last_lines(text, count=ERROR_LINES):
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-count:]) or "no output"


def _worker_label():
    """A name of this worker that stays the same when a LocalCluster restarts it: the Dask
    worker's name on its host (the host and process id outside a worker)."""
    name = None
    try:
        from dask.distributed import get_worker

        name = get_worker().name
    except (ImportError, ValueError):
        pass
    label = f"{socket.gethostname()}-{name if name is not None else os.getpid()}"
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)


def run_point(flags, folder, epochs, python=None, builds=None):
    """Train one point in a child process and report how it went (a Dask task).

    Parameters
    ----------
    flags : list of str
        Arguments of ``spide-brian train`` that configure the point.
    folder : str
        The point's folder; ``--out`` and ``--json`` of the run point into it.
    epochs : int
        The epochs the point trains: a checkpoint that has them all is a finished run.
    python : str, optional
        Interpreter of the child (default: this one).
    builds : str, optional
        Folder of the workers' build folders: a Brian2 point builds its standalone program
        in ``builds/<worker>``, so that the points one worker runs reuse one program where
        their model structure is the same (only what changed is recompiled).

    Returns
    -------
    dict
        ``status`` (``'done'`` or ``'failed'``), ``error`` (the last lines of the child's
        output when it failed), ``seconds`` (wall time here), ``resumed`` and the
        :data:`METRIC_COLUMNS` of a finished run. Never raises for a failed run; a killed
        worker is Dask's to reschedule.
    """
    from .devices.processes import tied_command

    started = time.perf_counter()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    summary, checkpoint = folder / SUMMARY_NAME, folder / CHECKPOINT_NAME
    outcome = {"status": DONE, "error": "", "resumed": False}
    if summary.exists():
        # finished before (the study stopped before recording it)
        outcome.update(_summary_metrics(summary))
        outcome["seconds"] = time.perf_counter() - started
        return outcome
    mode = []
    if checkpoint.exists():
        saved = json.loads(checkpoint.read_text(encoding="utf-8"))
        if saved.get("epoch", 0) >= epochs:
            # every epoch is saved, only the summary was not written
            outcome.update(_metrics(saved.get("history", []), saved.get("versions", {}),
                                    saved.get("device")))
            outcome["seconds"] = time.perf_counter() - started
            return outcome
        mode, outcome["resumed"] = ["--resume"], True
    elif any(folder.glob("checkpoint-epoch*.npz")) or (folder / "log.tsv").exists():
        # a run stopped before its first complete checkpoint: start it again
        mode = ["--overwrite"]
    if builds is not None and _backend(flags) == "brian":
        mode += ["--build-dir", str(Path(builds) / _worker_label())]
    train_command = [python or sys.executable, "-m", "spide_brian.cli", "train", *flags,
                     "--out", str(folder), "--json", str(summary), "--quiet", *mode]
    log_path = folder / TRAIN_LOG_NAME
    with open(log_path, "ab") as log:
        start_offset = log.tell()
        header = (f"# {time.strftime('%Y-%m-%d %H:%M:%S')} on {socket.gethostname()} "
                  f"(worker pid {os.getpid()}): {' '.join(train_command)}\n")
        log.write(header.encode("utf-8"))
        log.flush()
        # the child ends with this worker process (tied_command), even when it is killed
        returncode = subprocess.call(tied_command(train_command), stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=dict(os.environ))
    outcome["seconds"] = time.perf_counter() - started
    if returncode != 0:
        with open(log_path, "rb") as log:
            log.seek(start_offset + len(header.encode("utf-8")))
            text = log.read().decode("utf-8", errors="replace")
        outcome.update(status=FAILED, error=f"exit status {returncode}: {_last_lines(text)}")
        return outcome
    outcome.update(_summary_metrics(summary))
    return outcome


# -- on the client --------------------------------------------------------------------------
def table_cell(value):
    """A table cell: lists as JSON, nothing as an empty cell."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return json.dumps(list(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class ResultsTable:
    """The rows of ``results.csv``, one per point id, in a fixed column order.

    Rows of points that are not in the current grid (of an earlier version of the study)
    are kept as they are.
    """

    def __init__(self, path, columns):
        self.path = Path(path)
        self.columns = list(columns)
        self.rows = {}
        if self.path.exists():
            with open(self.path, newline="", encoding="utf-8") as stream:
                reader = csv.DictReader(stream)
                for name in reader.fieldnames or ():
                    if name not in self.columns:
                        self.columns.insert(len(self.columns) - 1, name)
                for row in reader:
                    self.rows[row["point"]] = row

    def status(self, point_id):
        """``'done'``, ``'failed'`` or None (no row yet)."""
        row = self.rows.get(point_id)
        return row["status"] if row else None

    def set(self, point_id, values):
        """Replace the row of ``point_id``."""
        self.rows[point_id] = {"point": point_id,
                               **{k: table_cell(v) for k, v in values.items()}}

    def write(self):
        """Rewrite the table atomically (readers see the old or the new table, complete)."""
        from .checkpoint import atomic_write

        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=self.columns, extrasaction="ignore",
                                lineterminator="\n")
        writer.writeheader()
        for row in self.rows.values():
            writer.writerow({column: row.get(column, "") for column in self.columns})
        data = text.getvalue().encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path, lambda stream: stream.write(data))


def _columns(study):
    """``point, status``, the axes, the other settings, the metrics and ``error``."""
    settings = ["backend", "dataset", "limit", *study.base]
    axes = list(study.axes)
    return ["point", "status", *axes, *(name for name in settings if name not in axes),
            *METRIC_COLUMNS, "error"]


def _open_client(scheduler, workers, echo):
    """A client of the cluster at ``scheduler``, or of a new LocalCluster of ``workers``
    single-threaded worker processes; returns ``(client, cluster or None)``."""
    from dask.distributed import Client, LocalCluster

    if scheduler:
        client = Client(scheduler)
        cluster = None
        echo(f"connected to the Dask scheduler at {scheduler}")
    else:
        # the dashboard on a free port: several studies may run on one machine
        cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                               processes=True, dashboard_address=":0")
        client = Client(cluster)
        echo(f"started a local Dask cluster of {len(cluster.workers)} worker processes")
    try:
        if "dashboard" in client.scheduler_info().get("services", {}):
            echo(f"dashboard: {client.dashboard_link}")
    except Exception:       # the link is a convenience, never a reason to stop
        pass
    return client, cluster


def _running(client, keys):
    """How many of ``keys`` the workers are running now (a worker runs as many tasks at once
    as it has threads; the others assigned to it wait)."""
    try:
        threads = client.nthreads()
        return sum(min(threads.get(worker, 1), sum(1 for key in tasks if key in keys))
                   for worker, tasks in client.processing().items())
    except Exception:       # the count is a convenience, never a reason to stop
        return 0


def _describe(point):
    return " ".join(f"{name}={table_cell(value)}" for name, value in point.axes.items())


def run_study(study, out=None, scheduler=None, workers=None, retry_failed=False, client=None,
              echo=print):
    """Run the points of ``study`` that have no result yet on a Dask cluster.

    Parameters
    ----------
    study : spide_brian.study.Study
        The parsed study.
    out : path-like, optional
        The study folder (default :func:`default_study_dir`): ``results.csv`` and
        ``points/<id>/``.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``); default: a new
        ``LocalCluster`` of ``workers`` processes (default: one per CPU core).
    workers : int, optional
        Worker processes of the local cluster.
    retry_failed : bool
        Run the points whose row says ``failed`` again.
    client : dask.distributed.Client, optional
        Use this client (and its cluster) instead of connecting one.
    echo : callable
        Receives the progress lines.

    Returns
    -------
    dict
        ``total``, ``done``, ``failed`` (rows of the grid's points after the run),
        ``submitted`` (points run now) and ``folder``.
    """
    folder = Path(out) if out is not None else default_study_dir(study)
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / STUDY_COPY_NAME
    if study.path is not None and Path(study.path).resolve() != copy.resolve() and (
            not copy.exists() or copy.read_bytes() != Path(study.path).read_bytes()):
        # the study file next to its results (kept as it is when unchanged)
        shutil.copyfile(study.path, copy)
    table = ResultsTable(folder / RESULTS_NAME, _columns(study))
    ids = [point.id for point in study.points]

    def count(status):
        return sum(1 for point_id in ids if table.status(point_id) == status)

    pending = [point for point in study.points
               if table.status(point.id) != DONE
               and (retry_failed or table.status(point.id) != FAILED)]
    result = {"total": len(ids), "folder": str(folder), "submitted": len(pending)}
    sampled = f" (a sample of the grid's {study.grid_size})" \
        if len(ids) < study.grid_size else ""
    echo(f"study {study.name}: {len(ids)} points{sampled}, {count(DONE)} done, "
         f"{count(FAILED)} failed, {len(pending)} to run; results in {folder / RESULTS_NAME}")
    if not pending:
        if count(FAILED):
            echo("nothing to run (--retry-failed runs the failed points again)")
        return {**result, "done": count(DONE), "failed": count(FAILED)}

    own_client = client is None
    cluster = None
    if own_client:
        client, cluster = _open_client(scheduler, workers, echo)
    futures = {}
    try:
        from dask.distributed import as_completed

        run_token = uuid.uuid4().hex[:6]
        for point in pending:
            epochs = point.settings.get("epochs")
            if epochs is None:
                from .config import SPIDEConfig

                epochs = SPIDEConfig().epochs
            future = client.submit(run_point, point.train_flags(),
                                   str((folder / POINTS_FOLDER / point.id).absolute()),
                                   int(epochs), builds=str((folder / BUILDS_FOLDER).absolute()),
                                   key=f"point-{point.id}-{run_token}")
            futures[future] = point
        keys = {future.key for future in futures}
        for finished, future in enumerate(as_completed(futures), 1):
            point = futures[future]
            try:
                outcome = future.result()
            except Exception as error:      # e.g. KilledWorker after repeated deaths
                outcome = {"status": FAILED, "error": f"{type(error).__name__}: {error}"}
            keys.discard(future.key)
            outcome.pop("resumed", None)
            table.set(point.id, {"status": outcome["status"], **point.settings,
                                 **{k: v for k, v in outcome.items() if k != "status"}})
            table.write()
            accuracy = outcome.get("test_accuracy")
            what = (f"test {accuracy:.4f}" if outcome["status"] == DONE and accuracy is not None
                    else outcome.get("error", ""))
            echo(f"[{finished}/{len(pending)}] {point.id} {outcome['status']} {_describe(point)}"
                 f": {what} ({outcome.get('seconds', 0.0):.1f} s) | done {count(DONE)}, "
                 f"running {_running(client, keys)}, failed {count(FAILED)}, total {len(ids)}")
    finally:
        for future in futures:
            if not future.done():
                future.cancel()
        if own_client:
            client.close()
            if cluster is not None:
                cluster.close()
    return {**result, "done": count(DONE), "failed": count(FAILED)}
