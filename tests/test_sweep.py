"""Parameter studies: the study file and its grid, and sweeps on a real Dask LocalCluster
(results table, resumption, a failing point, a worker killed during a point)."""
import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from spide_brian.checkpoint import load_checkpoint
from spide_brian.cli import main
from spide_brian.study import StudyError, load_study, parse_study, point_id

# a point trains in a few seconds, most of them the child's start
TINY_BASE = """
[base]
hidden_sizes = [16]
epochs = {epochs}
batch_size = 16
time_step_back = 12
"""


def _write_study(folder, axes, epochs=1, limit=48, name="tiny"):
    path = Path(folder) / f"{name}.toml"
    path.write_text(f'[study]\nname = "{name}"\nlimit = {limit}\n'
                    + TINY_BASE.format(epochs=epochs) + "\n[axes]\n" + axes, encoding="utf-8")
    return path


def _rows(folder):
    with open(Path(folder) / "results.csv", newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def _environment():
    """The environment of a child: this interpreter finds the same package."""
    environment = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    environment["PYTHONPATH"] = os.pathsep.join(
        [root] + [p for p in environment.get("PYTHONPATH", "").split(os.pathsep) if p])
    return environment


def _sweep_command(*arguments):
    return [sys.executable, "-m", "spide_brian.cli", "sweep", *map(str, arguments)]


# -- the study file (no cluster) ------------------------------------------------------------
def test_grid_expands_lists_and_ranges_with_stable_ids():
    study = parse_study({"study": {"name": "s", "limit": 40},
                         "base": {"hidden_sizes": [16], "epochs": 1},
                         "axes": {"time_step": {"start": 10, "stop": 30, "step": 10},
                                  "seed": [0, 1], "leaky": {"start": 0.8, "stop": 1.0,
                                                            "step": 0.1}}})
    assert study.axes["time_step"] == [10, 20, 30]
    assert study.axes["leaky"] == [0.8, 0.9, 1.0]
    assert len(study.points) == study.grid_size == 3 * 2 * 3
    ids = [point.id for point in study.points]
    assert len(set(ids)) == len(ids) and all(len(i) == 10 for i in ids)
    first = study.points[0]
    assert first.axes == {"time_step": 10, "seed": 0, "leaky": 0.8}
    assert first.settings["limit"] == 40 and first.settings["backend"] == "reference"
    # the id depends on the settings, not on their order, a number's type or a default
    # written out
    settings = dict(first.settings)
    assert point_id(dict(reversed(list(settings.items())))) == first.id
    assert point_id({**settings, "leaky": 0.8, "lr": 0.05, "feedback": True}) == first.id
    assert point_id({**settings, "scale_factor": 100}) == first.id
    assert point_id({**settings, "seed": 5}) != first.id
    flags = first.train_flags()
    assert flags[:6] == ["--backend", "reference", "--dataset", "digits", "--limit", "40"]
    assert "--hidden-sizes" in flags and flags[flags.index("--hidden-sizes") + 1] == "16"
    assert "--no-feedback" in parse_study({"axes": {"feedback": [False]}}).points[0].train_flags()


def test_sample_draws_a_reproducible_subset():
    data = {"study": {"sample": 4, "seed": 3}, "axes": {"time_step": [5, 6, 7], "seed": [0, 1, 2]}}
    first, second = parse_study(data), parse_study(data)
    assert len(first.points) == 4 and first.grid_size == 9
    assert [p.id for p in first.points] == [p.id for p in second.points]
    everything = {p.id for p in parse_study({"axes": data["axes"]}).points}
    assert {p.id for p in first.points} <= everything


@pytest.mark.parametrize("data, named", [
    ({"axes": {"time_stpe": [1]}}, "'time_stpe'"),
    ({"base": {"learning_rate": 0.1}, "axes": {"seed": [0]}}, "'learning_rate'"),
    ({"study": {"workers": 2}, "axes": {"seed": [0]}}, "'workers'"),
    ({"axes": {"seed": {"start": 0, "stop": 2}}}, "step"),
    ({"axes": {"seed": []}}, "'seed'"),
    ({"axes": {}}, "at least one axis"),
    ({"study": {"backend": "gpu"}, "axes": {"seed": [0]}}, "backend"),
    ({"axes": {"membrane_tau": ["20ms", "20mV"]}}, r"^\[axes\] membrane_tau must be a time"),
    ({"base": {"dt": 0.001}, "axes": {"seed": [0]}}, r"^\[base\] dt: 0.001 is not a number "
                                                     "with a unit"),
])
def test_a_wrong_study_names_the_key(data, named):
    with pytest.raises(StudyError, match=named):
        parse_study(data)


def test_cli_refuses_an_unknown_field_in_one_line(tmp_path, capsys):
    path = _write_study(tmp_path, "tme_step = [5, 6]\n")
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "'tme_step'" in error
    assert not (tmp_path / "out").exists()
    assert main(["sweep", str(path), "--workers", "0"]) == 2


def test_physical_options_are_axes_passed_to_train_with_their_units(tmp_path):
    study = parse_study({"study": {"limit": 48},
                         "base": {"hidden_sizes": [16], "epochs": 1, "batch_size": 16,
                                  "dt": "0.5ms", "backward_duration": "6ms"},
                         "axes": {"membrane_tau": ["10ms", "inf"]}})
    flags = {p.axes["membrane_tau"]: p.train_flags() for p in study.points}
    assert flags["10ms"][flags["10ms"].index("--membrane-tau") + 1] == "10ms"
    assert "--dt" in flags["inf"] and flags["inf"][flags["inf"].index("--dt") + 1] == "0.5ms"
    for value, point_flags in flags.items():
        out = tmp_path / value
        assert main(["train", *point_flags, "--out", str(out), "--quiet"]) == 0
        config = load_checkpoint(out)["config"]
        assert config.time_step_back == 12
        assert config.leaky == (1.0 if value == "inf" else math.exp(-0.05))


def test_refractory_study_points_train_with_their_period_and_gate(tmp_path):
    """The shipped study of docs/biophysics.md B3: 4 periods x 2 gates x 2 seeds; a point's
    flags train the period it names."""
    study = load_study(Path(__file__).resolve().parent.parent / "studies" /
                       "digits_refractory_gate.toml")
    assert len(study.points) == 16
    point = next(p for p in study.points
                 if p.axes["refractory"] == "3ms" and p.axes["gate"] == "slope")
    flags = point.train_flags()
    assert flags[flags.index("--refractory") + 1] == "3ms"
    out = tmp_path / "point"
    assert main(["train", *flags, "--epochs", "1", "--limit", "64", "--hidden-sizes", "16",
                 "--out", str(out), "--quiet"]) == 0
    config = load_checkpoint(out)["config"]
    assert (config.refractory_steps, config.gate) == (2, "slope")


# -- sweeps on a real cluster ---------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of two single-threaded worker processes."""
    distributed = pytest.importorskip("dask.distributed",
                                      reason="sweeps run on Dask: pip install 'dask[distributed]'")
    local = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     dashboard_address=":0")
    client = distributed.Client(local)
    yield client
    client.close()
    local.close()


