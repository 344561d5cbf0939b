r"""Numpy reference implementation of SPIDE: the test oracle and the fast CPU baseline.

Vectorised over a batch, float64, as docs/method.md states the method (M1-M4, M7).

Forward (IF, ``lambda = 1``; LIF multiplies the post-reset membrane by ``lambda``):

.. math::

    v_l[t] = \lambda v_l[t-1] + I_l[t], \quad s_l[t] = [v_l[t] \ge \theta], \quad
    v_l[t] \leftarrow v_l[t] - V s_l[t]

with ``I_0[t] = F x[t] + b_0 + W_fb s_{N-1}[t-1]`` and ``I_l[t] = W_{l-1} s_{l-1}[t'] + b_l``.
``t' = t`` in the ``'reference'`` timing (feed-forward hops within a step, as the PyTorch
code) and ``t' = t-1`` in the ``'brian'`` timing (every synaptic hop one step late, as Brian2's
default schedule). The rate is ``a = (1/T) sum_t s[t]`` (LIF: leak-weighted, docs/method.md M1) and
the surrogate derivative ``m = [0 < a < 1]``.

Backward: one ternary neuron (couple) per forward neuron, threshold ``theta_b``, spikes
``s^b = M (p - n)`` with unit spikes ``p, n in {0, 1}`` of its positive and negative half and
magnitude ``M = 2 V_th^b``. A spike moves the membrane by ``-s^b``, adds ``s^b`` to the
couple's (leak-weighted) sum and reaches the previous layer as ``s^b`` through the transposed
weights scaled by ``1/V``; the couple at the last layer is driven by the constant gradient
current ``g``:

.. math::

    u_{N-1} \mathrel{+}= g + W_{fb}^\top s^b_0[t-1] / V, \qquad
    u_l \mathrel{+}= W_l^\top s^b_{l+1}[t'] / V, \qquad
    \beta_l = \frac{1}{T_b} \sum_t s^b_l[t]

(LIF: the membrane and the sum leak with ``lambda`` and the sum is divided by
:func:`rate_normaliser` instead of ``T_b``). The signed rate ``beta`` then solves the adjoint
system ``beta = g + J^T beta`` whatever ``M`` is; ``M`` only sets the resolution and the
saturation ``|beta| <= M``. One order of operations is shared with the Brian2 model:
events add ``w`` per unit spike and the summed input is multiplied by the gain ``M/V``
(:func:`backward_gain`); the sum adds ``M`` per positive spike and ``-M`` per negative one.
At the defaults (``M = 1``, ``V = 2``, gain 0.5) this is bit for bit the arithmetic of unit
spikes divided by ``V``. The spike counts
(``signed_counts``, ``spike_counts``) count unit spikes.

A couple fires only where its forward neuron has ``m = 1`` (the gate sits in the threshold).
The PyTorch code lets every ternary unit spike and multiplies ``beta`` by ``m`` afterwards;
since only ``beta * m`` is ever transmitted or used, the two give identical ``beta * m``,
gradients and weights. ``beta`` returned here is that gated quantity.

Gradients (docs/method.md M4), summed over the batch:
``dW_l = (beta_{l+1} m_{l+1})^T a_l / V``, ``dW_fb = (beta_0 m_0)^T a_{N-1} / V``,
``dF = (beta_0 m_0)^T xbar / V``, ``db_l = sum (beta_l m_l) / V``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .config import rate_normaliser
from .dropout import bias_connection
from .parameters import project_feedback
from .topology import Dense, Topology, topology_of
from .transfer import slope_of_rate

__all__ = [
    "ForwardResult", "BackwardResult", "ReadoutResult", "SPIDEResult",
    "forward", "backward", "readout", "spike_gradients", "forward_backward", "input_currents",
    "layer_current",
    "SGDMomentum", "train_batch", "predict", "rate_normaliser", "backward_gain",
    "ExponentialSynapse", "ConductanceSynapse",
]


@dataclass
class ForwardResult:
    """Forward stage of one batch: per layer, arrays of shape ``(B, n_l)``."""

    rates: list
    masks: list
    counts: list
    spikes: list = field(default=None, repr=False)  # per layer (T, B, n_l) bool if recorded
    #: per layer, the scale of the couples' input with the 'slope' gate (None: binary gate)
    slopes: list = field(default=None, repr=False)


@dataclass
class BackwardResult:
    """Backward stage of one batch: per layer, arrays of shape ``(B, n_l)``."""

    beta: list
    signed_counts: list
    spike_counts: list
    spikes: list = field(default=None, repr=False)  # per layer (T_b, B, n_l) int8 if recorded


@dataclass
class ReadoutResult:
    """Linear readout with softmax cross-entropy on the last layer's rates."""

    loss: float
    probabilities: np.ndarray
    error: np.ndarray          # p - onehot(label), (B, n_classes)
    gradient_current: np.ndarray  # g = kappa * error @ W_c, (B, n_{N-1})
    gradients: dict            # readout_weight, readout_bias (kappa-scaled)


