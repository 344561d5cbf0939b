r"""Speed and memory of the SPIDE implementations on one workload (``spide-brian bench``).

Every implementation (the numpy ``reference`` and each Brian2 device asked for) trains the
same network from the same initial weights on the same samples, in a process of its own so
that its peak memory is its own. Per implementation the bench reports

- ``compile_seconds``: building the training program (standalone devices; 0 elsewhere),
  and ``evaluation_compile_seconds``: building the evaluation program
  (:mod:`spide_brian.evaluation`; in a worker process, beside the training program);
- ``train_samples_per_second`` and ``eval_samples_per_second``: the median over the repeats
  of samples divided by simulation seconds (compile excluded);
- ``peak_rss_mb``: the peak resident memory of the Python process, and
  ``peak_child_rss_mb`` that of its largest child process (the compiler or the compiled
  program of a standalone device);
- synaptic events per training sample by stage (``forward``, ``backward``,
  ``weight_update``: the accumulate operations of :mod:`spide_brian.energy`, counted from the
  spikes, so equal for exact implementations);
- ``ns_per_event``: training seconds per synaptic event, and ``limit_multiple``: that cost as
  a multiple of the machine's limit for this work, measured by a compiled loop of
  random-index accumulations ``out[idx[k]] += w[k]`` with as many targets as the hidden
  layer (:func:`scattered_add_ns`);
- ``ratio_to_reference`` and ``eval_ratio_to_reference``: training and evaluation samples
  per second relative to the reference, computed from the figures of the same bench run.

An implementation is ``reference`` or a Brian2 device name, optionally with the model's
floating-point type: ``cpp_standalone:float32`` runs the Brian2 model with
``float_dtype='float32'`` (the default and the reference are float64), so one bench run
compares both precisions.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np

__all__ = ["Workload", "WORKLOADS", "workload_data", "measure", "scattered_add_ns",
           "implementation_parts", "run_bench", "format_table"]

REFERENCE = "reference"


@dataclass(frozen=True)
class Workload:
    """A network shape and its data.

    Parameters
    ----------
    name : str
    hidden : int
        Size of the one feedback layer (the F-shape: input -> hidden with hidden x hidden
        feedback -> readout).
    n_inputs : int
        64 (the embedded 8 x 8 digits) or 784 (Fashion-MNIST where its files are found,
        otherwise synthetic images of that size).
    samples : int
        Training samples per repeat (the evaluation uses as many test samples, at most the
        test split).
    """

    name: str
    hidden: int
    n_inputs: int
    samples: int


def _workloads():
    table = {"f400-digits": Workload("f400-digits", 400, 64, 1437)}
    for hidden in (100, 400, 1600, 3200):
        for n_inputs in (64, 784):
            name = f"f{hidden}-{n_inputs}"
            table[name] = Workload(name, hidden, n_inputs, 1437 if n_inputs == 64 else 2048)
    return table


#: The named workloads (``--workload``).
WORKLOADS = _workloads()


def workload_data(workload, samples=None):
    """``(x_train, y_train, x_test, y_test, source)`` of ``workload``.

    64 inputs: the embedded digits. 784 inputs: Fashion-MNIST if its files are found
    (without download), else standardised Gaussian images with random labels (``source``
    says which; the spike statistics, and so the speed, then differ from real data).
    """
    from .datasets import DataError, load_dataset

    n = int(samples or workload.samples)
    if workload.n_inputs == 64:
        data = load_dataset("digits")
        source = "digits"
    else:
        try:
            from .datasets.mnist import load_fashion_mnist

            data = load_fashion_mnist(download=False)
            source = "fashion-mnist"
        except (DataError, OSError):
            rng = np.random.default_rng(0)
            x = rng.standard_normal((n + 1000, 784))
            y = rng.integers(0, 10, n + 1000)
            return x[:n], y[:n], x[n:n + min(n, 1000)], y[n:n + min(n, 1000)], "synthetic"
    if n > len(data.y_train):
        repeat = -(-n // len(data.y_train))
        x_train = np.concatenate([data.x_train] * repeat)[:n]
        y_train = np.concatenate([data.y_train] * repeat)[:n]
    else:
        x_train, y_train = data.x_train[:n], data.y_train[:n]
    n_test = min(n, len(data.y_test))
    return x_train, y_train, data.x_test[:n_test], data.y_test[:n_test], source


def _peak_rss_mb():
    """Peak resident memory of this process and of its largest finished child, in MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    return own, child


def _events(result):
    """Mean synaptic events per sample of each stage from a train result's operations: the
    accumulates of the forward and backward spikes, the multiply-accumulates of the local
    weight update."""
    operations = result["operations"]
    kinds = {"forward": operations.accumulates, "backward": operations.accumulates,
             "weight_update": operations.multiply_accumulates}
    return {stage: float(np.mean(kind.get(stage, [0.0]))) for stage, kind in kinds.items()}


