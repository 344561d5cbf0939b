"""Builder of the SPIDE model as ordinary Brian2 objects.

:class:`SPIDENetwork` turns a :class:`~spide_brian.config.SPIDEConfig` into NeuronGroups,
Synapses, TimedArrays and per-sample StateMonitors that hold the whole training loop
(forward stage, readout, backward stage of ternary couples, local two-stage plasticity),
following the timeline of :mod:`spide_brian.schedule`. The objects can be run on their own
(``Network(*model.objects)``) or added to a user's own ``Network`` next to other groups
and monitors.

Per spiking layer ``l``: a forward group (forward neurons, which also hold the couples'
membranes and counts), a positive-couple group and a negative-couple group (spike
generators of the backward stage). Per connection with weights ``W`` (shape
``(n_post, n_pre)``): a forward copy (forward events), a positive and a negative transposed
copy (couple events). Each copy has one event pathway, so forward spikes never run backward
code and couple spikes never run forward code. The readout has a readout copy and a gradient
copy of ``W_c``.

Where the device links parameters (capability ``shared_parameters``), each learnt weight is
held once: a parameter group with one element per synapse holds ``W``, its gradient and
momentum, accumulates ``beta_post a_pre`` and learns; the copies are views that read their
element through a linked variable, and the feedback norm is summed from the group after
each update. Elsewhere every copy holds ``W`` and runs the same plasticity code, so the
copies stay bitwise equal, and the feedback has a fourth copy on a slot-long clock whose
summed ``w*w`` gives the Frobenius norm.

Examples
--------
>>> from brian2 import Network, SpikeMonitor
>>> from spide_brian.config import SPIDEConfig
>>> from spide_brian.parameters import init_parameters
>>> config = SPIDEConfig(hidden_sizes=(6,), time_step=5, time_step_back=8, batch_size=2)
>>> params = init_parameters(config, n_inputs=3, n_classes=2)
>>> model = SPIDENetwork(config, n_inputs=3, n_classes=2, capacity=2)
>>> model.assign(params)
>>> spikes = SpikeMonitor(model.layers[0])          # the user's own monitor
>>> net = Network(*model.objects, spikes)
"""
from __future__ import annotations

import math

import numpy as np
from brian2 import (NeuronGroup, StateMonitor, Synapses, TimedArray, defaultclock, hertz,
                    linked_var, second, volt)
from brian2.equations.equations import FLOAT, Equations
from brian2.utils.logger import get_logger

from . import equations as eq
from .biophysics import NeuronUnits
from .devices import (Capabilities, bound_make_jobs, capabilities, check_membrane,
                      check_synapses)
from .dropout import drops_any
from .parameters import project_feedback
from .routes import Plasticity, check_dropout, replay_factors, route_for
from .schedule import SampleTables
from .sharing import STORED_NAMES, SharedParameter, check_shared_parameters, without
from .topology import READOUT, Dense, Topology

__all__ = ["SPIDENetwork", "WeightCopy", "MODEL_DT", "check_step_duration"]

logger = get_logger(__name__)

#: Duration of one step for the trainer's runs. The dynamics are discrete maps, so only the
#: floating-point value matters: a power of two of seconds makes the times of the slot and
#: mini-batch clocks (multiples of the step) exact, so all clocks agree however long a run
#: is. With 0.1 ms, a run of about 10^6 steps drifts apart by more than the 1e-14 s within
#: which cpp_standalone matches clocks, and per-slot operations run out of order.
MODEL_DT = 2.0 ** -20 * second

#: Simulated duration from which a step that is not a power of two of seconds is refused
#: (below it, the clocks' rounding errors stay under cpp_standalone's 1e-14 s).
_SAFE_DURATION_S = 1.0


def check_step_duration(dt, duration):
    """Raise if clocks of multiples of ``dt`` could drift apart over ``duration``
    (standalone devices; runtime targets match clocks within a fraction of ``dt``).

    Brian2's cpp_standalone treats two clocks as simultaneous when their times differ by at
    most 1e-14 s. ``k * (n dt)`` and ``(k n) * dt`` are equal in floating point when ``dt`` is
    a power of two of seconds; otherwise they differ by a few units in the last place of the
    time, which exceeds 1e-14 s beyond a few seconds of simulated time.
    """
    mantissa, _ = math.frexp(float(dt))
    if mantissa != 0.5 and float(duration) > _SAFE_DURATION_S:
        raise ValueError(
            f"a run of {float(duration):.3g} s of simulated time with dt = {dt} lets the "
            f"model's slot and mini-batch clocks drift apart; set defaultclock.dt to a power "
            f"of two of seconds (e.g. spide_brian.network.MODEL_DT = 2**-20 s) or run fewer "
            f"samples per run")


class WeightCopy:
    """One Synapses object holding a copy of the weights of a :class:`Connection`.

    ``transposed`` copies connect the connection's post side (as Brian2 pre) to its pre
    side. The connection's kind says which synapses exist and which value each holds.
    """

    def __init__(self, synapses, connection, transposed):
        self.synapses = synapses
        self.connection = connection
        self.parameter = connection.parameter
        self.shape = connection.shape
        self.transposed = transposed
        self.i, self.j = connection.kind.synapse_indices(self.shape, transposed)
        synapses.connect(i=self.i, j=self.j)

    def flatten(self, matrix):
        """Synapse-ordered values of the connection's weight parameter."""
        return self.connection.kind.flatten(matrix, self.transposed)

    def matrix(self, values):
        """Inverse of :meth:`flatten`."""
        return self.connection.kind.unflatten(values, self.shape, self.transposed)


def _constant_table(config):
    """Value of a named constant of the model for ``config`` (see ``equations/``)."""
    values = {
        "lam": config.step_leak, "lam_back": config.step_leak_back,
        "threshold": config.threshold,
        "threshold_back": config.threshold_back, "reset_amount_back": config.reset_amount_back,
        "magnitude": config.reset_amount_back, "reset_amount": config.reset_amount,
        "reset_amount_syn": config.reset_amount,
        "rate_norm": config.rate_norm, "rate_norm_back": config.rate_norm_back,
        "back_gain": config.backward_gain, "radius": config.feedback_norm,
        "refractory_steps": float(config.held_steps), "current_share": config.current_share,
        "count_max": float(config.count_max), "slope_refractory": config.slope_refractory,
        "syn_leak": config.synapse_step_leak, "syn_gain": config.synapse_gain,
        "inverse_exc": 1.0 / config.reversal_exc, "inverse_inh": 1.0 / config.reversal_inh,
        # the couples' synapses: exponential with exponential synapses, else delta
        "back_syn_leak": config.synapse_step_leak if config.synapse == "exponential" else 0.0,
        "back_syn_gain": config.synapse_gain if config.synapse == "exponential" else 1.0,
    }
    for suffix in ("", "_syn"):
        values["momentum" + suffix] = config.momentum
        values["weight_decay" + suffix] = config.weight_decay
    return lambda obj, name: values[name]


