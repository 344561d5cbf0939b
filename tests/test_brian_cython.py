"""The Brian2 model on the runtime cython target trains exactly like the reference."""
import numpy as np
import pytest

from spide_brian.brian_backend import BrianTrainer
from spide_brian.training import ReferenceTrainer

from conftest import make_network

pytest.importorskip("Cython", reason="the cython target needs Cython")


@pytest.mark.long
def test_cython_target_matches_reference():
    """Two epochs with a test pass after each: the trainer's one model reruns with the
    tables written into the arrays its compiled code objects read."""
    config, params = make_network((6, 5), n_inputs=7, n_classes=3, batch_size=3, time_step=6,
                                  time_step_back=10, leaky=0.9, timing="brian")
    rng = np.random.default_rng(3)
    x, y = rng.uniform(0, 1, (7, 7)), rng.integers(0, 3, 7)
    reference = ReferenceTrainer(config, params)
    brian = BrianTrainer(config, params, device="cython")
    for epoch in range(2):
        order = rng.permutation(len(x))
        expected = reference.train_epoch(x[order], y[order], epoch)
        got = brian.train_epoch(x[order], y[order], epoch)
        assert got["forward_spikes"] == expected["forward_spikes"]
        assert got["backward_spikes"] == expected["backward_spikes"]
        for name, value in reference.params.items():
            np.testing.assert_allclose(brian.params[name], value, rtol=1e-9, atol=1e-14,
                                       err_msg=name)
        np.testing.assert_array_equal(brian.evaluate(x, y)["predictions"],
                                      reference.evaluate(x, y)["predictions"])
