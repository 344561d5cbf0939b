"""Shared fixtures: small random SPIDE networks."""
import numpy as np
import pytest

from spide_brian.config import SPIDEConfig
from spide_brian.parameters import init_parameters


def make_network(sizes, seed=0, n_inputs=50, n_classes=10, **overrides):
    """A random feedback network with a contractive feedback loop (``||W_fb||_F <= 1``)."""
    options = dict(hidden_sizes=sizes, feedback_norm=1.0)
    options.update(overrides)
    config = SPIDEConfig(**options)
    return config, init_parameters(config, n_inputs, n_classes, seed=seed)


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
