"""Sizes of a network as the Brian2 model holds it (``spide-brian info --model``): synapse
counts against the synapses the model builds, and the per-role byte counts against the
arrays of a built model of another size."""
import pytest

from spide_brian.cli import main
from spide_brian.config import SPIDEConfig
from spide_brian.devices import capabilities
from spide_brian.footprint import EVENT_LIST_BYTES, _owned_bytes, footprint
from spide_brian.network import SPIDENetwork
from spide_brian.topology import Topology


@pytest.mark.parametrize("device,float_dtype", [("cpp_standalone", "float64"),
                                                ("genn", "float64"),
                                                ("cpp_standalone", "float32")])
def test_footprint_scales_to_the_arrays_of_a_built_model(device, float_dtype):
    """Bytes per neuron and per synapse come from a 4-3 probe; a 7-5-6 chain built for the
    same device and floating-point type must hold exactly what they predict."""
    from brian2 import NeuronGroup, Synapses, prefs

    config = SPIDEConfig(hidden_sizes=(7, 5, 6), float_dtype=float_dtype)
    target = prefs.codegen.target
    prefs.codegen.target = "numpy"        # nothing runs: no compiled connect()
    try:
        network = SPIDENetwork(config, 9, 4, capacity=1, device=capabilities(device),
                               record=False, name="check")
    finally:
        prefs.codegen.target = target
    network.discard()
    built = 0
    for obj in network.objects:
        if isinstance(obj, (NeuronGroup, Synapses)):
            built += _owned_bytes(obj) * len(obj)
            if isinstance(obj, Synapses):
                built += EVENT_LIST_BYTES * len(obj) * len(obj._pathways)
    sizes = footprint(network.topology, [device], float_dtype=float_dtype)
    assert sizes.memory(device) == built
    if float_dtype == "float32":
        # the float arrays shrink by half; indices and event lists stay 32-bit
        double = footprint(network.topology, [device]).memory(device)
        assert double / 2 < built < double
    # synapses per copy: what each copy of the built model connects
    for connection in network.topology.connections:
        for copy in network.copies[connection.parameter]:
            assert len(copy.i) == connection.kind.synapse_count(connection.shape)


def test_named_model_sizes_match_the_published_counts():
    topology = Topology.from_config(SPIDEConfig(model="mnist-conv-f"), 28 * 28, 10)
    sizes = footprint(topology, ["cpp_standalone"])
    assert sizes.neurons == 18_816 and sizes.parameters == 274_826
    assert [row.name for row in sizes.rows] == ["layer0", "layer1", "layer2", "readout"]
    # layer 0 receives the input convolution and the transposed-convolution feedback
    assert sizes.rows[0].kinds == ("conv2d", "conv_transpose2d")
    assert sizes.synapses == sum(c.kind.synapse_count(c.shape) for c in topology.connections)
    assert all(row.memory["cpp_standalone"] > 0 for row in sizes.rows)


def test_info_prints_a_model_per_layer_and_in_total(capsys):
    assert main(["info", "--model", "mnist-local-f-small"]) == 0
    out = capsys.readouterr().out
    assert "1x8x8 inputs" in out
    lines = [line.split() for line in out.splitlines()]
    total = next(line for line in lines if line and line[0] == "total")
    layers = [line for line in lines if line and line[0].startswith("layer")
              and line[0] != "layer"]
    assert len(layers) == 3
    assert int(total[1].replace(",", "")) == sum(int(line[2].replace(",", ""))
                                                 for line in layers)
    assert "locally_connected2d" in out and "cpp_standalone" in out


def test_info_of_an_unknown_model_or_side_is_one_line(capsys):
    assert main(["info", "--model", "nope"]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err
    assert main(["info", "--model", "mnist-lenet", "--input-side", "3"]) == 2
    assert "cannot take 3 x 3 inputs" in capsys.readouterr().err