@dataclass
class SPIDEResult:
    """One forward and one backward pass with its spike-based weight gradients."""

    forward: ForwardResult
    backward: BackwardResult
    gradients: dict


def backward_gain(config):
    """Gain ``M/V`` of the transposed input of the ternary couples.

    A couple's spike has magnitude ``M = 2 V_th^b`` and reaches the previous layer through
    the transposed weights divided by ``V = 2 V_th``: the sum of the weights of the unit
    spikes of a step is multiplied by this one constant (the numpy reference and the Brian2
    model use the same float64 value, :attr:`SPIDEConfig.backward_gain`; at the defaults it
    is 0.5).
    """
    return config.backward_gain


def _as_float(array, name):
    array = np.asarray(array, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def input_currents(params, topology, x, steps, integration_steps=1):
    """Per-step input current ``F x[t] + b`` of the input's layer (computed once for a
    static input), as a function of the integration step (frame ``t // integration_steps``
    of event frames ``(steps, B, n_in)``)."""
    connection = topology.input
    weight = params[connection.parameter]
    post = topology.layers[connection.post]
    bias = post.expand_bias(params[post.bias])
    propagate = connection.kind.propagate
    if x.ndim == 2:
        current = propagate(weight, x) + bias
        return lambda t: current
    if x.ndim != 3 or x.shape[0] != steps:
        raise ValueError(f"input must have shape (B, n_in) or (T={steps}, B, n_in); got {x.shape}")
    return lambda t: propagate(weight, x[t // integration_steps]) + bias


def _sum_terms(terms, start=None):
    """Sum of the currents ``terms``, in the topology's order, after ``start``."""
    drive = start
    for term in terms:
        drive = term if drive is None else drive + term
    return drive


def layer_current(params, topology, layer, activity, input_current, dropout=None,
                  synapse=None, share=1.0):
    """The forward current into ``layer``, in the one summation order every implementation
    uses: the input's layer gets ``F x + b`` and then the term of each incoming connection;
    any other layer the terms and then its bias.

    ``synapse`` (exponential or conductance synapses, :class:`ExponentialSynapse`,
    :class:`ConductanceSynapse`): the state of the layer's synapses, whose ``current``
    of the incoming spiking connections' activity stands for their terms. With dropout this
    needs one incoming spiking connection (one mask per neuron for the current, as in the
    Brian2 model).

    ``activity(connection)`` is the pre activity a connection delivers (spikes of this or
    the previous step, or rates); ``input_current()`` gives ``F x + b`` (called only for the
    input's layer). With ``dropout`` masks (:func:`spide_brian.dropout.dropout_masks`) each
    connection's current is multiplied by its mask, the bias inside the current it joins:
    ``D_F (F x + b) + D_c (W_c s)`` for the input's layer, ``D_c (W_c s + b)`` elsewhere.

    ``share``: the share ``1/K`` of the constant currents (``F x + b`` and the bias) that
    one integration step deposits (:attr:`SPIDEConfig.current_share`); spikes keep their
    whole weight.
    """
    constant = input_current

    def input_current():
        return _shared(share, constant())
    connections = topology.incoming(layer)
    if synapse is not None and connections:
        if dropout is not None and len(connections) > 1:
            raise ValueError(f"layer {layer} has {len(connections)} incoming spiking "
                             "connections: exponential or conductance synapses with dropout "
                             "need one per layer")
        terms = [synapse.current(params, connections, activity)]
        connections = connections[:1]
    else:
        terms = [c.kind.propagate(params[c.parameter], activity(c)) for c in connections]
    if dropout is None:
        if layer == topology.input.post:
            return _sum_terms(terms, input_current())
        owner_layer = topology.layers[layer]
        return _sum_terms(terms) + _shared(share, owner_layer.expand_bias(params[owner_layer.bias]))
    if layer == topology.input.post:
        start = dropout[topology.input.parameter] * input_current()
    else:
        owner = bias_connection(topology, layer)
        index = connections.index(owner)
        owner_layer = topology.layers[layer]
        terms[index] = terms[index] + _shared(share, owner_layer.expand_bias(params[owner_layer.bias]))
        start = None
    return _sum_terms((dropout[c.parameter] * term for c, term in zip(connections, terms)),
                      start)


def _shared(share, current):
    """``share`` of a constant ``current`` (itself for a whole step)."""
    return current if share == 1.0 else share * current


class ExponentialSynapse:
    r"""The current of a population's exponential synapses, one state per neuron.

    Each step, :math:`c \leftarrow \lambda_s c + (1 - \lambda_s) S` with ``S`` the summed
    synaptic input of the step (``synapse_step_leak`` and ``synapse_gain`` of the config): a
    spike's current decays geometrically and carries the charge of the delta synapse's
    one-step current. The state starts at 0 with each sample.
    """

    def __init__(self, config):
        self.leak, self.gain = config.synapse_step_leak, config.synapse_gain
        self.state = 0.0

    def __call__(self, summed):
        self.state = self.leak * self.state + self.gain * summed
        return self.state

    def current(self, params, connections, activity):
        """The current of the step from the incoming connections' delivered ``activity``."""
        return self(_sum_terms(c.kind.propagate(params[c.parameter], activity(c))
                               for c in connections))


class ConductanceSynapse:
    r"""Excitatory and inhibitory conductances of a population (docs/biophysics.md B5).

    A spike through a weight ``w > 0`` opens the excitatory conductance by ``w``, through
    ``w < 0`` the inhibitory one by ``|w|``; each decays by ``lambda_s`` per step with the
    charge normalisation of :class:`ExponentialSynapse`:

    .. math::

        g_e \leftarrow \lambda_s g_e + (1 - \lambda_s) [W]_+ s, \quad
        g_i \leftarrow \lambda_s g_i + (1 - \lambda_s) [-W]_+ s, \quad
        I = g_e (1 - v / E_e) - g_i (1 - v / E_i)

    with ``v`` the membrane before the step (set in :attr:`membrane`; 0 at the first step)
    and ``E_e``, ``E_i`` the reversal potentials above rest. At rest (``v = 0``) the current
    is that of the current-based synapse, ``W s``; the driving force makes excitation weaker
    and inhibition stronger as ``v`` rises. A learnt weight that changes sign moves from one
    conductance to the other. A fixed connection (pooling, whose weights are positive)
    opens excitatory conductances only.
    """

    def __init__(self, config):
        self.leak, self.gain = config.synapse_step_leak, config.synapse_gain
        self.inverse_exc = 1.0 / config.reversal_exc
        self.inverse_inh = 1.0 / config.reversal_inh
        self.excitatory = self.inhibitory = 0.0
        self.membrane = 0.0

    def current(self, params, connections, activity):
        """The synaptic current of the step from the connections' delivered ``activity``."""
        opened = _sum_terms(c.kind.propagate(np.maximum(params[c.parameter], 0.0), activity(c))
                            for c in connections)
        # a fixed connection (pooling) has positive weights: excitatory only
        inhibiting = _sum_terms((c.kind.propagate(np.maximum(-params[c.parameter], 0.0),
                                                  activity(c)) for c in connections
                                 if c.kind.learns), 0.0)
        self.excitatory = self.leak * self.excitatory + self.gain * opened
        self.inhibitory = self.leak * self.inhibitory + self.gain * inhibiting
        v = self.membrane
        return (self.excitatory * (1.0 - v * self.inverse_exc)
                - self.inhibitory * (1.0 - v * self.inverse_inh))


def _synapses(config, n_layers, stage="forward"):
    """The synapse state of each layer for ``stage`` (None per layer for delta synapses):
    exponential synapses act in both stages, conductances in the forward stage only."""
    if config.synapse == "exponential":
        return [ExponentialSynapse(config) for _ in range(n_layers)]
    if config.synapse == "conductance" and stage == "forward":
        return [ConductanceSynapse(config) for _ in range(n_layers)]
    return [None] * n_layers


def _arrival(connection, now, previous, same_step):
    """Activity of the sending layer that a connection delivers at this step: feedback one
    step late, feed-forward within the step in the ``'reference'`` timing."""
    return now if same_step and not connection.is_feedback else previous


def forward(params, config, x, record=False, topology=None, dropout=None, membrane=None):
    """Run the forward stage for ``T = config.time_step`` steps (``T K`` integration steps,
    :attr:`SPIDEConfig.integration_steps`).

    Parameters
    ----------
    params : dict
        Parameters as made by :func:`spide_brian.parameters.init_parameters`.
    config : SPIDEConfig
    x : ndarray
        Static input ``(B, n_in)`` (a constant current) or event frames ``(T, B, n_in)``.
    record : bool
        Also return every spike (memory ``T * B * sum(n_l)`` booleans).
    topology : Topology, optional
        Defaults to the chain of ``config`` (:func:`spide_brian.topology.topology_of`).
    dropout : dict, optional
        Per-connection masks ``(B, n_post)`` (:func:`spide_brian.dropout.dropout_masks`).
    membrane : dict, optional
        The membrane in volts (:meth:`spide_brian.biophysics.NeuronUnits.membrane_constants`
        and the step ``dt`` in seconds): the update that Brian2's exact integration of
        ``dv/dt = (v_rest - v)/tau_m`` generates (:class:`VoltsMembrane`). None: the
        discrete membrane.

    Returns
    -------
    ForwardResult
    """
    x = _as_float(x, "input")
    topology = topology or topology_of(config, params)
    steps, lam, share = config.forward_steps, config.step_leak, config.current_share
    membrane = DiscreteMembrane(config) if membrane is None else VoltsMembrane(membrane)
    refractory = config.held_steps
    batch = x.shape[-2]
    current = input_currents(params, topology, x, config.time_step, config.integration_steps)
    sizes = [layer.size for layer in topology.layers]
    v = [np.full((batch, n), membrane.rest) for n in sizes]
    counts = [np.zeros((batch, n)) for n in sizes]
    weighted = [np.zeros((batch, n)) for n in sizes]
    previous = [np.zeros((batch, n)) for n in sizes]
    since = [np.full((batch, n), np.inf) for n in sizes]   # steps since the last spike
    synapses = _synapses(config, len(sizes))
    recorded = [np.zeros((steps, batch, n), dtype=bool) for n in sizes] if record else None
    same_step = config.timing == "reference"
    for t in range(steps):
        now = [None] * len(sizes)

        def arriving(connection):
            return _arrival(connection, now, previous, same_step)[connection.pre]

        for layer in range(len(sizes)):
            if config.conductances:    # the driving force's membrane, before the step
                synapses[layer].membrane = membrane.model_value(v[layer])
            drive = layer_current(params, topology, layer, arriving, lambda: current(t),
                                  dropout, synapses[layer], share)
            # a refractory neuron (R steps after its spike) holds its membrane, loses the
            # step's input and cannot fire
            since[layer] = since[layer] + 1
            resting = since[layer] <= refractory
            v[layer] = membrane.step(v[layer], drive, resting, t == 0)
            fired = (v[layer] >= membrane.threshold) & ~resting
            since[layer] = np.where(fired, 0.0, since[layer])
            spikes = fired.astype(np.float64)
            v[layer] = v[layer] - membrane.reset * spikes
            counts[layer] += spikes
            weighted[layer] = lam * weighted[layer] + spikes
            now[layer] = spikes
            if record:
                recorded[layer][t] = spikes > 0
        previous = now
    return _forward_result(config, weighted, counts, recorded)


class DiscreteMembrane:
    r"""The forward membrane of the SPIDE map (docs/method.md M1):
    :math:`v \leftarrow \lambda v + I`, held while refractory; threshold and reset of the
    config."""

    rest = 0.0

    def __init__(self, config):
        self.lam, self.threshold, self.reset = (config.step_leak, config.threshold,
                                                config.reset_amount)

    @staticmethod
    def model_value(v):
        """The membrane as the model's value above rest (here: itself)."""
        return v

    def step(self, v, drive, refractory, first):
        """The membrane after one step with ``drive`` (``first``: the phase's first step,
        which starts from ``v = 0`` as ``v`` already is)."""
        return np.where(refractory, v, self.lam * v + drive)


class VoltsMembrane:
    r"""The forward membrane in volts, step by step as the Brian2 model computes it.

    Brian2's exact integration of :math:`dv/dt = r (v_\mathrm{rest} - v)` (``r =
    leak_rate = 1/tau_m``, held while refractory) over one step generates

    .. math::

        v \leftarrow (v e + v_\mathrm{rest}) - v_\mathrm{rest} e, \qquad
        e = \exp(-dt\, r\, [\text{not refractory}]),

    evaluated in this order; the step's drive then jumps ``v`` by ``volt_scale * drive``
    (lost while refractory), the first forward step starting from ``v_rest``. A neuron that
    fired at step ``k`` is refractory at steps ``k+1 .. k+R`` (Brian2's
    ``timestep(t - lastspike, dt) < timestep((R + 1) dt, dt)``).
    """

    def __init__(self, constants):
        self.rate = float(constants["leak_rate"])
        self.rest = float(constants["v_rest"])
        self.scale = float(constants["volt_scale"])
        self.threshold = float(constants["threshold_volts"])
        self.reset = float(constants["reset_volts"])
        self.dt = float(constants["dt"])

    def model_value(self, v):
        """The membrane as the model's value above rest, ``(v - v_rest) / volt_scale`` (the
        conductances' driving force, as ``[driving_membrane_volts]`` computes it)."""
        return (v - self.rest) / self.scale

    def decay(self, v, refractory):
        """The state update of one step (``refractory``: boolean array)."""
        factor = np.exp(((-self.dt) * self.rate) * (~refractory).astype(np.float64))
        return (v * factor + self.rest) - self.rest * factor

    def step(self, v, drive, refractory, first):
        """The membrane after the state update and the jump of one step with ``drive``
        (``first``: the phase's first step, which starts from ``v_rest``)."""
        v = self.decay(v, refractory)
        start = np.full_like(v, self.rest) if first else v
        return np.where(refractory, start, start + self.scale * drive)


def _forward_result(config, weighted, counts, recorded):
    rates = [w / config.rate_norm for w in weighted]
    masks = [(c > 0) & (c < config.count_max) for c in counts]
    slopes = [slope_of_rate(r, config) for r in rates] if config.gate == "slope" else None
    return ForwardResult(rates=rates, masks=masks, counts=[c.astype(np.int64) for c in counts],
                         spikes=recorded, slopes=slopes)


#: Share of non-zero entries up to which the backward stage sends a step's unit spikes through
#: a sparse matrix instead of the connection's dense transposed map. Convolutional, locally
#: connected and pooling connections multiply the spikes by a sparse matrix of their synapses
#: (mnist-conv-f's layers at 128 samples: 7-10x faster at 1 % non-zero, 1.6-2.2x at 5 %);
#: dense connections take the spikes as a sparse matrix times the dense weight. Both agree
#: with the dense map to rounding (the order of the sums differs).
SPARSE_BACKWARD_DENSITY = 0.1


class _Transposes:
    """``post -> post J`` of each connection for the backward stage: the kind's dense
    transposed map, or, for a step with few spikes, a sparse product: the spikes as a
    sparse matrix times a dense weight, or times the connection's sparse synapse matrix
    ``J`` for the other kinds (built at the first such step, once per stage)."""

    def __init__(self, params):
        self.params = params
        self.matrices = {}

    def __call__(self, connection, post):
        kind, weight = connection.kind, self.params[connection.parameter]
        if (not (isinstance(kind, Dense) or hasattr(kind, "synapse_indices"))
                or np.count_nonzero(post) > SPARSE_BACKWARD_DENSITY * post.size):
            return kind.transpose(weight, post)
        from scipy import sparse

        if isinstance(kind, Dense):
            rows, columns = np.nonzero(post)
            return sparse.csr_matrix((post[rows, columns], (rows, columns)),
                                     shape=post.shape) @ weight
        matrix = self.matrices.get(connection.parameter)
        if matrix is None:
            pre_index, post_index = kind.synapse_indices(connection.shape, transposed=False)
            matrix = sparse.csr_matrix(
                (kind.flatten(weight, transposed=False), (post_index, pre_index)),
                shape=(kind.n_post, kind.n_pre))
            self.matrices[connection.parameter] = matrix
        return np.asarray((type(matrix)(post) @ matrix).todense())


def _dropped(connection, spikes, dropout):
    """The unit spikes a connection carries back, times its dropout mask if any."""
    return spikes if dropout is None else dropout[connection.parameter] * spikes


def backward(params, config, masks, gradient_current, record=False, topology=None,
             dropout=None, slopes=None, membrane=None):
    """Run the ternary backward stage for ``T_b = config.time_step_back`` steps (``T_b K``
    integration steps, in each of which ``g`` deposits ``1/K`` of its charge).

    Parameters
    ----------
    params : dict
    config : SPIDEConfig
    masks : list of ndarray
        Forward masks ``m_l = [0 < a_l < 1]``, shape ``(B, n_l)``.
    gradient_current : ndarray
        ``g``, shape ``(B, n_{N-1})``, injected every step into the last layer's couples.
    record : bool
        Also return every signed unit spike (``p - n``, in {-1, 0, 1}).
    topology : Topology, optional
        Defaults to the chain of ``config``.
    dropout : dict, optional
        The forward stage's dropout masks: a couple's spikes reach the previous layer through
        connection ``c`` multiplied by ``c``'s mask, ``W_c^T (D_c s^b) / V``.
    slopes : list of ndarray, optional
        With the ``'slope'`` gate (needed then): the forward result's ``slopes``; each
        couple's input is multiplied by its neuron's slope.
    membrane : dict, optional
        The couples' membrane in volts (as in :func:`forward`; :class:`VoltsMembrane`): it
        decays as the forward membrane, starts from ``v_rest``, fires where ``u - v_rest``
        reaches ``+-V_th^b`` in volts and moves by ``M`` in volts per spike.

    Returns
    -------
    BackwardResult
        ``beta`` (leak-weighted mean of the spikes ``s^b = M (p - n)``) is gated by the mask
        (see module docstring); the counts are of unit spikes.
    """
    g = _as_float(gradient_current, "gradient current")
    if config.gate == "slope" and slopes is None:
        raise ValueError("the 'slope' gate scales the couples' input by the forward slopes: "
                         "pass slopes=ForwardResult.slopes (or use gate='binary')")
    topology = topology or topology_of(config, params)
    steps, lam = config.backward_steps, config.step_leak_back
    g = _shared(config.current_share, g)
    theta, magnitude = config.threshold_back, config.reset_amount_back
    gain = backward_gain(config)
    batch = g.shape[0]
    sizes = [layer.size for layer in topology.layers]
    n_layers = len(sizes)
    readout_layer = topology.readout.pre
    gates = [np.asarray(m, dtype=bool) for m in masks]
    volts = VoltsMembrane(membrane) if membrane is not None else None
    if volts is not None:
        # the same comparisons and jumps in volts; the counts and beta stay unit-free
        theta, step = theta * volts.scale, magnitude * volts.scale
        gate_values = [g.astype(np.float64) for g in gates]
    u = [np.zeros((batch, n)) if volts is None else np.full((batch, n), volts.rest)
         for n in sizes]
    signed = [np.zeros((batch, n)) for n in sizes]
    weighted = [np.zeros((batch, n)) for n in sizes]
    absolute = [np.zeros((batch, n)) for n in sizes]
    previous = [np.zeros((batch, n)) for n in sizes]
    synapses = _synapses(config, n_layers, "backward")
    recorded = [np.zeros((steps, batch, n), dtype=np.int8) for n in sizes] if record else None
    same_step = config.timing == "reference"
    transpose = _Transposes(params)
    for t in range(steps):
        now = [None] * n_layers
        for layer in reversed(range(n_layers)):
            # the unit spikes of the step are summed through the transposed weights, then
            # scaled by M/V: the spikes s^b = M (p - n) divided by V
            terms = (transpose(c, _dropped(c, _arrival(c, now, previous, same_step)[c.post],
                                           dropout)) * gain
                     for c in topology.outgoing(layer))
            if synapses[layer] is not None:
                # the couples' synapses filter the transposed input; g drives them directly
                summed = _sum_terms(terms)
                terms = [] if summed is None else [synapses[layer](summed)]
            drive = _sum_terms(terms, g if layer == readout_layer else None)
            if slopes is not None:
                drive = slopes[layer] * drive
            if volts is None:
                u[layer] = lam * u[layer] + drive
                positive = (u[layer] >= theta) & gates[layer]
                negative = (u[layer] <= -theta) & gates[layer]
            else:
                u[layer] = volts.step(u[layer], drive, np.zeros(u[layer].shape, dtype=bool),
                                      t == 0)
                mirror = (u[layer] - volts.rest) * gate_values[layer]
                positive, negative = mirror >= theta, mirror <= -theta
            units = positive.astype(np.float64) - negative
            spikes = magnitude * units          # s^b, in {-M, 0, +M}
            u[layer] -= spikes if volts is None else step * units
            signed[layer] += units
            absolute[layer] += np.abs(units)
            weighted[layer] = lam * weighted[layer] + spikes
            now[layer] = units
            if record:
                recorded[layer][t] = units
        previous = now
    norm = config.rate_norm_back
    return BackwardResult(beta=[w / norm for w in weighted],
                          signed_counts=[s.astype(np.int64) for s in signed],
                          spike_counts=[a.astype(np.int64) for a in absolute],
                          spikes=recorded)


def readout(params, last_rates, labels, kappa):
    r"""Softmax cross-entropy readout and the gradient current.

    ``y = W_c a_{N-1} + b_c``, ``p = softmax(y)``, ``e = p - onehot(label)``,
    ``g = kappa e W_c`` and readout gradients ``kappa e^T a`` and ``kappa sum e`` (with
    ``kappa = S/B`` these are ``S`` times the batch-mean gradients, as in the reference).
    """
    labels = np.asarray(labels)
    logits = last_rates @ params["readout_weight"].T + params["readout_bias"]
    logits = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    probabilities = exp / exp.sum(axis=1, keepdims=True)
    n_classes = probabilities.shape[1]
    if labels.shape != (last_rates.shape[0],) or labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"labels must be integers in [0, {n_classes}) of shape "
                         f"({last_rates.shape[0]},)")
    batch = np.arange(len(labels))
    loss = float(-np.mean(np.log(probabilities[batch, labels])))
    error = probabilities.copy()
    error[batch, labels] -= 1.0
    return ReadoutResult(
        loss=loss, probabilities=probabilities, error=error,
        gradient_current=kappa * error @ params["readout_weight"],
        gradients={"readout_weight": kappa * error.T @ last_rates,
                   "readout_bias": kappa * error.sum(axis=0)})


def spike_gradients(config, x_mean, rates, beta, topology=None, dropout=None):
    """Local two-stage weight gradients (docs/method.md M4), summed over the batch.

    ``beta`` must already be gated (``beta * m``), as :func:`backward` returns it. Every
    connection's gradient is ``(beta_post m_post)^T a_pre / V`` (the input's ``a`` is the
    mean input); a bias's is ``sum beta m / V``. With ``dropout`` masks, ``beta_post m_post``
    is multiplied by the connection's mask (a bias's by the mask of the connection it joins).
    """
    # the input's size from the mean input (a named model's kernels fit any size)
    topology = topology or Topology.from_config(config, np.shape(x_mean)[-1], 0)
    scale = config.reset_amount

    def post_factor(connection):
        post = beta[connection.post]
        return post if dropout is None else post * dropout[connection.parameter]

    source = topology.input
    grads = {source.parameter: source.kind.gradient(post_factor(source), x_mean) / scale}
    for layer in topology.layers:
        owner = bias_connection(topology, layer.index) if dropout is not None else None
        factor = beta[layer.index] if owner is None else post_factor(owner)
        grads[layer.bias] = layer.reduce_bias(factor.sum(axis=0)) / scale
    for connection in topology.spiking:
        grads[connection.parameter] = connection.kind.gradient(
            post_factor(connection), rates[connection.pre]) / scale
    return grads


def forward_backward(params, config, x, gradient_current, record=False, dropout=None,
                     membrane=None):
    """One forward and one backward pass for given weights, inputs and gradient current.

    This is the function to check a model against: it returns the rates, masks, gated
    ``beta`` and the spike-based weight gradients of the spiking layers.

    Parameters
    ----------
    params : dict
    config : SPIDEConfig
    x : ndarray
        ``(B, n_in)`` or ``(T, B, n_in)``.
    gradient_current : ndarray or callable
        ``g`` of shape ``(B, n_{N-1})``, or a function of the :class:`ForwardResult`
        returning it (used by training, where ``g`` comes from the readout).
    record : bool
        Record every spike of both stages.
    dropout : dict, optional
        Per-connection dropout masks of the batch (:func:`spide_brian.dropout.dropout_masks`).
    membrane : dict, optional
        The forward membrane in volts (see :func:`forward`).

    Returns
    -------
    SPIDEResult

    Examples
    --------
    >>> import numpy as np
    >>> from spide_brian.config import SPIDEConfig
    >>> from spide_brian.parameters import init_parameters
    >>> config = SPIDEConfig(hidden_sizes=(20,), time_step=30, time_step_back=100)
    >>> params = init_parameters(config, n_inputs=8, n_classes=3)
    >>> x = np.random.default_rng(0).uniform(0, 1, size=(4, 8))
    >>> g = np.full((4, 20), 0.05)
    >>> result = forward_backward(params, config, x, g)
    >>> result.gradients["feedback_weight"].shape
    (20, 20)
    """
    topology = topology_of(config, params)
    fwd = forward(params, config, x, record=record, topology=topology, dropout=dropout,
                  membrane=membrane)
    g = gradient_current(fwd) if callable(gradient_current) else gradient_current
    bwd = backward(params, config, fwd.masks, g, record=record, topology=topology,
                   dropout=dropout, slopes=fwd.slopes, membrane=membrane)
    x_mean = np.asarray(x, dtype=np.float64)
    if x_mean.ndim == 3:
        x_mean = x_mean.mean(axis=0)
    return SPIDEResult(forward=fwd, backward=bwd,
                       gradients=spike_gradients(config, x_mean, fwd.rates, bwd.beta,
                                                 topology, dropout))


class SGDMomentum:
    r"""SGD with momentum and weight decay, PyTorch semantics.

    ``d = grad + wd * w``, ``buf = mu * buf + d``, ``w <- w - lr * buf``; then every
    restricted (feedback) weight is projected onto its ball ``||W||_F <= r`` (docs/method.md
    M5, exact norm).

    Parameters
    ----------
    config : SPIDEConfig
    topology : Topology, optional
        Says which weights are restricted; defaults to the chain of ``config`` (only the
        names and radii of its spiking connections are used, which do not depend on the
        data's dimensions).
    """

    def __init__(self, config, topology=None):
        self.config = config
        self.restricted = (topology or topology_of(config, {})).restricted
        self.buffers = {}

    def step(self, params, grads, lr):
        config = self.config
        for name, grad in grads.items():
            direction = grad + config.weight_decay * params[name]
            buffer = self.buffers.get(name)
            buffer = direction if buffer is None else config.momentum * buffer + direction
            self.buffers[name] = buffer
            params[name] = params[name] - lr * buffer
        for connection in self.restricted:
            params[connection.parameter] = project_feedback(params[connection.parameter],
                                                            connection.restriction)

    def state_dict(self):
        return {name: buf.copy() for name, buf in self.buffers.items()}

    def load_state_dict(self, state):
        self.buffers = {name: np.array(buf, dtype=np.float64) for name, buf in state.items()}


def train_batch(params, config, optimizer, x, labels, lr=None, dropout=None, membrane=None):
    """Forward, readout, backward and one SGD step on a mini-batch; updates ``params``.

    ``lr`` is the SGD rate of the step (``lr0 / S`` of the schedule); ``config.sgd_lr`` by
    default. ``dropout``: the batch's masks (none by default). ``membrane``: the forward
    membrane in volts (:func:`forward`; None: the discrete membrane).

    Returns
    -------
    tuple
        ``(SPIDEResult, ReadoutResult)`` of the batch (before the update).
    """
    kappa = config.kappa(len(labels))
    holder = {}

    def gradient_current(fwd):
        holder["readout"] = readout(params, fwd.rates[-1], labels, kappa)
        return holder["readout"].gradient_current

    result = forward_backward(params, config, x, gradient_current, dropout=dropout,
                              membrane=membrane)
    grads = dict(result.gradients)
    grads.update(holder["readout"].gradients)
    optimizer.step(params, grads, config.sgd_lr if lr is None else lr)
    return result, holder["readout"]


def predict(params, config, x, membrane=None):
    """Class scores (logits) and forward result for a batch, without learning
    (``membrane``: as for :func:`forward`)."""
    fwd = forward(params, config, x, membrane=membrane)
    logits = fwd.rates[-1] @ params["readout_weight"].T + params["readout_bias"]
    return logits, fwd