def measure(implementation, config, data, repeats, build_dir=None):
    """Train ``repeats`` epochs and evaluate once per repeat with one implementation, in
    this process.

    Returns
    -------
    dict
        The figures of the module docstring for this implementation (no ratios).
    """
    from .parameters import init_parameters
    from .training import make_trainer

    x_train, y_train, x_test, y_test, _ = data
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    params = init_parameters(config, x_train.shape[1], n_classes)
    if implementation == REFERENCE:
        trainer = make_trainer("reference", config, params)
    else:
        from .brian_backend import run_shapes
        from .devices import capabilities

        # runs shaped as the training command shapes them
        shapes = run_shapes(capabilities(implementation), len(y_train), len(y_test),
                            config.batch_size)
        trainer = make_trainer("brian", config, params, n_inputs=x_train.shape[1],
                               n_classes=n_classes, device=implementation,
                               build_dir=build_dir, **shapes)
    train_rates, eval_rates, events = [], [], None
    try:
        for _ in range(int(repeats)):
            seconds, result = _timed(trainer, "train_epoch", x_train, y_train)
            train_rates.append(len(y_train) / seconds)
            events = _events(result)
            seconds, _ = _timed(trainer, "evaluate", x_test, y_test)
            eval_rates.append(len(y_test) / seconds)
    finally:
        timings = dict(getattr(trainer, "timings", {}))
        close = getattr(trainer, "close", None)
        if close is not None:
            close()
    own, child = _peak_rss_mb()
    return {"implementation": implementation,
            "compile_seconds": float(timings.get("compile_s", 0.0)),
            "evaluation_compile_seconds": float(timings.get("evaluation_compile_s", 0.0)),
            "train_samples_per_second": float(np.median(train_rates)),
            "eval_samples_per_second": float(np.median(eval_rates)),
            "train_samples_per_second_all": train_rates,
            "peak_rss_mb": own, "peak_child_rss_mb": child,
            "events_per_sample": events}


def _timed(trainer, method, x, y):
    """``(simulation seconds, result)`` of ``trainer.method(x, y)``: the Brian2 trainer's
    ``run_s`` (compile excluded), else the wall time."""
    timings = getattr(trainer, "timings", None)
    before = timings["run_s"] if timings is not None else None
    start = time.perf_counter()
    result = getattr(trainer, method)(x, y)
    if timings is not None:
        return timings["run_s"] - before, result
    return time.perf_counter() - start, result