def _mtimes(folder):
    return {str(path): path.stat().st_mtime_ns for path in Path(folder).rglob("*")}


def test_small_grid_completes_and_a_rerun_does_nothing(tmp_path):
    pytest.importorskip("dask.distributed", reason="sweeps run on Dask")
    path = _write_study(tmp_path, "time_step = [6, 8]\nseed = [0, 1]\n")
    out = tmp_path / "study"
    run = subprocess.run(_sweep_command(path, "--out", out, "--workers", 2), env=_environment(),
                         capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stdout + run.stderr
    rows = _rows(out)
    study = load_study(path)
    assert sorted(row["point"] for row in rows) == sorted(p.id for p in study.points)
    settings = {(row["time_step"], row["seed"]) for row in rows}
    assert settings == {("6", "0"), ("6", "1"), ("8", "0"), ("8", "1")}
    for row in rows:
        assert row["status"] == "done" and row["error"] == ""
        assert row["hidden_sizes"] == "[16]" and row["epochs"] == "1"
        assert row["limit"] == "48" and row["backend"] == "reference"
        assert 0.0 <= float(row["test_accuracy"]) <= float(row["best_test_accuracy"]) <= 1.0
        assert float(row["train_energy_pj"]) > 0 and row["device"] == "numpy"
        assert row["spide_brian"] and row["brian2"] and row["epochs_done"] == "1"
        assert (out / "points" / row["point"] / "summary.json").exists()
    progress = [line for line in run.stdout.splitlines() if line.startswith("[")]
    assert len(progress) == 4 and progress[-1].endswith("done 4, running 0, failed 0, total 4")

    before, table = _mtimes(out), (out / "results.csv").read_bytes()
    again = subprocess.run(_sweep_command(path, "--out", out), env=_environment(),
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "4 done, 0 failed, 0 to run" in again.stdout
    assert "cluster" not in again.stdout          # nothing to run: no cluster is started
    assert _mtimes(out) == before and (out / "results.csv").read_bytes() == table

    assert main(["sweep", "--report", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["counts"] == {"points": 4, "done": 4, "failed": 0, "pending": 0}
    by_step = {entry["value"]: entry for entry in report["axes"]["time_step"]}
    for step in (6, 8):
        final = sorted(float(row["test_accuracy"]) for row in rows
                       if row["time_step"] == str(step))
        assert sorted(by_step[step]["accuracies"]) == final
        assert by_step[step]["test_accuracy"]["n"] == 2
    assert (out / "report.png").stat().st_size > 0


def test_failing_point_is_recorded_and_an_interrupted_point_resumes(tmp_path, cluster):
    from spide_brian.sweep import run_study

    path = _write_study(tmp_path, "lr = [0.05, -1]\n", epochs=2)
    study = load_study(path)
    out = tmp_path / "study"
    good = next(p for p in study.points if p.axes["lr"] == 0.05)
    bad = next(p for p in study.points if p.axes["lr"] == -1)
    # the good point was stopped after its first epoch: a checkpoint, no summary
    good_folder = out / "points" / good.id
    assert main(["train", *good.train_flags(), "--epochs", "1", "--out", str(good_folder),
                 "--quiet"]) == 0
    lines = []
    result = run_study(study, out=out, client=cluster, echo=lines.append)
    assert result["done"] == 1 and result["failed"] == 1 and result["submitted"] == 2
    rows = {row["point"]: row for row in _rows(out)}
    assert set(rows) == {good.id, bad.id}
    assert rows[good.id]["status"] == "done" and rows[good.id]["epochs_done"] == "2"
    assert "resuming from epoch 1" in (good_folder / "train.log").read_text()
    assert rows[bad.id]["status"] == "failed" and "--lr" in rows[bad.id]["error"]
    assert rows[bad.id]["lr"] == "-1" and rows[bad.id]["test_accuracy"] == ""
    assert any("failed" in line and "total 2" in line for line in lines)

    # a rerun skips both; --retry-failed runs the failed one (only) again
    assert run_study(study, out=out, client=cluster, echo=lines.append)["submitted"] == 0
    retried = run_study(study, out=out, client=cluster, retry_failed=True, echo=lines.append)
    assert retried["submitted"] == 1 and retried["failed"] == 1
    assert len(_rows(out)) == 2


@pytest.mark.standalone
@pytest.mark.long
def test_brian_points_of_one_worker_share_its_build_folder(tmp_path):
    """Two cpp_standalone points of the same structure on one worker: both train, both
    build in that worker's folder, and the second reuses the first one's program."""
    distributed = pytest.importorskip("dask.distributed", reason="sweeps run on Dask")
    from spide_brian.sweep import run_study

    path = tmp_path / "brian.toml"
    path.write_text('[study]\nname = "brian"\nbackend = "brian"\nlimit = 32\n'
                    + TINY_BASE.format(epochs=1) + "\n[axes]\nseed = [0, 1]\n",
                    encoding="utf-8")
    study = load_study(path)
    out = tmp_path / "study"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as local, \
            distributed.Client(local) as client:
        result = run_study(study, out=out, client=client, echo=lambda line: None)
    assert result["done"] == 2 and result["failed"] == 0
    builds = [p for p in (out / "builds").iterdir() if p.is_dir()]
    assert len(builds) == 1                      # one worker, one build folder
    summaries = [json.loads((out / "points" / p.id / "summary.json").read_text())
                 for p in study.points]
    assert all(s["device"] == "cpp_standalone" for s in summaries)
    logs = [(out / "points" / p.id / "train.log").read_text() for p in study.points]
    assert all(f"--build-dir {builds[0]}" in log for log in logs)
    # the second run found the first one's program (its compile message says how long
    # the last compile in that folder took)
    assert sum("last compile in this folder" in log for log in logs) == 1


def _training_children(folder):
    """Pids of running processes whose command line names ``folder``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "spide_brian.cli train" in command and str(folder) in command:
            found.append(int(entry.name))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
def test_a_killed_worker_is_survived(tmp_path, cluster):
    """A worker killed by SIGKILL during a point: its training process ends with it, Dask
    runs the point again, and every point has exactly one row."""
    path = _write_study(tmp_path, "time_step = [6, 8]\nseed = [0, 1]\n", epochs=2, limit=60)
    study = load_study(path)
    out = tmp_path / "study"
    address = cluster.scheduler.address
    sweep = subprocess.Popen(_sweep_command(path, "--out", out, "--scheduler", address),
                             env=_environment(), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        victim = None
        while victim is None and time.monotonic() < deadline:
            started = list(out.glob("points/*/train.log"))
            busy = [worker for worker, keys in cluster.processing().items()
                    if any(key.startswith("point-") for key in keys)]
            if started and busy:
                victim = cluster.run(os.getpid)[busy[0]]
            else:
                time.sleep(0.1)
        assert victim is not None, "no point started"
        os.kill(victim, signal.SIGKILL)
        output, _ = sweep.communicate(timeout=200)
    finally:
        if sweep.poll() is None:
            sweep.kill()
            sweep.wait()
    assert sweep.returncode == 0, output
    rows = _rows(out)
    assert sorted(row["point"] for row in rows) == sorted(p.id for p in study.points)
    assert all(row["status"] == "done" and row["epochs_done"] == "2" for row in rows)
    # the killed point ran again (two starts in its log) and no training process is left
    starts = [Path(log).read_text().count("\n# ") + 1 for log in out.glob("points/*/train.log")]
    assert max(starts) >= 2
    assert _training_children(out) == []


# -- the report of a study folder (no cluster) ----------------------------------------------
def _fake_results(folder, study, accuracies, failed=(), extra_rows=()):
    """A results table for ``study`` with the given final accuracy per point index."""
    columns = ["point", "status", *study.axes, "test_accuracy", "best_test_accuracy",
               "seconds", "error"]
    with open(Path(folder) / "results.csv", "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns)
        writer.writeheader()
        for index, point in enumerate(study.points):
            row = {"point": point.id, **{k: str(v) for k, v in point.axes.items()}}
            if index in failed:
                row.update(status="failed", error="ConfigError: lr must be > 0")
            elif index in accuracies:
                row.update(status="done", test_accuracy=str(accuracies[index]),
                           best_test_accuracy=str(accuracies[index] + 0.01), seconds="2.5")
            else:
                continue
            writer.writerow(row)
        for row in extra_rows:
            writer.writerow(row)


def test_report_aggregates_seeds_per_axis_value_and_ranks_configurations(tmp_path, capsys):
    path = _write_study(tmp_path, "time_step = [6, 8]\nleaky = [0.9, 1.0]\nseed = [0, 1]\n")
    (tmp_path / "study.toml").write_text(path.read_text())
    study = load_study(tmp_path / "study.toml")
    accuracy = {}
    for index, point in enumerate(study.points):
        accuracy[index] = round(0.5 + 0.1 * (point.axes["time_step"] == 8)
                                + 0.05 * (point.axes["leaky"] == 1.0)
                                + 0.01 * point.axes["seed"], 4)
    last = len(study.points) - 1
    del accuracy[last]                                   # one point not run yet
    _fake_results(tmp_path, study, accuracy, failed={0},
                  extra_rows=[{"point": "0123456789", "status": "done",
                               "test_accuracy": "0.99"}])   # not in the study any more
    assert main(["sweep", "--report", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["counts"] == {"points": 8, "done": 6, "failed": 1, "pending": 1}
    done = {i: a for i, a in accuracy.items() if i != 0}
    for name in ("time_step", "leaky", "seed"):
        for entry in report["axes"][name]:
            values = [a for i, a in done.items()
                      if study.points[i].axes[name] == entry["value"]]
            assert entry["test_accuracy"]["n"] == len(values)
            assert entry["test_accuracy"]["mean"] == pytest.approx(sum(values) / len(values))
            if len(values) > 1:
                mean = sum(values) / len(values)
                sd = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5
                assert entry["test_accuracy"]["std"] == pytest.approx(sd)
            assert entry["best_test_accuracy"]["mean"] == pytest.approx(
                sum(values) / len(values) + 0.01)
    best = report["configurations"][0]
    assert best["settings"] == {"time_step": 8, "leaky": 1.0}
    assert best["test_accuracy"]["n"] == 1               # its seed-1 point is not run yet
    means = [entry["test_accuracy"]["mean"] for entry in report["configurations"]]
    assert means == sorted(means, reverse=True) and len(means) == 4
    assert report["failed"][0]["error"] == "ConfigError: lr must be > 0"
    assert "0.99" not in out and "failed" in out and "time_step=8 leaky=1.0" in out
    assert (tmp_path / "report.png").stat().st_size > 0


@pytest.mark.parametrize("setup,message", [
    ("nothing", "no results.csv"),
    ("no study", "copy the study file there"),
    ("garbage", "not a results table"),
])
def test_report_of_an_unusable_folder_is_one_line(tmp_path, capsys, setup, message):
    path = _write_study(tmp_path, "seed = [0, 1]\n")
    if setup != "no study":
        (tmp_path / "study.toml").write_text(path.read_text())
    if setup != "nothing":
        (tmp_path / "results.csv").write_text("a,b\n1,2\n")
    assert main(["sweep", "--report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert main(["sweep", str(path), "--report", str(tmp_path)]) == 2
    assert "give it alone" in capsys.readouterr().err