def connect_one_to_one(synapses):
    """Connect neuron ``k`` of the source to neuron ``k`` of the target, as ``j='i'``.

    The model's synapses are all created from index arrays: Brian2 then needs no code
    object to create them (runtime devices) or only its array template (standalone
    devices), instead of generating, compiling and running a generator for each.
    """
    index = np.arange(len(synapses.source))
    synapses.connect(i=index, j=index)


def connect_all_to_all(synapses):
    """Connect every source neuron to every target neuron, as ``connect()``, in Brian2's
    order (by source, then target)."""
    n_pre, n_post = len(synapses.source), len(synapses.target)
    synapses.connect(i=np.repeat(np.arange(n_pre), n_post), j=np.tile(np.arange(n_post), n_pre))


class SPIDENetwork:
    """The SPIDE model of ``config`` as Brian2 objects for runs of ``capacity`` samples.

    Parameters
    ----------
    config : SPIDEConfig
        Only the ``'brian'`` timing exists in Brian2 (every hop one step late); the
        config's ``timing`` field is not consulted.
    n_inputs, n_classes : int
    capacity : int
        Sample slots per run; a run lasts ``capacity * slot_length + 1`` model steps.
    device : str or Capabilities
        Looked up in :data:`spide_brian.devices.CAPABILITIES`; a :class:`Capabilities`
        is used as given (e.g. the runtime device with GeNN's restrictions, to test the
        fallback paths).
    tables : SampleTables, optional
        Initial values of the TimedArrays (zeros if omitted; replace them with run_args on
        standalone devices).
    name : str
        Prefix of all object names.
    record : bool
        Add per-sample StateMonitors of the spike counts and the readout.
    frame_input : bool
        Event frames, one per forward step (samples ``(T, n_in)``, read from a per-step
        ``TimedArray`` and summed into layer 0 every step), instead of a static input (one
        row per sample, summed once per slot where the device allows).
    one_copy : bool, optional
        Hold each learnt dense weight once, in a parameter group that every Synapses of the
        connection reads through a linked variable and that alone accumulates the gradient
        and learns (:mod:`spide_brian.sharing`); False: one Synapses copy per event pathway,
        each learning the same way (the construction of devices without linked variables).
        Default: where the device links parameters (capability ``shared_parameters``).
    learning : bool
        False: the model of a test pass, which never learns: the forward stage and the
        readout only, without the ternary couples, the transposed (backward) weight copies,
        the readout's gradient copy, and every gradient accumulation and SGD step. Its
        forward spikes and probabilities are those of the learning model (the forward stage
        reads nothing of the backward stage); its backward counts are zero.
    units : NeuronUnits, optional
        Give the forward neurons a membrane in volts: ``dv/dt = (v_rest - v)/tau_m`` with
        Brian2's exact integration and refractoriness (``equations/forward_neuron.eq``,
        docs/biophysics.md B8). ``config`` must be ``units.discrete(...)`` of these units and
        ``defaultclock.dt`` their ``dt``. None: the membrane of ``config.membrane``; for
        ``'volts'`` the units of the config on the model's step
        (:meth:`~spide_brian.biophysics.NeuronUnits.of`), for ``'discrete'`` the
        dimensionless ``v``.
    """

    def __init__(self, config, n_inputs, n_classes, capacity, device="numpy", tables=None,
                 name="spide", record=True, frame_input=False, units=None, one_copy=None,
                 learning=True):
        self.config = config
        #: Whether the model learns (False: the forward-only model of a test pass).
        self.learning = bool(learning)
        self.units = units
        #: Floating-point type of the model's state (``config.float_dtype``).
        self.float_dtype = np.dtype(config.float_dtype)
        self.frame_input = bool(frame_input)
        self.n_inputs, self.n_classes, self.capacity = int(n_inputs), int(n_classes), int(capacity)
        self.caps = device if isinstance(device, Capabilities) else capabilities(device)
        if self.caps.standalone:
            # one compiler per core instead of Brian2's unbounded ``make -j`` (which starts
            # all ~200 compilers at once), unless the user set the make arguments
            bound_make_jobs()
        #: What the device's restrictions add to the objects (:mod:`spide_brian.routes`).
        self.route = route_for(self.caps)
        #: Layers and connections of the model (:class:`~spide_brian.topology.Topology`).
        self.topology = Topology.from_config(config, self.n_inputs, self.n_classes)
        check_shared_parameters(self.caps, self.topology)
        check_synapses(self.caps, config)
        #: Whether each learnt dense weight is held once (see ``one_copy``).
        self.one_copy = self.caps.shared_parameters if one_copy is None else bool(one_copy)
        if self.one_copy and not self.caps.shared_parameters:
            raise ValueError(f"one copy of each weight needs linked parameters, which the "
                             f"{self.caps.name} device lacks (capability shared_parameters); "
                             "leave one_copy unset")
        if len(self.topology.restricted) > 1:
            raise NotImplementedError("the Brian2 model restricts one feedback connection; "
                                      f"this topology has {len(self.topology.restricted)}")
        #: Whether training samples drop inputs (masks from the ``dropout_*`` tables).
        self.dropout = drops_any(config, self.topology)
        if self.dropout:
            self._check_dropout()
        self._constant_value = _constant_table(config)
        self.schedule = self.route.schedule(config, self._substeps())
        self.name = name
        #: Duration of one model step (``substeps`` device steps of ``defaultclock.dt``).
        self.dt = self.schedule.substeps * defaultclock.dt
        self.slot_dt = self.schedule.slot_length * self.dt
        if self.units is None and config.membrane == "volts":
            # a SPIDE step lasts integration_steps model steps
            self.units = NeuronUnits.of(config, self.dt * config.integration_steps)
        #: Constants of the membrane in volts (None: the discrete membrane).
        self.membrane = self._membrane_constants() if self.units is not None else None
        if self.caps.standalone:
            check_step_duration(self.dt, self.run_duration)
        batch = int(config.batch_size)
        #: Period of the SGD step of the weight copies (None: every slot, with the
        #: accumulation). A mini-batch clock needs runs of whole mini-batches.
        self.batch_dt = (batch * self.slot_dt if self.caps.batch_clock_update
                         and self.capacity % batch == 0 else None)
        if tables is None:
            empty = (0, config.time_step, n_inputs) if self.frame_input else (0, n_inputs)
            tables = SampleTables.build(np.zeros(empty), np.zeros(0), capacity)
        self._check_tables(tables)
        self.timed_arrays = {
            self.input_table: TimedArray(self._input_rows(tables), dt=self.input_dt,
                                         name=f"{name}_{self.input_table}"),
            "sample_label": TimedArray(tables.label, dt=self.slot_dt, name=f"{name}_label"),
            "sample_kappa": TimedArray(tables.kappa, dt=self.slot_dt, name=f"{name}_kappa"),
            "update_flag": TimedArray(tables.update, dt=self.slot_dt, name=f"{name}_update"),
            "sgd_rate": TimedArray(tables.rate, dt=self.slot_dt, name=f"{name}_rate"),
        }
        self.namespace = dict(self.schedule.namespace(), **self.timed_arrays)
        #: Dropout mask tables by name (``dropout_input``, ``dropout_layer<l>``); empty
        #: without dropout.
        self.dropout_tables = {}
        if self.dropout:
            for name, values in self._dropout_rows(tables).items():
                self.dropout_tables[name] = TimedArray(values, dt=self.slot_dt,
                                                       name=f"{self.name}_{name}")
        if self.frame_input:
            self.namespace.update(frame_dt=self.input_dt, frames_per_sample=config.time_step,
                                  integration_steps=config.integration_steps)
        self.objects = []
        self._roles = {}
        self._constants = []
        self.copies = {}
        #: :class:`~spide_brian.sharing.SharedParameter` of each parameter held once by a
        #: parameter group (convolution kernels, channel biases).
        self.shared = {}
        self.monitors = {}
        self._build_layers()
        self._build_input()
        self._build_connections()
        self._build_readout()
        for connection in self.topology.restricted:
            self._build_feedback_norm(connection)
        if record:
            self._build_monitors()

    def _membrane_constants(self):
        """The volts membrane's constants, after checking that this model can run it."""
        check_membrane(self.caps, "volts")
        if self.schedule.substeps != 1 or self.route.name != "direct":
            raise ValueError(
                f"the membrane in volts needs one device step per model step and the direct "
                f"route; the {self.caps.name} device has {self.schedule.substeps} and the "
                f"{self.route.name} route: use numpy, cython or cpp_standalone, or leave "
                "units out (the discrete membrane is the same model)")
        step = self.units.integration_dt(self.config)
        if abs(float(self.dt) - float(step)) > 1e-12 * float(step):
            raise ValueError(f"the membrane in volts integrates over the model's step "
                             f"{self.dt}, which is not the units' integration step dt / "
                             f"{self.config.integration_steps} = {step}; set defaultclock.dt "
                             f"to it")
        gap = self.schedule.slot_length - self.config.forward_steps
        if self.config.held_steps + 1 > gap:
            raise ValueError(f"a refractory period of {self.config.held_steps + 1} steps "
                             f"outlasts the {gap} steps between two forward phases")
        return self.units.membrane_constants(self.config)

    # -- input tables -----------------------------------------------------------------------
    @property
    def input_table(self):
        """Namespace name of the input TimedArray: ``'frames'`` or ``'stimulus'``."""
        return "frames" if self.frame_input else "stimulus"

    @property
    def input_dt(self):
        """Spacing of the input table's rows: one step per frame, one slot per sample."""
        return self.dt if self.frame_input else self.slot_dt

    def _check_tables(self, tables):
        expected = ((self.capacity, self.config.time_step, self.n_inputs) if self.frame_input
                    else (self.capacity, self.n_inputs))
        if tables.stimulus.shape != expected:
            kind = "frame" if self.frame_input else "static"
            raise ValueError(f"this model takes {kind} input tables of shape {expected}; "
                             f"got {tables.stimulus.shape}")

    def _input_rows(self, tables):
        """The input table as TimedArray rows (frames: row ``sample*T + k``)."""
        return tables.stimulus.reshape(-1, self.n_inputs)

    # -- dropout ----------------------------------------------------------------------------
    def _check_dropout(self):
        check_dropout(self.caps)
        crowded = [layer.index for layer in self.topology.layers
                   if len(self.topology.incoming(layer.index)) > 1]
        if crowded:
            raise NotImplementedError(f"dropout in the Brian2 model needs at most one incoming "
                                      f"spiking connection per layer; layers {crowded} have more")

    def _dropout_sources(self):
        """``{table name: (connection parameter, layer size)}`` of the mask tables: the
        input's layer's ``dropout_input`` and each layer's ``dropout_layer<l>`` (its
        incoming spiking connection)."""
        sources = {"dropout_input": (self.topology.input.parameter,
                                     self.topology.layers[self.topology.input.post].size)}
        for layer in self.topology.layers:
            incoming = self.topology.incoming(layer.index)
            if incoming:
                sources[f"dropout_{layer.name}"] = (incoming[0].parameter, layer.size)
        return sources

    def _dropout_rows(self, tables):
        """Mask table values for ``tables`` (all ones where it has no masks: evaluation)."""
        masks = tables.dropout or {}
        rows = {}
        for name, (parameter, size) in self._dropout_sources().items():
            values = masks.get(parameter)
            if values is None:
                values = np.ones((self.capacity, size))
            if values.shape != (self.capacity, size):
                raise ValueError(f"dropout table of {parameter} must have shape "
                                 f"{(self.capacity, size)}; got {values.shape}")
            rows[name] = values
        return rows

    def _dropout_namespace(self, layer):
        """The shared namespace plus the mask tables of ``layer`` under the names the model
        text reads (``dropout_input``, ``dropout_syn``)."""
        namespace = dict(self.namespace)
        if self.dropout:
            if layer == self.topology.input.post:
                namespace["dropout_input"] = self.dropout_tables["dropout_input"]
            syn = self.dropout_tables.get(f"dropout_{self.topology.layers[layer].name}")
            if syn is not None:
                namespace["dropout_syn"] = syn
        return namespace

    # -- construction -----------------------------------------------------------------------
    # Names of run_regularly operations contain "_run_regularly_": brian2genn recognises
    # them by that name (others are silently left out of its GeNN model).
    def _substeps(self):
        """Device steps per model step: the synaptic events of a model step's spikes must be
        applied before the next model step's run_regularly operations (schedule.eq)."""
        return 1 + int(self.caps.event_delivery_steps)

    def _add(self, obj):
        self.objects.append(obj)
        return obj

    def _dtype(self, model):
        """The ``dtype`` argument of a group or Synapses with equations ``model``: None in
        float64 (Brian2's default), else ``float_dtype`` for every float variable but the
        ``[slot_time]`` subexpressions, which stay float64 (a float32 step index is exact
        only up to 2^24 steps, and its slot index rounds wrongly long before)."""
        if self.float_dtype == np.float64:
            return None
        model = model if isinstance(model, Equations) else Equations(model)
        keep = eq.slot_time_names()
        return {name: self.float_dtype for name, single in model.items()
                if single.var_type == FLOAT and name not in keep}

    def _neuron_group(self, size, model, name, threshold=None, reset=None, role=None,
                      namespace=None, **options):
        """A NeuronGroup of the model; its ``role`` ('forward', 'couple', 'input', 'output'
        or None) tells the route what to add; ``options`` go to the NeuronGroup."""
        model, threshold, reset = self.route.neuron_group(role, model, threshold, reset)
        group = self._add(NeuronGroup(size, model, threshold=threshold, reset=reset,
                                      namespace=namespace or self.namespace, name=name,
                                      dtype=self._dtype(model), **options))
        self._roles[group.name] = role
        return group

    def _every_step(self, group, piece, section="every_step", extra=()):
        code = "\n".join(eq.statements(piece, name) for name in (section, *extra))
        code = self.route.every_step(self._roles.get(group.name), code)
        self._add(group.run_regularly(code, dt=self.dt,
                                      name=f"{group.name}_run_regularly_every_step"))

    def _constant(self, obj, *names):
        """Set the (shared, constant) parameters ``names`` of ``obj`` to their values for
        the model's config (one table: :func:`_constant_table`)."""
        for name in names:
            value = self._constant_value(obj, name)
            setattr(obj, name, value)
            self._constants.append((obj, name, value))

    def _optimiser_constants(self, obj, divide=True, suffix="_syn"):
        self._constant(obj, *(name + suffix for name in ("momentum", "weight_decay")))
        if divide:
            self._constant(obj, "reset_amount" + suffix)

    def _build_layers(self):
        self.layers, self.positives, self.negatives = [], [], []
        volts = "_volts" if self.membrane is not None else ""
        for layer in self.topology.layers:
            model = (eq.model_equations("forward_neuron")
                     + eq.model_equations("forward_neuron", "membrane_model" + volts))
            if layer.shares_bias:
                model = without(model, ("bias",)) + eq.model_equations("shared_weight",
                                                                       "bias_view_model")
            reset = "\n".join(eq.statements("forward_neuron", section)
                              for section in ("reset" + volts, "reset_counts"))
            group = self._neuron_group(
                layer.size, model, f"{self.name}_{layer.name}",
                threshold=eq.statements("forward_neuron", "threshold" + volts),
                reset=reset, role="forward", namespace=self._dropout_namespace(layer.index),
                **self._membrane_options())
            if self.membrane is not None:
                self._volts_membrane(group)
            self._constant(group, "lam", "lam_back", "threshold", "rate_norm", "rate_norm_back",
                           "back_gain", "reset_amount", "refractory_steps", "count_max",
                           "slope_refractory", "syn_leak", "syn_gain", "back_syn_leak",
                           "back_syn_gain", "inverse_exc", "inverse_inh", "current_share")
            self._optimiser_constants(group, divide=False, suffix="")
            # structure, not a setting: the bias joins the input's current in its layer
            group.bias_on_input = float(layer.index == self.topology.input.post)
            group.drop_input = 1.0
            group.drop_syn = 1.0
            group.back_slope = 1.0
            own_bias = layer.has_bias and not layer.shares_bias
            steps = ("membrane_step" + volts, "every_step")
            if self.learning:
                steps += ("backward_step", "couple_step" + volts) + \
                    (("bias_learning",) if own_bias else ())
            if not self.config.conductances:
                steps = ("synaptic_current",) + steps
            elif volts:
                self._conductances_before_decay(group)
            else:
                steps = ("driving_membrane", "conductance_current") + steps
            self._every_step(group, "forward_neuron", section=steps[0], extra=steps[1:])
            if layer.shares_bias:
                self._channel_bias(layer, group)
            if self.dropout:
                self._load_dropout(group, layer.index)
            halves = ([self._couple_half(group, layer.index, sign)
                       for sign in ("positive", "negative")] if self.learning else [None, None])
            self.layers.append(group)
            self.positives.append(halves[0])
            self.negatives.append(halves[1])

    def _membrane_options(self):
        """NeuronGroup options of the forward membrane: the volts membrane's exact
        integration and Brian2 refractory period."""
        if self.membrane is None:
            return {}
        return {"method": "exact", "refractory": self.membrane["refractory"] * second}

    def _conductances_before_decay(self, group):
        """The conductances of a volts membrane read the membrane before the step's state
        update, so they run at the start of the step ahead of it (order -2)."""
        code = "\n".join(eq.statements("forward_neuron", name)
                         for name in ("driving_membrane_volts", "conductance_current"))
        self._add(group.run_regularly(code, dt=self.dt, when="start", order=-2,
                                      name=f"{group.name}_run_regularly_conductances"))

    def _volts_membrane(self, group):
        """Set the volts membrane's constants and run its state update at the start of
        each step, before the step's inputs (order -1, ahead of the per-step code)."""
        units = {"leak_rate": hertz, "v_rest": volt, "volt_scale": volt,
                 "threshold_volts": volt, "reset_volts": volt}
        for name, unit in units.items():
            setattr(group, name, self.membrane[name] * unit)
        group.v = self.membrane["v_rest"] * volt
        group.u_back = self.membrane["v_rest"] * volt
        group.state_updater.when = "start"
        group.state_updater.order = -1

    # -- shared parameters (spide_brian.sharing) ---------------------------------------------
    def _held_once(self, connection):
        """Whether the weight of ``connection`` lives in a parameter group: a shared kernel,
        or a learnt dense weight when the model holds one copy of each weight."""
        kind = connection.kind
        return kind.shares_weights or (self.one_copy and isinstance(kind, Dense))

    def _parameter_group(self, name, shape, divide_by, project=None, order=None,
                         own_gradient=False):
        """The group holding parameter ``name`` once, with its learning operations.

        ``project``: the parameter is restricted (its scale is linked to the feedback-norm
        group, :meth:`_build_feedback_norm`). ``own_gradient``: the group accumulates the
        product of its linked factors itself (a dense weight) instead of a gather's sum.
        """
        model = eq.model_equations("shared_weight", "parameter_model")
        if project:
            model = without(model, ("fro_scale",)) + eq.model_equations("feedback_norm",
                                                                        "scale_view_model")
        if own_gradient:
            model = model + eq.model_equations("shared_weight", "own_gradient_model")
        group = self._add(NeuronGroup(int(np.prod(shape)), model, namespace=self.namespace,
                                      name=f"{self.name}_{name}_parameter",
                                      dtype=self._dtype(model)))
        if not project:
            group.fro_scale = 1.0
        self._optimiser_constants(group, divide=divide_by is not None)
        accumulate = "own_accumulate" if own_gradient else "accumulate"
        plasticity = Plasticity("shared_weight", accumulate, divide_by, project)
        operations = (self.route.learning(plasticity, self.slot_dt, self.batch_dt)
                      if self.learning else ())
        for operation in operations:
            self._add(group.run_regularly(operation.code, dt=operation.dt, order=operation.order,
                                          name=f"{group.name}_run_regularly_{operation.suffix}"))
        self.shared[name] = SharedParameter(name, shape, group, order)
        return group

    def _gather(self, source, group, model, name, i, j):
        """Synapses whose summed ``grad_slot`` adds the products of one sample into the
        parameter group, once per slot at the commit step before the group's accumulation
        (every step where the device has no slot-long clock for summed variables)."""
        slow = self.caps.slow_clock_summed
        syn = self._add(Synapses(source, group, model, namespace=self.namespace,
                                 dt=self.slot_dt if slow else None, name=name,
                                 dtype=self._dtype(model)))
        syn.connect(i=np.asarray(i), j=np.asarray(j))
        for updater in syn.summed_updaters.values():
            if slow:
                updater._clock = syn.clock
            updater.when, updater.order = "start", -1
        return syn

    def _channel_bias(self, layer, group):
        """The bias of a layer of maps: one value per channel in a parameter group, read by
        the channel's neurons, learnt from the sum of their ``beta_bias``."""
        parameter = self._parameter_group(layer.bias, (layer.bias_size,), "reset_amount_syn")
        channel = layer.expand_bias(np.arange(layer.bias_size))
        group.channel = channel
        group.bias = linked_var(parameter, "w", index="channel")
        if not self.learning:
            return
        self._gather(group, parameter, eq.model_equations("shared_weight", "bias_gather_model"),
                     f"{parameter.name}_gather", np.arange(layer.size), channel)

    def _shared_weight(self, connection, source, target, plasticity):
        """The parameter group of a weight held once: for a kernel shared by many synapses,
        with the gather of its gradient from the forward orientation's local products; for a
        dense weight, reading its factors through linked variables."""
        kind = connection.kind
        pre_factor, post_factor = replay_factors(plasticity.statement)
        pre, post = kind.synapse_indices(connection.shape, transposed=False)
        elements = kind.kernel_elements(False, connection.shape)
        project = "fro_scale" if plasticity.project else None
        if not kind.shares_weights:
            # one element per synapse, stored in the forward synapses' order
            parameter = self._parameter_group(connection.parameter, connection.shape,
                                              plasticity.divide_by, project, order=elements,
                                              own_gradient=True)
            parameter.pre_factor = linked_var(source, pre_factor[:-len("_pre")],
                                              index=np.asarray(pre))
            parameter.post_factor = linked_var(target, post_factor[:-len("_post")],
                                               index=np.asarray(post))
            return parameter
        parameter = self._parameter_group(connection.parameter, connection.shape,
                                          plasticity.divide_by, project)
        if not self.learning:
            return parameter               # no gradient to gather
        gather = self._gather(source, parameter,
                              eq.model_equations("shared_weight", "gather_model",
                                                 PRE_FACTOR=pre_factor),
                              f"{parameter.name}_gather", pre, elements)
        gather.post_index = post
        gather.post_factor = linked_var(target, post_factor[:-len("_post")],
                                        index="post_index")
        return parameter

    def _view(self, syn, connection, transposed):
        """Point the synapses of a weight copy at the elements of their shared parameter."""
        shared = self.shared[connection.parameter]
        syn.element = shared.elements(connection.kind.kernel_elements(transposed,
                                                                      connection.shape))
        syn.w = linked_var(shared.group, "w", index="element")

    def _load_dropout(self, group, layer):
        """Per-slot reads of the layer's mask tables (at each slot's commit step)."""
        sections = []
        if layer == self.topology.input.post:
            sections.append("dropout_input_load")
        if self.topology.incoming(layer):
            sections.append("dropout_syn_load")
        for section in sections:
            self._add(group.run_regularly(eq.statements("forward_neuron", section),
                                          dt=self.slot_dt,
                                          name=f"{group.name}_run_regularly_{section}"))

    def _couple_half(self, group, layer, sign):
        """The ``sign`` ('positive' or 'negative') half of the couples of layer ``group``."""
        ns = self.namespace
        volts = "_volts" if self.membrane is not None else ""
        half = self._neuron_group(
            len(group), eq.model_equations("couple")
            + eq.model_equations("couple", "mirror_variables" + volts),
            f"{self.name}_layer{layer}_{sign}",
            threshold=eq.statements("couple", f"{sign}_threshold"), reset="", role="couple")
        if self.membrane is None:
            self._constant(half, "threshold_back")
        else:
            half.threshold_back = self.config.threshold_back * self.membrane["volt_scale"] * volt
        sections = ["mirror_model" + volts]
        if self._transposed_copies_learn(layer):
            sections.append("beta_copy_model")
        for section in sections:
            name = section.replace("_volts", "")[:-6]
            model = eq.model_equations("couple", section)
            syn = self._add(Synapses(group, half, model, namespace=ns,
                                     name=f"{half.name}_{name}", dtype=self._dtype(model)))
            connect_one_to_one(syn)
        self._coupling(half, group, sign)
        return half

    def _transposed_copies_learn(self, layer):
        """Whether a transposed copy of a weight into ``layer`` learns itself, reading the
        couples' ``beta`` (a copy of the layer's ``beta_syn``, summed every step). A weight
        held once learns in its parameter group from ``beta_syn`` directly, so its couples
        need no copy."""
        return any(not self._held_once(connection)
                   for connection in self.topology.incoming(layer))

    def _coupling(self, half, group, sign):
        """One-to-one synapses of the coupled reset of a couple half, one per variable it
        writes (couple.eq)."""
        for part in ("magnitude", "count", "weighted"):
            volts = part == "magnitude" and self.membrane is not None
            model = eq.model_equations("couple", "coupling_model" + ("_volts" if volts else ""))
            coupling = self._add(Synapses(
                half, group, model,
                on_pre=eq.statements("couple", f"{sign}_coupling_{part}_on_pre"),
                namespace=self.namespace, name=f"{half.name}_coupling_{part}",
                dtype=self._dtype(model)))
            connect_one_to_one(coupling)
            if volts:
                coupling.magnitude = (self.config.reset_amount_back
                                      * self.membrane["volt_scale"] * volt)
            else:
                self._constant(coupling, "magnitude")

    def _copy(self, connection, transposed, source, target, model, plasticity, slow=False,
              on_pre=None, namespace=None):
        """One Synapses copy of the weights of ``connection`` that learns by ``plasticity``
        (a :class:`~spide_brian.routes.Plasticity`), with its optimiser constants; ``slow``:
        it may run on a slot-long clock."""
        parameter = connection.parameter
        events = {"on_pre": on_pre} if on_pre else {}
        shared = self._held_once(connection)
        learns = connection.kind.learns and not shared and self.learning
        if shared:
            if parameter not in self.shared:
                self._shared_weight(connection, source, target, plasticity)
            model = without(model, STORED_NAMES) + eq.model_equations("shared_weight",
                                                                     "view_model")
        elif learns:
            model, events, slow = self.route.weight_copy(plasticity, model, events, slow)
        clock_dt = self.slot_dt if slow and self.caps.slow_clock_summed else None
        index = len(self.copies.get(parameter, []))
        syn = self._add(Synapses(source, target, model, namespace=namespace or self.namespace,
                                 dt=clock_dt, name=f"{self.name}_{parameter}_copy{index}",
                                 dtype=self._dtype(model), **events))
        if clock_dt is not None:
            # Brian2 runs a summed variable on the target's clock; a per-sample constant
            # only needs the Synapses' own slot-long clock (summed once, at the commit step).
            for updater in syn.summed_updaters.values():
                updater._clock = syn.clock
        copy = WeightCopy(syn, connection, transposed)
        self.copies.setdefault(parameter, []).append(copy)
        if shared:
            self._view(syn, connection, transposed)
            return syn
        self._optimiser_constants(syn, divide=plasticity.divide_by is not None)
        if not learns:
            return syn
        for operation in self.route.learning(plasticity, self.slot_dt, self.batch_dt):
            self._add(syn.run_regularly(operation.code, dt=operation.dt, order=operation.order,
                                        name=f"{syn.name}_run_regularly_{operation.suffix}"))
        return syn

    def _build_input(self):
        # event frames travel as events of the inputs with x != 0 where an event may read
        # its source; otherwise F x is a summed variable (once per slot for static input)
        frame_events = self.frame_input and self.caps.event_reads_source
        self.input_group = self._neuron_group(
            self.n_inputs, eq.model_equations("input"), f"{self.name}_input",
            threshold=eq.statements("input", "frame_event") if frame_events else None,
            reset="" if frame_events else None, role="input")
        self._every_step(self.input_group, "input",
                         "frames_every_step" if self.frame_input else "every_step")
        connection = self.topology.input
        model = eq.model_equations("input", "synapse_model")
        if not frame_events:
            model = model + eq.model_equations("input", "summed_input_model")
        self._copy(connection, False, self.input_group, self.layers[connection.post], model,
                   Plasticity("input", "synapse_accumulate", "reset_amount_syn"),
                   slow=not self.frame_input,
                   on_pre=eq.statements("input", "frame_on_pre") if frame_events else None)

    def _connection(self, connection):
        """The Synapses of a spiking connection: a forward copy, a transposed copy per couple
        half and, for a restricted (feedback) weight, the copy whose ``w*w`` gives its norm."""
        source, target = self.layers[connection.pre], self.layers[connection.post]
        positive_source = self.positives[connection.post]
        negative_source = self.negatives[connection.post]
        feedback = connection.restriction is not None
        model = eq.model_equations("connection")
        prefix = "feedback_" if feedback else ""
        project = "fro_scale_post" if feedback else None

        def plasticity(section):
            return Plasticity("connection", section, "reset_amount_syn", project)

        forward = "conductance_forward_on_pre" if self.config.conductances else "forward_on_pre"
        self._copy(connection, False, source, target, model, plasticity("forward_accumulate"),
                   on_pre=eq.statements("connection", prefix + forward))
        transposed_model = model + eq.model_equations("connection", "transposed_model")
        for sign, half in (("positive", positive_source), ("negative", negative_source)):
            if half is None:
                continue                     # the forward-only model has no couples
            syn = self._copy(connection, True, half, source, transposed_model,
                             plasticity("transposed_accumulate"),
                             on_pre=eq.statements("connection", f"{prefix}{sign}_on_pre"),
                             namespace=self._dropout_namespace(connection.post))
            syn.keep = 1.0
            if self.dropout:
                # the masks of the couples' neurons (the pre side), read per slot
                self._add(syn.run_regularly(
                    eq.statements("connection", "transposed_dropout_load"), dt=self.slot_dt,
                    name=f"{syn.name}_run_regularly_dropout_load"))
        if feedback and not self._held_once(connection):
            norm_model = model + eq.model_equations("connection", "feedback_norm_model")
            self._copy(connection, False, source, target, norm_model,
                       plasticity("feedback_norm_accumulate"), slow=True)

    def _build_connections(self):
        for connection in self.topology.spiking:
            self._connection(connection)

    def _build_readout(self):
        ns = self.namespace
        events = self.caps.event_reads_source
        # with error events, each output neuron emits one event at the error step and the
        # gradient copy adds w*error to g (once per sample instead of a sum every step)
        self.output = self._neuron_group(
            self.n_classes, eq.model_equations("readout"), f"{self.name}_output",
            threshold=eq.statements("readout", "error_event") if events else None,
            reset="" if events else None, role="output")
        self._constant(self.output, "lam", "rate_norm")
        self._optimiser_constants(self.output, divide=False, suffix="")
        self._every_step(self.output, "readout")
        model = eq.model_equations("readout", "normaliser_model")
        self.normaliser = self._add(NeuronGroup(1, model, namespace=ns,
                                                name=f"{self.name}_normaliser",
                                                dtype=self._dtype(model)))
        for source, target, section in ((self.output, self.normaliser, "sum_model"),
                                        (self.normaliser, self.output, "copy_back_model")):
            model = eq.model_equations("readout", section)
            syn = self._add(Synapses(source, target, model, namespace=ns,
                                     name=f"{self.name}_readout_{section[:-6]}",
                                     dtype=self._dtype(model)))
            connect_all_to_all(syn)
        connection = self.topology.readout
        last = self.layers[connection.pre]
        model = eq.model_equations("readout", "synapse_model")
        self._copy(connection, False, last, self.output, model,
                   Plasticity("readout", "readout_accumulate"),
                   on_pre=eq.statements("readout", "readout_on_pre"))
        if not self.learning:
            return                           # no gradient current to send back
        if events:
            self._copy(connection, True, self.output, last, model,
                       Plasticity("readout", "gradient_accumulate"),
                       on_pre=eq.statements("readout", "gradient_on_pre"))
        else:
            self._copy(connection, True, self.output, last,
                       model + eq.model_equations("readout", "gradient_model"),
                       Plasticity("readout", "gradient_accumulate"))

    def _build_feedback_norm(self, connection):
        """The norm of a restricted weight: summed into a one-neuron group from the post
        layer (or from the parameter group holding the weight), its scale copied to the
        layers on both sides of the connection (Brian2 cannot read a linked variable of a
        group as a synapse's ``_post`` variable) and read by the parameter group."""
        ns = self.namespace
        model = eq.model_equations("feedback_norm")
        group = self._add(NeuronGroup(1, model, namespace=ns, name=f"{self.name}_feedback_norm",
                                      dtype=self._dtype(model)))
        self._constant(group, "radius")
        self._every_step(group, "feedback_norm")
        post, pre = self.layers[connection.post], self.layers[connection.pre]
        shared = self.shared.get(connection.parameter)
        if shared is None:
            model = eq.model_equations("feedback_norm", "sum_model")
            total = self._add(Synapses(post, group, model, namespace=ns,
                                       name=f"{group.name}_sum", dtype=self._dtype(model)))
        else:
            # ||W||_F of the parameter's elements, summed after each update: on the
            # mini-batch clock where the SGD step has one, else once per slot (the weight
            # changes only at commit steps, before the sum); the parameter group reads the
            # scale
            slow = self.caps.slow_clock_summed
            model = eq.model_equations("shared_weight", "norm_model")
            total = self._add(Synapses(shared.group, group, model, namespace=ns,
                                       dt=(self.batch_dt or self.slot_dt) if slow else None,
                                       name=f"{group.name}_sum", dtype=self._dtype(model)))
            if slow:
                for updater in total.summed_updaters.values():
                    updater._clock = total.clock
            shared.group.fro_scale = linked_var(
                group, "fro_scale", index=np.zeros(len(shared.group), dtype=np.int64))
        connect_all_to_all(total)
        targets = [post] if post is pre else [post, pre]
        for index, target in enumerate(targets):
            model = eq.model_equations("feedback_norm", "copy_model")
            copy = self._add(Synapses(group, target, model, namespace=ns,
                                      name=f"{group.name}_copy{index}",
                                      dtype=self._dtype(model)))
            connect_all_to_all(copy)
        self.feedback_norm_group = group

    def _build_monitors(self):
        for layer, group in enumerate(self.layers):
            self.monitors[f"layer{layer}"] = self._add(StateMonitor(
                group, ["count", "pos_count", "neg_count"], record=True, dt=self.slot_dt,
                name=f"{group.name}_per_sample"))
        self.monitors["output"] = self._add(StateMonitor(
            self.output, ["prob", "logit"], record=True, dt=self.slot_dt,
            name=f"{self.output.name}_per_sample"))

    def discard(self):
        """Mark the objects as built only to be inspected, never run (for example to measure
        their arrays), so that Brian2 does not warn about unused objects when they are
        deleted."""
        for obj in self.objects:
            if obj._network is None:
                obj._network = f"{self.name}-not-run"

    # -- state in and out -------------------------------------------------------------------
    @property
    def run_duration(self):
        """Duration of a run over all ``capacity`` slots and the final commit step."""
        return self.schedule.run_steps(self.capacity) * self.dt

    def _bias_owner(self, name):
        index = self.topology.bias_owner(name)
        return self.output if index == READOUT else self.layers[index]

    def state_items(self, params, buffers=None):
        """``[(owner, variable name, array)]`` that load ``params`` and momentum ``buffers``.

        Accumulated gradients start at 0. The form of :meth:`state_values` for every brian2
        version (a ``VariableView`` is not hashable on brian2 2.5).
        """
        buffers = buffers or {}
        items = []
        for name, value in params.items():
            buffer = buffers.get(name, np.zeros_like(value))
            if name in self.shared:
                items += self.shared[name].state_items(value, buffer)
            elif name in self.copies:
                learns = self.copies[name][0].connection.kind.learns
                for copy in self.copies[name]:
                    items.append((copy.synapses, "w", copy.flatten(value)))
                    if learns:
                        items.append((copy.synapses, "momentum_buffer", copy.flatten(buffer)))
            elif np.size(value) == 0:
                continue                   # a layer without a bias: nothing to load
            else:
                owner = self._bias_owner(name)
                items.append((owner, "bias", np.asarray(value, dtype=np.float64).copy()))
                items.append((owner, "bias_momentum",
                              np.asarray(buffer, dtype=np.float64).copy()))
        return items

    def state_values(self, params, buffers=None):
        """``{VariableView: array}`` that load ``params`` and momentum ``buffers`` (brian2
        >= 2.6; usable for direct assignment and as ``run_args`` on standalone devices)."""
        return {getattr(obj, name): value for obj, name, value in self.state_items(params, buffers)}

    def constant_items(self, config=None):
        """``[(group, variable name, value)]`` of every (shared, constant) parameter.

        The values are those of ``config`` (default: the model's own config). A list of
        triples rather than a mapping, because Brian2 < 2.6 cannot hash variable views.
        """
        if config is None:
            return list(self._constants)
        mapping = _constant_table(config)
        return [(obj, name, mapping(obj, name)) for obj, name, _ in self._constants]

    def constant_values(self, config=None):
        """``{VariableView: value}`` of every (shared, constant) parameter for ``config``.

        On standalone devices a compiled model of the same structure (layer sizes, T, T_b,
        feedback) can run another leak, reset, threshold or optimiser setting by passing
        these as ``run_args``. Defaults to the model's own config.
        """
        return {getattr(obj, name): value for obj, name, value in self.constant_items(config)}

    def table_values(self, tables):
        """``{TimedArray: values}`` of a :class:`SampleTables` (run_args on standalone)."""
        self._check_tables(tables)
        values = {self.timed_arrays[self.input_table]: self._input_rows(tables),
                  self.timed_arrays["sample_label"]: tables.label,
                  self.timed_arrays["sample_kappa"]: tables.kappa,
                  self.timed_arrays["update_flag"]: tables.update,
                  self.timed_arrays["sgd_rate"]: tables.rate}
        if self.dropout:
            for name, rows in self._dropout_rows(tables).items():
                values[self.dropout_tables[name]] = rows
        elif tables.dropout:
            raise ValueError("these tables hold dropout masks but the model was built "
                             "without dropout (config.dropout = 0)")
        return values

    def assign(self, params, buffers=None):
        """Set weights, biases and momentum buffers directly (runtime devices)."""
        for obj, name, value in self.state_items(params, buffers):
            getattr(obj, name)[:] = value

    def load(self, tables, params, buffers=None, config=None):
        """Load the next run into a model on a runtime device, in place: the constants of
        ``config`` (default: the model's own), ``params`` and ``buffers``, and the values of
        ``tables``. The runtime counterpart of passing :meth:`constant_values`,
        :meth:`state_values` and :meth:`table_values` as a standalone program's
        ``run_args``: one model serves every run of a trainer.

        The tables are written into the arrays the TimedArrays were built with (their
        shapes are fixed by the capacity), which the code objects of the numpy and Cython
        targets read during a run.
        """
        for obj, name, value in self.constant_items(config):
            setattr(obj, name, value)
        self.assign(params, buffers)
        for timed_array, values in self.table_values(tables).items():
            timed_array.values[...] = values

    def read_parameters(self):
        """Current parameters (from the first copy of each weight) and momentum buffers.

        The feedback weight is returned projected onto the Frobenius ball, as after the
        reference optimiser step.
        """
        params, buffers = {}, {}
        for name, shared in self.shared.items():
            params[name], buffers[name] = shared.read()
        for name, copies in self.copies.items():
            first = copies[0]
            if name in params:
                continue
            if not first.connection.kind.learns:
                params[name] = buffers[name] = np.zeros(first.shape)
                continue
            params[name] = first.matrix(first.synapses.w[:])
            buffers[name] = first.matrix(first.synapses.momentum_buffer[:])
        # float64 in Python whatever the model's float_dtype (float32 values are exact there)
        params = {name: np.asarray(value, dtype=np.float64) for name, value in params.items()}
        for connection in self.topology.restricted:
            params[connection.parameter] = project_feedback(params[connection.parameter],
                                                            connection.restriction)
        for name, shape in self.topology.parameter_shapes().items():
            if name not in params and 0 in shape:
                params[name] = buffers[name] = np.zeros(shape)     # a layer without a bias
            elif name not in params:
                owner = self._bias_owner(name)
                params[name] = np.array(owner.bias[:])
                buffers[name] = np.array(owner.bias_momentum[:])
        order = list(self.topology.parameter_shapes())
        return ({name: np.asarray(params[name], dtype=np.float64) for name in order},
                {name: np.asarray(buffers[name], dtype=np.float64) for name in order})

    def copy_mismatch(self):
        """Largest absolute difference between copies of each weight (0 when equal)."""
        out = {}
        for name, copies in self.copies.items():
            if name in self.shared or not copies[0].connection.kind.learns:
                out[name] = 0.0            # one value per element, or fixed: no copy can drift
                continue
            mats = [c.matrix(c.synapses.w[:]) for c in copies]
            out[name] = max(float(np.max(np.abs(m - mats[0]))) for m in mats)
        return out

    def per_sample(self, n_samples):
        """Per-sample records of the last run, sample-major.

        Returns
        -------
        dict
            ``forward_counts`` and ``backward_signed`` / ``backward_counts`` (lists per
            layer of ``(n, n_l)`` int arrays), ``prob`` and ``logit`` ``(n, n_classes)``.
        """
        out = {"forward_counts": [], "backward_signed": [], "backward_counts": []}
        for layer in range(len(self.layers)):
            mon = self.monitors[f"layer{layer}"]
            count = np.asarray(mon.count[:, 1:n_samples + 1]).T
            pos = np.asarray(mon.pos_count[:, 1:n_samples + 1]).T
            neg = np.asarray(mon.neg_count[:, 1:n_samples + 1]).T
            out["forward_counts"].append(np.rint(count).astype(np.int64))
            out["backward_signed"].append(np.rint(pos - neg).astype(np.int64))
            out["backward_counts"].append(np.rint(pos + neg).astype(np.int64))
        mon = self.monitors["output"]
        out["prob"] = np.asarray(mon.prob[:, 1:n_samples + 1], dtype=np.float64).T
        out["logit"] = np.asarray(mon.logit[:, 1:n_samples + 1], dtype=np.float64).T
        return out
