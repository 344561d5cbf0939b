"""One epoch-totals accumulator: both trainers report the same keys, computed the same way."""
import numpy as np
import pytest

from spide_brian import reference
from spide_brian.config import SPIDEConfig
from spide_brian.parameters import init_parameters
from spide_brian.tally import EpochTally, cross_entropy_sum
from spide_brian.training import ReferenceTrainer

TRAIN_KEYS = {"loss_sum", "correct", "samples", "forward_spikes", "backward_spikes",
              "operations", "firing"}
EVAL_KEYS = {"loss_sum", "correct", "samples", "forward_spikes", "operations", "predictions"}


def _small():
    config = SPIDEConfig(hidden_sizes=(12,), time_step=6, time_step_back=8, batch_size=4)
    rng = np.random.default_rng(3)
    x = rng.random((10, 5))
    y = rng.integers(0, 3, 10)
    return config, init_parameters(config, 5, 3, seed=1), x, y


def test_cross_entropy_sum_matches_definition():
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    assert cross_entropy_sum(p, [0, 2]) == pytest.approx(-(np.log(0.7) + np.log(0.8)))


def test_reference_trainer_totals_add_up_batch_by_batch():
    config, params, x, y = _small()
    trainer = ReferenceTrainer(config, params)
    start = {k: v.copy() for k, v in trainer.params.items()}
    got = trainer.train_epoch(x, y)
    assert set(got) == TRAIN_KEYS
    # the same batches by hand: loss and accuracy at the weights each batch saw
    optimizer = reference.SGDMomentum(config)
    params = start
    loss, correct, fwd, bwd = 0.0, 0, 0, 0
    for s in range(0, len(y), config.batch_size):
        result, out = reference.train_batch(params, config, optimizer, x[s:s + 4], y[s:s + 4])
        loss += out.loss * len(y[s:s + 4])
        correct += int(np.sum(out.probabilities.argmax(axis=1) == y[s:s + 4]))
        fwd += int(sum(c.sum() for c in result.forward.counts))
        bwd += int(sum(c.sum() for c in result.backward.spike_counts))
    assert got["samples"] == len(y)
    assert got["correct"] == correct
    assert got["loss_sum"] == pytest.approx(loss, rel=1e-12)
    assert (got["forward_spikes"], got["backward_spikes"]) == (fwd, bwd)
    assert fwd > 0 and bwd > 0


def test_reference_evaluation_has_loss_and_predictions():
    config, params, x, y = _small()
    got = ReferenceTrainer(config, params).evaluate(x, y, batch=3)
    assert set(got) == EVAL_KEYS
    logits, _ = reference.predict(prepare(params, config), config, x)
    np.testing.assert_array_equal(got["predictions"], logits.argmax(axis=1))
    assert got["correct"] == int(np.sum(logits.argmax(axis=1) == y))
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    assert got["loss_sum"] == pytest.approx(-log_p[np.arange(len(y)), y].sum(), rel=1e-9)


def prepare(params, config):
    from spide_brian.parameters import prepare_parameters
    return prepare_parameters(params, config)


def test_training_tally_refuses_missing_backward_counts():
    config, params, x, y = _small()
    tally = EpochTally(config)
    with pytest.raises(ValueError, match="backward spike counts"):
        tally.add(params, x[:4], y[:4], np.full((4, 3), 1 / 3), [np.zeros((4, 12))])
