r"""Sizes of a network as the Brian2 model would hold it: neurons, synapses, parameters and
the memory of its state on each device (``spide-brian info --model NAME``).

The Brian2 model of a network holds, per spiking layer, a forward neuron group, two couple
halves and their one-to-one synapses (mirrors, coupled resets), and per connection one
Synapses object per *weight copy* (the forward copy, a transposed copy per couple half, the
copy whose ``w*w`` gives a feedback weight's norm; the readout's forward and gradient
copies). Where the device holds each weight once, the copies are views without a weight of
their own and a parameter group holds one element per synapse (with its gradient and
momentum); its bytes count per synapse of the connection, as do the synapses that sum the
norm of a feedback weight from its elements. What a device's restrictions add to them (:mod:`spide_brian.routes`) changes the
bytes per neuron and per synapse, not the counts.

The bytes are measured, not assumed: :func:`state_bytes` builds the model of a small dense
network with every role (input, forward, feedback, readout) for the device's capabilities
and adds up the arrays each object owns (state variables and synapse indices, with their
dtypes), per neuron of a layer, per input, per class and per synapse of each role's copies;
each pathway (``on_pre``) adds 4 bytes per synapse for its per-source synapse lists.
:func:`footprint` multiplies them by a network's counts:

.. math::

    M = \sum_l n_l\, b_{neuron} + n_{in} b_{input} + n_{cls} b_{class}
        + \sum_c S_c \sum_{k \in copies(c)} b_k
        + \sum_{r \in restricted} (b_{norm} + n_{post(r)} b_{post} + n_{pre(r)} b_{pre})

(:math:`S_c` synapses per copy of connection :math:`c`; a restricted connection's norm is a
one-neuron group summed from its post layer and copied back to both layers). Not counted: monitors and the
per-sample input tables (they grow with the samples of a run), the compiled code, and the
device's own overhead (the Python interpreter; a GPU's context).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from .config import SPIDEConfig
from .devices import CAPABILITIES, capabilities

__all__ = ["StateBytes", "state_bytes", "LayerSize", "Footprint", "footprint",
           "EVENT_LIST_BYTES"]

#: Bytes per synapse of each pathway's per-source synapse lists (one 32-bit index).
EVENT_LIST_BYTES = 4

#: Roles of connections whose copies are measured; a network's connection takes the role of
#: its place (see :func:`_role`).
ROLES = ("input", "forward", "feedback", "readout")

#: The probe network: two layers with feedback (every role), a few neurons each.
_PROBE = dict(hidden_sizes=(4, 3), feedback=True)
_PROBE_INPUTS, _PROBE_CLASSES = 5, 2


@dataclass(frozen=True)
class StateBytes:
    """Bytes of the Brian2 model's state on one device.

    Attributes
    ----------
    per_neuron : int
        Per neuron of a spiking layer (its forward neuron, couple halves and their one-to-one
        synapses).
    per_input, per_class : int
        Per input (the input group) and per class (readout neurons and the normaliser's
        synapses).
    per_synapse : dict
        ``{role: [bytes per synapse of each copy]}``.
    fixed : int
        The readout's one-neuron normaliser.
    norm_fixed, norm_per_post, norm_per_pre : int
        Per restricted (feedback) connection: its norm's one-neuron group, and per neuron of
        its post and of its pre layer the synapses that sum the norm and copy it back.
    """

    device: str
    per_neuron: int
    per_input: int
    per_class: int
    per_synapse: dict
    fixed: int = 0
    norm_fixed: int = 0
    norm_per_post: int = 0
    norm_per_pre: int = 0


def _owned_bytes(obj):
    """Bytes of the arrays ``obj`` owns, per element (neuron or synapse)."""
    from brian2.core.variables import ArrayVariable

    total = 0
    for variable in obj.variables.values():
        if (isinstance(variable, ArrayVariable) and not variable.scalar
                and getattr(variable.owner, "name", None) == obj.name
                and variable.size == len(obj)):
            total += np.dtype(variable.dtype).itemsize
    return total


def _role(connection):
    if connection.is_input:
        return "input"
    if connection.is_readout:
        return "readout"
    return "feedback" if connection.restriction is not None else "forward"


def _construction_key(caps):
    """Fields of the capabilities that change what the model builds."""
    return (caps.slow_clock_summed, caps.synaptic_rr_reads_groups, caps.batch_clock_update,
            caps.event_reads_source, caps.event_delivery_steps, caps.shared_parameters)


#: Measured :class:`StateBytes` per construction key (see :func:`_construction_key`) and
#: floating-point type.
_MEASURED = {}


def _measure(caps, float_dtype="float64"):
    from brian2 import NeuronGroup, Synapses, prefs

    from .network import SPIDENetwork

    config = SPIDEConfig(**_PROBE, float_dtype=float_dtype)
    target = prefs.codegen.target
    prefs.codegen.target = "numpy"        # the probe runs nothing: no compiled connect()
    try:
        network = SPIDENetwork(config, _PROBE_INPUTS, _PROBE_CLASSES, capacity=1,
                               device=caps, record=False, name="probe")
    finally:
        prefs.codegen.target = target
    network.discard()
    copies = {copy.synapses.name: parameter
              for parameter, group in network.copies.items() for copy in group}
    held = {shared.group.name: parameter for parameter, shared in network.shared.items()}
    roles = {c.parameter: _role(c) for c in network.topology.connections}
    per_synapse = {role: [] for role in ROLES}
    layer_bytes = input_bytes = class_bytes = fixed = 0
    norm = {"group": 0, "post": 0, "pre": 0}
    (restricted,) = network.topology.restricted
    norm_sizes = {"post": network.topology.layers[restricted.post].size,
                  "pre": network.topology.layers[restricted.pre].size}
    norm_name = network.feedback_norm_group.name
    norm_parts = {norm_name: "group", f"{norm_name}_sum": "post", f"{norm_name}_copy0": "post",
                  f"{norm_name}_copy1": "pre"}
    layer_neurons = sum(layer.size for layer in network.topology.layers)
    for obj in network.objects:
        if not isinstance(obj, (NeuronGroup, Synapses)):
            continue
        size = len(obj)
        owned = _owned_bytes(obj) * size
        if isinstance(obj, Synapses):
            owned += EVENT_LIST_BYTES * size * len(obj._pathways)
        if obj.name in copies:
            per_synapse[roles[copies[obj.name]]].append(owned // size)
        elif obj.name in held:
            # a weight held once: its parameter group has one element per synapse
            per_synapse[roles[held[obj.name]]].append(owned // size)
        elif obj.name == f"{norm_name}_sum" and restricted.parameter in network.shared:
            # the norm of a weight held once is summed from its elements
            per_synapse[roles[restricted.parameter]].append(owned // size)
        elif obj.name.startswith("probe_layer"):
            layer_bytes += owned
        elif obj.name.startswith("probe_input"):
            input_bytes += owned
        elif obj.name.startswith(("probe_output", "probe_readout")):
            class_bytes += owned
        elif obj.name in norm_parts:
            norm[norm_parts[obj.name]] += owned
        else:
            fixed += owned
    return StateBytes(device=caps.name, per_neuron=layer_bytes // layer_neurons,
                      per_input=input_bytes // _PROBE_INPUTS,
                      per_class=class_bytes // _PROBE_CLASSES, per_synapse=per_synapse,
                      fixed=fixed, norm_fixed=norm["group"],
                      norm_per_post=norm["post"] // norm_sizes["post"],
                      norm_per_pre=norm["pre"] // norm_sizes["pre"])


def state_bytes(device, float_dtype="float64"):
    """The :class:`StateBytes` of the Brian2 model on ``device`` with state of
    ``float_dtype`` (:attr:`SPIDEConfig.float_dtype`), measured once per construction and
    type: devices whose capabilities build the same objects share one probe."""
    caps = capabilities(device)
    key = (_construction_key(caps), float_dtype)
    if key not in _MEASURED:
        _MEASURED[key] = _measure(caps, float_dtype)
    return replace(_MEASURED[key], device=caps.name)


@dataclass(frozen=True)
class LayerSize:
    """One row of a :class:`Footprint`: a spiking layer with its incoming connections (the
    readout is a row of its own)."""

    name: str
    neurons: int
    synapses: int
    parameters: int
    kinds: tuple
    memory: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Footprint:
    """Per-layer and total sizes of a network (see :func:`footprint`)."""

    rows: tuple
    devices: tuple

    @property
    def neurons(self):
        """Spiking neurons (the readout's are not spiking)."""
        return sum(row.neurons for row in self.rows if row.name != "readout")

    @property
    def synapses(self):
        return sum(row.synapses for row in self.rows)

    @property
    def parameters(self):
        return sum(row.parameters for row in self.rows)

    def memory(self, device):
        return sum(row.memory[device] for row in self.rows)


def footprint(topology, devices=None, float_dtype="float64"):
    """Neurons, synapses per weight copy, parameters and per-device state bytes of each
    spiking layer of ``topology`` (with the connections into it; the readout last), for
    the model's state in ``float_dtype``.

    A layer's memory is its neurons' bytes plus, for each incoming connection, its synapses
    times the bytes of all copies of that connection's role; the input neurons are counted
    with layer 0 and the readout neurons with the readout. ``devices`` defaults to every
    device of the capability table.
    """
    devices = tuple(devices or CAPABILITIES)
    measured = {device: state_bytes(device, float_dtype) for device in devices}
    shapes = topology.parameter_shapes()
    counts = {c.parameter: c.kind.synapse_count(c.shape) for c in topology.connections}
    rows = []
    targets = [(layer.name, layer.index, layer.size) for layer in topology.layers]
    targets.append(("readout", topology.readout.post, topology.n_classes))
    for name, index, neurons in targets:
        incoming = [c for c in topology.connections if c.post == index]
        synapses = sum(counts[c.parameter] for c in incoming)
        if index == topology.readout.post:
            parameters = math.prod(shapes[topology.readout.parameter]) + topology.n_classes
        else:
            parameters = (sum(math.prod(shapes[c.parameter]) for c in incoming)
                          + topology.layers[index].bias_size)
        memory = {}
        for device, sizes in measured.items():
            total = sum(counts[c.parameter] * sum(sizes.per_synapse[_role(c)])
                        for c in incoming)
            if index == topology.readout.post:
                total += neurons * sizes.per_class + sizes.fixed
            else:
                total += neurons * sizes.per_neuron
                if index == topology.input.post:
                    total += topology.n_inputs * sizes.per_input
                for restricted in topology.restricted:
                    if restricted.post == index:
                        total += sizes.norm_fixed + neurons * sizes.norm_per_post
                    if restricted.pre == index and restricted.pre != restricted.post:
                        total += neurons * sizes.norm_per_pre
            memory[device] = int(total)
        rows.append(LayerSize(name, int(neurons), int(synapses), int(parameters),
                              tuple(c.kind.name for c in incoming), memory))
    return Footprint(tuple(rows), devices)
