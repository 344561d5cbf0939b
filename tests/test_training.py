"""The training driver reports the same statistics for both backends."""
import numpy as np
import pytest

from spide_brian.brian_backend import BrianTrainer
from spide_brian.datasets import load_dataset
from spide_brian.training import ReferenceTrainer, Trainer, train

from conftest import make_network


def test_backends_report_equal_firing_statistics_and_energy():
    data = load_dataset("digits", limit=16)
    config, params = make_network((12,), n_inputs=64, n_classes=10, batch_size=8,
                                  time_step=8, time_step_back=16, epochs=1, timing="brian")
    reference = train(config, data, trainer=ReferenceTrainer(config, params))[0]
    brian = train(config, data, trainer=BrianTrainer(config, params, device="numpy"))[0]
    assert reference.test_accuracy == brian.test_accuracy
    assert reference.layers == brian.layers
    assert reference.train_energy_pj == pytest.approx(brian.train_energy_pj, rel=1e-12)
    assert reference.test_energy_pj == pytest.approx(brian.test_energy_pj, rel=1e-12)
    assert np.isfinite(brian.train_energy_pj) and brian.train_energy_pj > 0


def test_both_backends_are_trainers():
    config, params = make_network((5,), n_inputs=64, n_classes=10)
    assert isinstance(ReferenceTrainer(config, params), Trainer)
    assert isinstance(BrianTrainer(config, params, device="numpy"), Trainer)
    assert not isinstance(object(), Trainer)


def test_rates_of_a_named_model_count_all_its_neurons():
    """The epoch's forward and backward rates are per spiking neuron of the network (every
    layer of a named model, not ``hidden_sizes``): the neuron-weighted mean of the layers'."""
    from spide_brian.config import SPIDEConfig
    from spide_brian.parameters import init_parameters
    from spide_brian.topology import Topology

    data = load_dataset("digits", limit=24)
    config = SPIDEConfig(model="mnist-conv-f-small", batch_size=8, time_step=8,
                         time_step_back=12, epochs=1, hidden_sizes=(3,))
    params = init_parameters(config, 64, 10)
    record = train(config, data, trainer=ReferenceTrainer(config, params))[0]
    sizes = [layer.size for layer in Topology.from_config(config, 64, 10).layers]
    assert sum(sizes) != 3 and len(record.layers) == len(sizes)
    for field in ("forward_rate", "backward_rate"):
        mean = sum(getattr(layer, field) * size
                   for layer, size in zip(record.layers, sizes)) / sum(sizes)
        assert getattr(record, field) == pytest.approx(mean, rel=1e-12)
    assert 0.0 < record.forward_rate <= 1.0