_SCATTER_SOURCE = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
int main(int argc, char **argv) {
    long targets = atol(argv[1]), events = atol(argv[2]), rounds = atol(argv[3]);
    double *out = calloc(targets, sizeof(double));
    double *w = malloc(events * sizeof(double));
    int *idx = malloc(events * sizeof(int));
    unsigned long long state = 88172645463325252ULL;
    for (long k = 0; k < events; k++) {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17;
        idx[k] = (int)(state % (unsigned long long)targets);
        w[k] = (double)(state % 1000) / 1000.0;
    }
    struct timespec a, b;
    double best = 1e30;
    for (long r = 0; r < rounds; r++) {
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (long k = 0; k < events; k++) out[idx[k]] += w[k];
        clock_gettime(CLOCK_MONOTONIC, &b);
        double ns = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / events;
        if (ns < best) best = ns;
    }
    double sum = 0.0;
    for (long j = 0; j < targets; j++) sum += out[j];
    printf("%.6f %.3f\n", best, sum);
    return 0;
}
"""


def scattered_add_ns(targets, events=2_000_000, rounds=5):
    """Nanoseconds per random-index accumulation ``out[idx[k]] += w[k]`` over ``targets``
    outputs (the best of ``rounds``), from a C loop compiled with ``-O2``; None without a C
    compiler."""
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        return None
    with tempfile.TemporaryDirectory(prefix="spide_brian_scatter_") as folder:
        source = os.path.join(folder, "scatter.c")
        program = os.path.join(folder, "scatter")
        with open(source, "w") as handle:
            handle.write(_SCATTER_SOURCE)
        subprocess.run([compiler, "-O2", "-o", program, source], check=True,
                       capture_output=True)
        out = subprocess.run([program, str(int(targets)), str(int(events)), str(int(rounds))],
                             check=True, capture_output=True, text=True).stdout
    return float(out.split()[0])


def implementation_parts(implementation):
    """``(device, float_dtype)`` of an implementation name: ``'reference'``, a Brian2
    device name, or a device name with ``:float32`` / ``:float64`` (default float64).

    Raises
    ------
    ValueError
        For an unknown floating-point type, or the reference with anything but float64.
    """
    from .config import FLOAT_DTYPES

    device, _, dtype = implementation.partition(":")
    dtype = dtype or "float64"
    if dtype not in FLOAT_DTYPES:
        raise ValueError(f"{implementation!r}: the part after ':' must be one of "
                         f"{', '.join(FLOAT_DTYPES)}")
    if device == REFERENCE and dtype != "float64":
        raise ValueError(f"{implementation!r}: the reference computes in float64 only; "
                         f"name a Brian2 device, e.g. cpp_standalone:{dtype}")
    return device, dtype


def _measure_in_child(implementation, workload, config, samples, repeats, build_dir):
    """:func:`measure` in a fresh Python process (its own peak memory)."""
    request = {"implementation": implementation, "workload": workload.name,
               "config": config.to_dict(), "samples": samples, "repeats": repeats,
               "build_dir": build_dir}
    process = subprocess.run([sys.executable, "-m", "spide_brian.bench"],
                             input=json.dumps(request), capture_output=True, text=True)
    lines = [line for line in process.stdout.splitlines() if line.startswith("{")]
    if process.returncode != 0 or not lines:
        tail = "\n".join(process.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"the bench of {implementation} failed (exit "
                           f"{process.returncode}):\n{tail}")
    return json.loads(lines[-1])


def run_bench(workload, implementations, repeats=3, samples=None, config_changes=None,
              build_dir=None, in_processes=True):
    """Bench ``implementations`` (``'reference'`` and Brian2 device names) on ``workload``.

    Returns
    -------
    dict
        ``workload``, ``config``, ``data`` (its source), ``scattered_add_ns`` and
        ``results``: one dict per implementation, by name, with the ratios added.
    """
    from .config import SPIDEConfig
    from .devices import adapter_for

    parts = {name: implementation_parts(name) for name in implementations}
    for device, _ in parts.values():
        if device != REFERENCE:
            adapter_for(device).check_installed()   # an unknown or missing device fails now
    config = SPIDEConfig(hidden_sizes=(workload.hidden,), timing="brian",
                         **(config_changes or {}))
    data = workload_data(workload, samples)
    results = {}
    for name, (device, dtype) in parts.items():
        folder = os.path.join(build_dir, name.replace(":", "-")) if build_dir else None
        own = config.replace(float_dtype=dtype)
        if in_processes:
            result = _measure_in_child(device, workload, own, samples, repeats, folder)
        else:
            result = measure(device, own, data, repeats, folder)
        results[name] = dict(result, implementation=name)
    limit = scattered_add_ns(workload.hidden)
    reference = results.get(REFERENCE)
    for result in results.values():
        events = sum(result["events_per_sample"].values())
        result["ns_per_event"] = 1e9 / (result["train_samples_per_second"] * events) \
            if events else float("nan")
        result["limit_multiple"] = result["ns_per_event"] / limit if limit else None
        for figure, ratio in (("train_samples_per_second", "ratio_to_reference"),
                              ("eval_samples_per_second", "eval_ratio_to_reference")):
            result[ratio] = result[figure] / reference[figure] if reference else None
    return {"workload": workload.name, "config": config.to_dict(), "data": data[4],
            "train_samples": int(len(data[1])), "test_samples": int(len(data[3])),
            "repeats": int(repeats), "scattered_add_ns": limit, "results": results}


def format_table(report):
    """The report as aligned text lines."""
    lines = [f"workload {report['workload']} ({report['data']}, {report['train_samples']} "
             f"train / {report['test_samples']} test samples, median of "
             f"{report['repeats']} repeats); scattered-add limit "
             + (f"{report['scattered_add_ns']:.2f} ns/event" if report["scattered_add_ns"]
                else "not measured (no C compiler)")]
    header = ("implementation", "compile s", "train/s", "eval/s", "x reference", "eval x ref",
              "fwd ev", "bwd ev", "learn ev", "ns/event", "x limit", "peak MB", "child MB")
    lines.append("  ".join(f"{h:>14s}" for h in header))
    for name, r in report["results"].items():
        events = r["events_per_sample"]
        compile_s = f"{r['compile_seconds']:.1f}"
        if r.get("evaluation_compile_seconds"):
            compile_s += f"+{r['evaluation_compile_seconds']:.0f}"
        cells = (name, compile_s, f"{r['train_samples_per_second']:.1f}",
                 f"{r['eval_samples_per_second']:.1f}",
                 f"{r['ratio_to_reference']:.3f}" if r["ratio_to_reference"] else "-",
                 f"{r['eval_ratio_to_reference']:.3f}" if r["eval_ratio_to_reference"] else "-",
                 f"{events['forward']:.0f}", f"{events['backward']:.0f}",
                 f"{events['weight_update']:.0f}", f"{r['ns_per_event']:.2f}",
                 f"{r['limit_multiple']:.1f}" if r["limit_multiple"] else "-",
                 f"{r['peak_rss_mb']:.0f}", f"{r['peak_child_rss_mb']:.0f}")
        lines.append("  ".join(f"{c:>14s}" for c in cells))
    return lines


def _child_main():
    """Entry of the per-implementation process: a JSON request on stdin, one JSON line out."""
    from .config import SPIDEConfig

    request = json.loads(sys.stdin.read())
    config = SPIDEConfig.from_dict(request["config"])
    workload = WORKLOADS[request["workload"]]
    data = workload_data(workload, request["samples"])
    result = measure(request["implementation"], config, data, request["repeats"],
                     request["build_dir"])
    print(json.dumps(result))


if __name__ == "__main__":
    _child_main()
