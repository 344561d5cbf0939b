"""Learning-rate schedules: milestone decay and linear warm-up, the same on both backends."""
import numpy as np
import pytest

from spide_brian.brian_backend import BrianTrainer
from spide_brian.config import ConfigError, SPIDEConfig
from spide_brian.schedule import SampleTables
from spide_brian.training import ReferenceTrainer

from test_brian_model import STRUCTURES, make_case


def test_learning_rate_follows_milestones_and_warmup():
    config = SPIDEConfig(lr=0.05, lr_milestones=(2, 4), lr_decay=0.1, warmup_iterations=4)
    assert config.learning_rate(0, 0) == pytest.approx(0.05 / 4)
    assert config.learning_rate(0, 3) == pytest.approx(0.05)
    assert config.learning_rate(1, 10) == pytest.approx(0.05)
    assert config.learning_rate(2, 20) == pytest.approx(0.005)
    assert config.learning_rate(3, 30) == pytest.approx(0.005)
    assert config.learning_rate(4, 40) == pytest.approx(0.0005)
    # 10 samples in batches of 4: 3 mini-batches per epoch; epoch 1 holds iterations 3..5
    config = config.replace(batch_size=4, scale_factor=10.0)
    rates = config.sgd_learning_rates(1, 10)
    assert rates == [config.learning_rate(1, i) / 10.0 for i in (3, 4, 5)]
    assert config.scheduled and not SPIDEConfig().scheduled


@pytest.mark.parametrize("changes, field", [
    (dict(lr_milestones=(3, 2)), "lr_milestones"), (dict(lr_milestones=(0,)), "lr_milestones"),
    (dict(lr_milestones=(1.5,)), "lr_milestones"), (dict(lr_decay=0.0), "lr_decay"),
    (dict(warmup_iterations=-1), "warmup_iterations")])
def test_bad_schedules_are_refused(changes, field):
    with pytest.raises(ConfigError, match=field):
        SPIDEConfig(**changes)


def test_schedule_survives_serialisation():
    config = SPIDEConfig(lr_milestones=[30, 60, 90], warmup_iterations=400)
    assert SPIDEConfig.from_json(config.to_json()) == config
    assert config.lr_milestones == (30, 60, 90)


def test_tables_carry_each_mini_batch_rate_at_its_commit_slot():
    config = SPIDEConfig(batch_size=3)
    tables = SampleTables.build(np.zeros((8, 2)), np.zeros(8), 9, config, [0.1, 0.2, 0.3])
    assert np.flatnonzero(tables.update).tolist() == [3, 6, 9]
    assert tables.rate[[3, 6, 9]].tolist() == [0.1, 0.2, 0.3]
    assert tables.rate.sum() == pytest.approx(0.6)
    with pytest.raises(ValueError, match="2 learning rates for 3 mini-batches"):
        SampleTables.build(np.zeros((8, 2)), np.zeros(8), 9, config, [0.1, 0.2])


@pytest.mark.parametrize("capacity,structure", [
    pytest.param(None, "chain", id="None-chain"),
    pytest.param(None, "one_layer", id="None-one_layer"),
    # chunked runs of the chain: a minute; the one-layer case chunks too
    pytest.param(4, "chain", id="4-chain", marks=pytest.mark.long),
    pytest.param(4, "one_layer", id="4-one_layer"),
])
def test_scheduled_epochs_match_the_reference(structure, capacity):
    """Two epochs with warm-up over 4 mini-batches and a decay from epoch 1: the Brian2
    model (rates from the per-slot table, changing inside a run; also across chunks)
    computes the reference's weights."""
    config, params, x, y = make_case(STRUCTURES[structure], 1.0, "modified")
    config = config.replace(lr_milestones=(1,), lr_decay=0.3, warmup_iterations=4)
    reference = ReferenceTrainer(config, params)
    brian = BrianTrainer(config, params, device="numpy", capacity=capacity)
    plain = ReferenceTrainer(config.replace(lr_milestones=(), warmup_iterations=0), params)
    for epoch in range(2):
        reference.train_epoch(x, y, epoch)
        brian.train_epoch(x, y, epoch)
        plain.train_epoch(x, y, epoch)
    for name, value in reference.params.items():
        np.testing.assert_allclose(brian.params[name], value, rtol=1e-9,
                                   atol=1e-12 * np.abs(value).max())
    moved = [not np.allclose(plain.params[n], v) for n, v in reference.params.items()]
    assert any(moved), "the schedule must change the result"
