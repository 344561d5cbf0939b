"""Shared fixtures: small random SPIDE networks; the compiler's optimisation level of the
standalone programs the tests build."""
import os

import numpy as np
import pytest
from brian2 import prefs

from spide_brian.config import SPIDEConfig
from spide_brian.parameters import init_parameters


def make_network(sizes, seed=0, n_inputs=50, n_classes=10, **overrides):
    """A random feedback network with a contractive feedback loop (``||W_fb||_F <= 1``)."""
    options = dict(hidden_sizes=sizes, feedback_norm=1.0)
    options.update(overrides)
    config = SPIDEConfig(**options)
    return config, init_parameters(config, n_inputs, n_classes, seed=seed)


#: A training run of seconds: the reference on 96 digits, 20 neurons, one epoch.
SMALL_TRAIN = ["--backend", "reference", "--limit", "96", "--hidden-sizes", "20",
               "--batch-size", "16", "--epochs", "1", "--quiet"]


def assert_train_refused(tmp_path, capsys, flags, message):
    """``spide-brian train FLAGS --out tmp_path/run`` fails with ``message`` on one line, no
    traceback, and leaves no run folder."""
    from spide_brian.cli import main

    assert main(["train", *flags, "--out", str(tmp_path / "run")]) != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


#: Optimisation level of the C++ the tests compile (cpp_standalone programs, Cython): the
#: test models run for milliseconds, and GCC spends most of a build optimising. ``-O0`` also
#: contracts no multiply-add into a fused one. ``SPIDE_TEST_CXX_OPT=-O3`` tests with Brian2's
#: default level (what users build with).
TEST_CXX_OPT = os.environ.get("SPIDE_TEST_CXX_OPT", "-O0")
prefs.codegen.cpp.extra_compile_args_gcc = [
    TEST_CXX_OPT if flag.startswith("-O") else flag
    for flag in prefs.codegen.cpp.extra_compile_args_gcc]


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def pytest_collection_modifyitems(config, items):
    """Tests marked ``long`` (minutes each) run only with SPIDE_RUN_LONG=1."""
    import os

    if os.environ.get("SPIDE_RUN_LONG") == "1":
        return
    skip = pytest.mark.skip(reason="long test; set SPIDE_RUN_LONG=1 to run it")
    for item in items:
        if "long" in item.keywords:
            item.add_marker(skip)
