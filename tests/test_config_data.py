"""Configuration round-trip and validation; the embedded digits dataset."""
import numpy as np
import pytest

from spide_brian.config import ConfigError, SPIDEConfig
from spide_brian.datasets import DataError, Dataset, load_dataset


def test_config_json_round_trip():
    config = SPIDEConfig(hidden_sizes=(30, 20), leaky=0.9, reset="standard", seed=7)
    assert SPIDEConfig.from_json(config.to_json()) == config


@pytest.mark.parametrize("change,field", [
    (dict(leaky=0.0), "leaky"), (dict(time_step=0), "time_step"), (dict(vth=float("nan")), "vth"),
    (dict(reset="soft"), "reset"), (dict(hidden_sizes=()), "hidden_sizes"),
    (dict(hidden_init="xavier"), "hidden_init"), (dict(lr=-1.0), "lr"),
])
def test_invalid_config_names_the_field(change, field):
    with pytest.raises(ConfigError, match=field):
        SPIDEConfig(**change)


def test_couple_neuron_choices_and_their_leak():
    lif = SPIDEConfig(leaky=0.9, time_step_back=20)
    if_couples = lif.replace(couple_neuron="if")
    assert (lif.step_leak_back, if_couples.step_leak_back) == (0.9, 1.0)
    assert if_couples.rate_norm_back == 20 and lif.rate_norm_back < 20
    assert if_couples.rate_norm == lif.rate_norm        # the forward neurons keep their leak
    with pytest.raises(ConfigError, match="couple_neuron must be one of lif, if"):
        SPIDEConfig(couple_neuron="IF")
    with pytest.raises(ConfigError, match="couple_neuron 'if' needs membrane 'discrete'"):
        SPIDEConfig(couple_neuron="if", membrane="volts")


def test_unknown_config_field_is_an_error():
    with pytest.raises(ConfigError, match="unknown"):
        SPIDEConfig.from_dict({"time_steps": 3})


def test_derived_thresholds():
    modified = SPIDEConfig(vth=1.0, vth_back=0.5)
    assert (modified.threshold, modified.reset_amount) == (1.0, 2.0)
    assert (modified.threshold_back, modified.reset_amount_back) == (0.5, 1.0)
    standard = modified.replace(reset="standard")
    assert (standard.threshold, standard.threshold_back) == (2.0, 1.0)


def test_digits_split_and_scaling():
    data = load_dataset("digits")
    assert data.x_train.shape == (1437, 64) and data.x_test.shape == (360, 64)
    assert data.x_train.min() == 0.0 and data.x_train.max() == 1.0
    from sklearn.datasets import load_digits

    np.testing.assert_array_equal(data.y_test, load_digits().target[1437:])
    assert load_dataset("digits", limit=10).x_train.shape == (10, 64)


def test_dataset_errors():
    with pytest.raises(DataError, match="unknown dataset"):
        load_dataset("imagenet")
    with pytest.raises(DataError, match="labels"):
        Dataset("bad", np.zeros((2, 3)), np.array([0, 5]), np.zeros((1, 3)), np.array([0]), 3, (3,))
    with pytest.raises(DataError, match="2 train inputs but 3 labels"):
        Dataset("bad", np.zeros((2, 3)), np.zeros(3, int), np.zeros((1, 3)), np.zeros(1, int), 3,
                (3,))


@pytest.mark.parametrize("change,message", [
    (dict(time_step=2.5), "time_step must be an integer"),
    (dict(batch_size=True), "batch_size must be an integer"),
    (dict(epochs="3"), "epochs must be an integer"),
    (dict(lr="0.1"), "lr must be a number"),
    (dict(vth=True), "vth must be a number"),
    (dict(feedback="no"), "feedback must be true or false"),
    (dict(feedback=1), "feedback must be true or false"),
    (dict(hidden_sizes=(1.5,)), "hidden_sizes must be a tuple of integers"),
    (dict(hidden_sizes=(True,)), "hidden_sizes must be a tuple of integers"),
    (dict(hidden_sizes=400), "hidden_sizes must be a tuple of integers"),
    (dict(reset=1), "reset must be a string"),
    (dict(seed=-1), "seed must be >= 0"),
])
def test_config_checks_types(change, message):
    with pytest.raises(ConfigError, match=message):
        SPIDEConfig(**change)


def test_config_accepts_ints_for_floats_and_lists_for_sizes():
    config = SPIDEConfig(lr=1, vth=2, hidden_sizes=[30, np.int64(20)], seed=np.int64(3))
    assert config.lr == 1.0 and isinstance(config.lr, float) and isinstance(config.vth, float)
    assert config.hidden_sizes == (30, 20) and type(config.seed) is int
    assert SPIDEConfig.from_json(config.to_json()) == config
