"""``spide-brian bench``: figures for every implementation, ratios within one run."""
import json

import pytest

from spide_brian import bench
from spide_brian.cli import main

TINY = ["--workload", "f100-64", "--samples", "64", "--repeats", "2", "--time-step", "6",
        "--time-step-back", "10"]


def test_bench_reports_each_implementation_with_ratios_and_events(tmp_path, capsys):
    path = tmp_path / "bench.json"
    assert main(["bench", *TINY, "--devices", "reference", "numpy", "--json", str(path)]) == 0
    report = json.loads(path.read_text())
    out = capsys.readouterr().out
    assert "f100-64" in out and "reference" in out and "numpy" in out
    assert set(report["results"]) == {"reference", "numpy"}
    assert report["config"]["hidden_sizes"] == [100] and report["config"]["time_step"] == 6
    reference, numpy = report["results"]["reference"], report["results"]["numpy"]
    assert reference["ratio_to_reference"] == 1.0
    assert numpy["ratio_to_reference"] == pytest.approx(
        numpy["train_samples_per_second"] / reference["train_samples_per_second"])
    assert numpy["eval_ratio_to_reference"] == pytest.approx(
        numpy["eval_samples_per_second"] / reference["eval_samples_per_second"])
    for result in (reference, numpy):
        assert result["train_samples_per_second"] > 0 and result["eval_samples_per_second"] > 0
        assert len(result["train_samples_per_second_all"]) == 2
        assert result["peak_rss_mb"] > 10
        assert result["events_per_sample"]["forward"] > 0
        assert result["events_per_sample"]["weight_update"] > 0
    # the same spikes in both (the model is exact): the same events per sample
    assert numpy["events_per_sample"] == reference["events_per_sample"]


def test_scattered_add_limit_is_a_few_nanoseconds():
    ns = bench.scattered_add_ns(400, events=200_000, rounds=2)
    if ns is None:
        pytest.skip("no C compiler on this machine")
    assert 0.01 < ns < 1000


def test_bench_refuses_unknown_workloads_and_devices(capsys):
    assert main(["bench", "--workload", "f7-3"]) == 2
    assert "--workload must be one of f400-digits" in capsys.readouterr().err
    assert main(["bench", *TINY, "--devices", "reference", "nodevice"]) == 2
    assert "nodevice" in capsys.readouterr().err
    assert main(["bench", *TINY, "--devices", "reference:float32"]) == 2
    assert "the reference computes in float64 only" in capsys.readouterr().err
    assert main(["bench", *TINY, "--devices", "numpy:float16"]) == 2
    assert "must be one of float64, float32" in capsys.readouterr().err


def test_bench_runs_a_device_in_float32_beside_the_float64_reference():
    """``DEVICE:float32`` benches the Brian2 model with float_dtype 'float32' in the same
    run as the reference (float64); the spikes, and so the events, stay within rounding."""
    report = bench.run_bench(bench.WORKLOADS["f100-64"], ["reference", "numpy:float32"],
                             repeats=1, samples=16,
                             config_changes=dict(time_step=6, time_step_back=10),
                             in_processes=False)
    assert set(report["results"]) == {"reference", "numpy:float32"}
    single = report["results"]["numpy:float32"]
    assert single["implementation"] == "numpy:float32" and single["ratio_to_reference"] > 0
    reference = report["results"]["reference"]["events_per_sample"]
    for stage, events in single["events_per_sample"].items():
        assert events == pytest.approx(reference[stage], rel=0.01), stage


def test_workloads_cover_the_f_shapes():
    for hidden in (100, 400, 1600, 3200):
        for inputs in (64, 784):
            workload = bench.WORKLOADS[f"f{hidden}-{inputs}"]
            assert (workload.hidden, workload.n_inputs) == (hidden, inputs)
    x, y, xt, yt, source = bench.workload_data(bench.WORKLOADS["f100-784"], samples=50)
    assert x.shape == (50, 784) and len(y) == 50 and source in ("fashion-mnist", "synthetic")
