r"""Physical units of the SPIDE neuron model: time constants, durations and voltages.

The SPIDE model is a discrete map: one step of the forward and backward stages is one
update of every membrane, ``v <- lambda v + I`` (docs/method.md M1, M3). A membrane that
obeys the differential equation

.. math::

    \tau_m \frac{dV}{dt} = -(V - V_\mathrm{rest}),

with delta synapses (a spike moves ``V`` by the synapse's weight at once) and integrated
exactly over one step of length ``dt`` is that map, with

* the leak :math:`\lambda = \exp(-dt / \tau_m)` (:math:`\tau_m = \infty`: the perfect
  integrator, IF, :math:`\lambda = 1`);
* ``T = t_fwd / dt`` forward and ``T_b = t_bwd / dt`` backward steps for phases of
  durations ``t_fwd`` and ``t_bwd``;
* the dimensionless membrane :math:`v = (V - V_\mathrm{rest}) / s` with the voltage scale
  :math:`s = (V_\mathrm{th} - V_\mathrm{rest}) / V_{th}` that puts the physical threshold
  :math:`V_\mathrm{th}` at the model's threshold ``vth``: weights and currents are in units
  of ``s`` per spike, the modified reset subtracts :math:`2 (V_\mathrm{th} - V_\mathrm{rest})`,
  and the couples' threshold ``vth_back`` is :math:`V^b_\mathrm{th} - V_\mathrm{rest} =
  \mathrm{vth\_back}\, s`.

The voltages change nothing in the discrete model (it is invariant to ``s``); they say which
membrane potential a model value stands for (:meth:`NeuronUnits.potential`). This module
converts between the two descriptions and checks every quantity's dimensions; the mapping is
in docs/biophysics.md.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import brian2.units as brian_units
from brian2.units.fundamentalunits import DimensionMismatchError, Quantity, get_dimensions

from .config import SPIDEConfig

__all__ = ["NeuronUnits", "UnitError", "parse_quantity", "check_quantity", "step_decay",
           "EXPECTED_UNITS", "UNIT_OPTIONS", "refractory_steps", "refractory_period",
           "reference_membrane"]

#: The options of ``spide-brian train`` (and keys of a study) that take these quantities,
#: and the parameter each one is.
UNIT_OPTIONS = {"dt": "dt", "membrane_tau": "tau_m", "forward_duration": "forward_duration",
                "backward_duration": "backward_duration", "refractory": "refractory",
                "tau_syn": "tau_syn"}
#: Each physical parameter, the unit its value must have and an example of one.
EXPECTED_UNITS = {
    "dt": (brian_units.second, "a time", "1ms"),
    "tau_m": (brian_units.second, "a time", "20ms"),
    "forward_duration": (brian_units.second, "a time", "30ms"),
    "backward_duration": (brian_units.second, "a time", "100ms"),
    "refractory": (brian_units.second, "a time", "2ms"),
    "tau_syn": (brian_units.second, "a time", "5ms"),
    "v_rest": (brian_units.volt, "a voltage", "-65mV"),
    "v_threshold": (brian_units.volt, "a voltage", "-50mV"),
}
#: Relative distance of a duration from a whole number of steps that still counts as whole.
STEP_TOLERANCE = 1e-9

_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*\*?\s*"
                       r"([A-Za-z]+)\s*$")


class UnitError(ValueError):
    """A physical parameter with the wrong dimensions or an unusable value; the message
    names the parameter, the unit it needs and an example."""


def _describe_dimensions(value):
    dimensions = get_dimensions(value)
    if dimensions.is_dimensionless:
        return "a dimensionless number"
    for unit, what, _ in EXPECTED_UNITS.values():
        if dimensions == unit.dim:
            return what
    return f"a value in {dimensions}"


def check_quantity(name, value):
    """Return ``value`` if it has the dimensions of parameter ``name``, else raise
    :class:`UnitError` naming the parameter and the expected unit."""
    unit, what, example = EXPECTED_UNITS[name]
    if not isinstance(value, Quantity):
        raise UnitError(f"{name} must be {what} with its unit (e.g. {example}), got "
                        f"{value!r}, a plain number")
    try:
        value.in_unit(unit)
    except DimensionMismatchError:
        raise UnitError(f"{name} must be {what} (e.g. {example}), got {value}, "
                        f"{_describe_dimensions(value)}") from None
    if not math.isfinite(float(value)) and not (name == "tau_m" and float(value) > 0):
        raise UnitError(f"{name} must be finite, got {value}")
    return value


def parse_quantity(text, name, label=None):
    """A Brian2 quantity from text such as ``"20ms"``, ``"0.1 ms"`` or ``"-65*mV"`` (``"inf"``
    for an infinite membrane time constant), checked for the dimensions of ``name``;
    messages call the parameter ``label`` (e.g. the command-line flag), default ``name``.

    Raises
    ------
    UnitError
        If the text is not a number with a Brian2 unit, or the unit has other dimensions.
    """
    unit, what, example = EXPECTED_UNITS[name]
    label = label or name
    if name == "tau_m" and str(text).strip().lower() in ("inf", "infinity"):
        return math.inf * brian_units.second
    match = _QUANTITY.match(str(text))
    if match is None:
        raise UnitError(f"{label}: {text!r} is not a number with a unit; give {what} such as "
                        f"{example}")
    number, symbol = match.groups()
    unit_value = getattr(brian_units, symbol, None)
    if not isinstance(unit_value, Quantity):
        raise UnitError(f"{label}: {symbol!r} in {text!r} is not a Brian2 unit; give {what} "
                        f"such as {example}")
    try:
        return check_quantity(name, float(number) * unit_value)
    except UnitError as error:
        raise UnitError(f"{label}{str(error)[len(name):]}") from None


def step_decay(tau, dt):
    r"""The factor :math:`\exp(-dt/\tau)` by which a quantity with time constant ``tau``
    decays over one step ``dt`` (1 for ``tau = inf``)."""
    if math.isinf(float(tau)):
        return 1.0
    return math.exp(-float(dt / tau))


def refractory_steps(refractory, dt):
    """The held steps ``R`` of Brian2's absolute refractory period ``refractory``.

    Brian2 counts the step of the spike into the period: a neuron with ``refractory =
    k dt`` fires again at the earliest ``k`` steps after a spike, so its membrane is held on
    the ``k - 1`` steps in between (``R = k - 1``; 0 and ``dt`` both give ``R = 0``, a
    neuron fires at most once per step anyway).
    """
    return max(0, _whole_steps("refractory", refractory, dt) - 1)


def refractory_period(steps, dt):
    """Brian2's refractory period of ``R = steps`` held steps: ``(R + 1) dt``, 0 for R = 0."""
    return (int(steps) + 1) * dt if int(steps) > 0 else 0 * dt


