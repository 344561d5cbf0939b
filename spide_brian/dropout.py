r"""Dropout of the spiking layers' inputs: one mask per training sample and connection.

As in the method's reference code, dropout multiplies the current a connection delivers to
its post layer by a mask ``D`` drawn once per sample, ``D_j = [u_j >= p] / (1 - p)`` with
``u_j`` uniform in ``[0, 1)``; the mask stays fixed over the forward and the backward stage
of that sample. With dropout the forward currents are

.. math::

    I_0 = D_F \odot (F x + b_0) + D_{fb} \odot (W_{fb} s_{N-1}), \qquad
    I_l = D_{l-1} \odot (W_{l-1} s_{l-1} + b_l)

(a layer's bias joins the current of its first incoming connection: the input for layer
0), the couples' spikes reach the previous layer as ``W^T (D \odot s^b) / V``, and the
local gradients carry the mask of their connection, ``dW = (D \odot m \odot \beta)^T a / V``
(docs/method.md M4, "Dropout"). The readout is never dropped, and evaluation uses no masks.

The masks are a function of ``(seed, epoch, mini-batch)`` only, so both backends, a run cut
into several simulation runs and a resumed run all draw the same ones.
"""
from __future__ import annotations

import numpy as np

__all__ = ["dropped_connections", "dropout_masks", "bias_connection", "drop_probability",
           "drops_any"]

#: Extra word of the random stream of the masks (apart from initialisation and shuffling).
_STREAM = 0xD20


def dropped_connections(topology):
    """Connections whose current is dropped: the input and the spiking connections, in
    the topology's order (the order in which masks are drawn)."""
    return (topology.input,) + tuple(topology.spiking)


def bias_connection(topology, layer):
    """The connection whose current the bias of ``layer`` joins (and whose mask it shares):
    the input for the input's layer, else the first incoming spiking connection."""
    if layer == topology.input.post:
        return topology.input
    incoming = topology.incoming(layer)
    if not incoming:
        raise ValueError(f"layer {layer} has no incoming connection for its bias")
    return incoming[0]


def drop_probability(config, connection):
    """``p`` of ``connection``: its own (a named model may fix one, e.g. LeNet's dense
    layer), else the config's ``dropout``."""
    own = connection.dropout
    return float(config.dropout if own is None else own)


def drops_any(config, topology):
    """Whether any connection of ``topology`` drops its current (the config's ``dropout``
    or a probability the named model fixes)."""
    return any(drop_probability(config, c) > 0 for c in dropped_connections(topology))


def dropout_masks(config, topology, epoch, start, stop):
    """Masks of the training samples ``start .. stop-1`` (positions in epoch ``epoch``'s
    order, counted from 0).

    Parameters
    ----------
    config : SPIDEConfig
        ``dropout`` (``p``, where a connection does not fix its own), ``seed`` and
        ``batch_size`` are used.
    topology : Topology
    epoch : int
        Epoch index (0 first).
    start, stop : int
        Sample range.

    Returns
    -------
    dict or None
        ``{connection parameter: (stop - start, n_post) float64}`` with values 0 and
        ``1 / (1 - p)``; None when ``p = 0`` for every connection.

    Notes
    -----
    Mini-batch ``k`` (samples ``kB .. kB+B-1``) draws its masks from a generator seeded
    with ``(seed, epoch, k)``, one ``(B, n_post)`` block per connection in
    :func:`dropped_connections` order.
    """
    connections = dropped_connections(topology)
    rates = {c.parameter: drop_probability(config, c) for c in connections}
    if not any(rates.values()):
        return None
    if not 0 <= start <= stop:
        raise ValueError(f"sample range must satisfy 0 <= start <= stop; got {start}, {stop}")
    batch = int(config.batch_size)
    first, last = start // batch, -(-stop // batch)
    blocks = {c.parameter: [] for c in connections}
    for index in range(first, last):
        rng = np.random.default_rng([int(config.seed), int(epoch), index, _STREAM])
        for connection in connections:
            size = topology.layers[connection.post].size
            p = rates[connection.parameter]
            keep = rng.random((batch, size)) >= p
            blocks[connection.parameter].append(np.where(keep, 1.0 / (1.0 - p), 0.0))
    if stop == start:
        return {c.parameter: np.zeros((0, topology.layers[c.post].size)) for c in connections}
    offset = start - first * batch
    return {name: np.concatenate(parts)[offset:offset + stop - start]
            for name, parts in blocks.items()}