def _whole_steps(name, duration, dt):
    steps = float(duration / dt)
    whole = round(steps)
    least = 0 if name == "refractory" else 1   # no refractory period is a period of 0 steps
    if whole < least or abs(steps - whole) > STEP_TOLERANCE * max(1.0, abs(steps)):
        raise UnitError(f"{name} {duration} is not a whole number of steps of dt = {dt} "
                        f"({steps:g} steps); choose a multiple of dt")
    return int(whole)


@dataclass(frozen=True, eq=False)
class NeuronUnits:
    r"""The physical description of the SPIDE neurons (see the module docstring).

    Parameters
    ----------
    dt : Quantity
        Duration of one SPIDE step (a time).
    tau_m : Quantity
        Membrane time constant; ``inf * second`` for the perfect integrator (IF).
    v_rest, v_threshold : Quantity
        Resting potential and forward threshold (voltages, ``v_threshold > v_rest``).
    refractory : Quantity
        Absolute refractory period of the forward neurons, as Brian2's ``refractory``: after a
        spike the neuron fires again at the earliest this long later (a whole number of
        steps; ``R = refractory/dt - 1`` held steps; 0: none; docs/biophysics.md B3).
    tau_syn : Quantity or None
        Time constant of exponential current synapses; None: delta synapses (B4).

    Examples
    --------
    >>> from brian2.units import ms
    >>> config = NeuronUnits(dt=1 * ms, tau_m=20 * ms, refractory=3 * ms,
    ...                      tau_syn=5 * ms).discrete()
    >>> round(config.leaky, 4), config.refractory_steps, config.synapse
    (0.9512, 2, 'exponential')
    """

    dt: Quantity = field(default_factory=lambda: 1 * brian_units.ms)
    tau_m: Quantity = field(default_factory=lambda: math.inf * brian_units.second)
    v_rest: Quantity = field(default_factory=lambda: -65 * brian_units.mV)
    v_threshold: Quantity = field(default_factory=lambda: -50 * brian_units.mV)
    refractory: Quantity = field(default_factory=lambda: 0 * brian_units.ms)
    tau_syn: Quantity = None

    def __post_init__(self):
        for name in ("dt", "tau_m", "v_rest", "v_threshold", "refractory"):
            check_quantity(name, getattr(self, name))
        if self.tau_syn is not None:
            check_quantity("tau_syn", self.tau_syn)
            if not float(self.tau_syn) > 0:
                raise UnitError(f"tau_syn must be > 0 (None for delta synapses), got "
                                f"{self.tau_syn}")
        if float(self.refractory) < 0:
            raise UnitError(f"refractory must be >= 0, got {self.refractory}")
        if not float(self.dt) > 0:
            raise UnitError(f"dt must be > 0, got {self.dt}")
        if not float(self.tau_m) > 0:
            raise UnitError(f"tau_m must be > 0 (inf for IF neurons), got {self.tau_m}")
        if not float(self.v_threshold) > float(self.v_rest):
            raise UnitError(f"v_threshold ({self.v_threshold}) must lie above v_rest "
                            f"({self.v_rest})")

    @property
    def leak(self):
        r"""The leak per step :math:`\lambda = \exp(-dt/\tau_m)` (1 for IF)."""
        return step_decay(self.tau_m, self.dt)

    def steps(self, duration, name="forward_duration"):
        """The number of steps of ``dt`` in ``duration`` (which must be a whole number)."""
        return _whole_steps(name, check_quantity(name, duration), self.dt)

    def voltage_scale(self, config):
        """The voltage ``s`` of one unit of the model's membrane: ``(V_th - V_rest) / vth``."""
        return (self.v_threshold - self.v_rest) / config.vth

    def potential(self, v, config):
        """The membrane potential (volts) that the model's membrane value ``v`` stands for."""
        return self.v_rest + v * self.voltage_scale(config)

    @property
    def synapse_fields(self):
        """The config fields of the synapses: ``synapse`` and ``synapse_leak``
        (:math:`\exp(-dt/\tau_{syn})`)."""
        if self.tau_syn is None:
            return {"synapse": "delta", "synapse_leak": 0.0}
        return {"synapse": "exponential", "synapse_leak": step_decay(self.tau_syn, self.dt)}

    def discrete(self, config=None, forward_duration=None, backward_duration=None):
        """``config`` (default :class:`SPIDEConfig`) with the leak, the refractory steps, the
        synapses and, where given, the numbers of forward and backward steps of these units.

        Raises
        ------
        UnitError
            If a duration or the refractory period is not a whole number of steps.
        """
        config = config or SPIDEConfig()
        changes = {"leaky": self.leak,
                   "refractory_steps": refractory_steps(self.refractory, self.dt),
                   **self.synapse_fields}
        if forward_duration is not None:
            changes["time_step"] = self.steps(forward_duration, "forward_duration")
        if backward_duration is not None:
            changes["time_step_back"] = self.steps(backward_duration, "backward_duration")
        return config.replace(**changes)

    @classmethod
    def of(cls, config, dt=1 * brian_units.ms, **voltages):
        r"""The units of ``config`` at step ``dt``: :math:`\tau_m = -dt / \ln\lambda`, the
        refractory period ``(R + 1) dt`` (Brian2's, counting the spike's
        step) and :math:`\tau_{syn} = -dt / \ln\lambda_s`."""
        dt = check_quantity("dt", dt)
        tau_m = math.inf * brian_units.second if config.leaky == 1.0 else \
            -dt / math.log(config.leaky)
        tau_syn = (-dt / math.log(config.synapse_leak) if config.synapse == "exponential"
                   else None)
        return cls(dt=dt, tau_m=tau_m, refractory=refractory_period(config.refractory_steps, dt),
                   tau_syn=tau_syn, **voltages)

    def membrane_constants(self, config):
        r"""Constants (SI floats) of the membrane in volts for ``config`` (docs/biophysics.md
        B8): ``leak_rate`` (1/tau_m in Hz, 0 for IF), ``v_rest``, ``volt_scale`` (the
        voltage of one unit of the discrete model), ``threshold_volts``, ``reset_volts`` and
        Brian2's ``refractory`` period (s) of ``config.refractory_steps`` held steps (``R K``
        held integration steps of ``dt / K`` with ``K`` integration steps per step).

        Raises
        ------
        UnitError
            If ``config``'s leak is not this membrane's :math:`\exp(-dt/\tau_m)`.
        """
        if abs(config.leaky - self.leak) > 1e-12:
            raise UnitError(f"the config's leak {config.leaky!r} is not exp(-dt/tau_m) = "
                            f"{self.leak!r} of these units; build the config with "
                            "NeuronUnits.discrete(config)")
        scale = float(self.voltage_scale(config))
        rest = float(self.v_rest)
        return {"leak_rate": 0.0 if math.isinf(float(self.tau_m)) else 1.0 / float(self.tau_m),
                "v_rest": rest, "volt_scale": scale,
                "threshold_volts": rest + config.threshold * scale,
                "reset_volts": config.reset_amount * scale,
                "refractory": float(refractory_period(config.held_steps,
                                                      self.integration_dt(config)))}

    def integration_dt(self, config):
        """The integration step ``dt / K`` of ``config`` (``K`` =
        :attr:`SPIDEConfig.integration_steps`; ``dt`` itself for ``K = 1``)."""
        steps = config.integration_steps
        return self.dt if steps == 1 else self.dt / steps

    def durations(self, config):
        """``(forward, backward)`` phase durations of ``config``'s ``T`` and ``T_b``."""
        return config.time_step * self.dt, config.time_step_back * self.dt


def reference_membrane(config, dt):
    """The membrane of ``config`` for the numpy reference on model steps of ``dt`` (a time;
    the integration step, a SPIDE step lasting ``K dt``).

    None for ``config.membrane == 'discrete'``; for ``'volts'`` the constants of
    :meth:`NeuronUnits.membrane_constants` of the config's units (:meth:`NeuronUnits.of`)
    and ``dt`` in seconds, which :func:`spide_brian.reference.forward` integrates as the
    Brian2 model does.
    """
    if config.membrane != "volts":
        return None
    units = NeuronUnits.of(config, dt * config.integration_steps)
    return dict(units.membrane_constants(config), dt=float(dt))
