"""Configuration of a SPIDE model and its training: one frozen dataclass.

Every field maps 1:1 to a command-line flag of ``spide-brian train`` (``time_step`` is
``--time-step``, ``scale_factor`` is ``--scale-factor`` ...), with the names of the reference
implementation. The defaults are the F400-digits configuration: 64 inputs -> 400 IF neurons with
400 x 400 feedback, T = 30, T_b = 100, S = 100 (docs/method.md M0).
"""
from __future__ import annotations

import dataclasses
import json
import math
import numbers
from dataclasses import dataclass

import numpy as np

__all__ = ["SPIDEConfig", "ConfigError", "RESETS", "INITS", "TIMINGS", "GATES", "SYNAPSES", "MEMBRANES",
           "COUPLE_NEURONS", "FLOAT_DTYPES", "rate_normaliser"]

RESETS = ("modified", "standard")
INITS = ("kaiming", "unit_row_norm")
TIMINGS = ("reference", "brian")
GATES = ("binary", "slope")
#: Neuron of the ternary couples: leaky as the forward neurons, or a perfect integrator.
COUPLE_NEURONS = ("lif", "if")
SYNAPSES = ("delta", "exponential", "conductance")
MEMBRANES = ("discrete", "volts")
FLOAT_DTYPES = ("float64", "float32")

# the type of every field but hidden_sizes (a tuple of integers)
INT_FIELDS = ("time_step", "time_step_back", "batch_size", "epochs", "seed",
              "warmup_iterations", "refractory_steps", "integration_steps")
FLOAT_FIELDS = ("vth", "vth_back", "leaky", "scale_factor", "lr", "momentum", "weight_decay",
                "feedback_norm", "lr_decay", "dropout", "synapse_leak", "reversal_exc",
                "reversal_inh")
BOOL_FIELDS = ("feedback",)
CHOICE_FIELDS = ("reset", "input_init", "hidden_init", "feedback_init", "timing", "gate",
                 "synapse", "float_dtype", "couple_neuron")
STRING_FIELDS = ("model",)


def _per_integration_step(leak, steps):
    """A per-step factor ``leak`` spread over ``steps`` integration steps (exactly ``leak``
    for one step)."""
    return float(leak) if steps == 1 else float(leak) ** (1.0 / steps)


def _per_spide_step(norm, steps):
    """A normaliser of spikes per integration step turned into one per SPIDE step."""
    return norm if steps == 1 else norm / steps


def _is_integer(value):
    """An integer that is not a bool (``True`` is an ``int`` in Python)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def rate_normaliser(leaky, steps):
    r"""Normaliser of the leak-weighted spike count: ``T`` (IF) or ``(1-\lambda^T)/(1-\lambda)``."""
    if leaky == 1.0:
        return float(steps)
    return (1.0 - leaky ** steps) / (1.0 - leaky)


class ConfigError(ValueError):
    """An invalid configuration value; the message names the field and the accepted values."""


@dataclass(frozen=True)
class SPIDEConfig:
    """Network, dynamics and optimiser settings of SPIDE.

    Parameters
    ----------
    hidden_sizes : tuple of int
        Sizes of the spiking layers ``0 .. N-1``. Layer ``l`` feeds layer ``l+1``.
    feedback : bool
        Whether the last spiking layer projects back to the first one (one step of delay).
    time_step : int
        Forward simulation steps ``T``.
    time_step_back : int
        Backward simulation steps ``T_b`` of the ternary neurons.
    vth, vth_back : float
        Forward and backward thresholds ``V_th`` and ``V_th^b``. The reset subtracts
        ``V = 2 V_th`` (forward) and ``M = 2 V_th^b`` (backward).
    leaky : float
        Leak factor ``lambda`` in ``(0, 1]``; 1 gives IF neurons, less than 1 LIF neurons.
    couple_neuron : {'lif', 'if'}
        Neuron of the backward stage's ternary couples. ``'lif'`` (the method's default):
        the couples leak by ``lambda`` as the forward neurons do and ``beta`` is their
        leak-weighted mean, ``u^b <- lambda u^b + I^b``. ``'if'``: they integrate without
        leak and ``beta`` is the plain mean of the couple spikes over ``T_b`` (the method's
        other backward neuron type), whose rates tend to the exact adjoint
        ``beta = m (g + W^T beta / V)`` while leaky couples lose charge (a drive below
        ``(1 - lambda)`` times the couple threshold never fires it). Both are the same with
        ``leaky = 1``.
    reset : {'modified', 'standard'}
        ``'modified'``: threshold ``V_th``, subtract ``2 V_th`` (SPIDE). ``'standard'``:
        threshold ``2 V_th``, subtract ``2 V_th`` (IDE). Applies to both stages.
    scale_factor : float
        Loss scale ``S``; the gradient current is ``g = (S/B) W_c^T (p - y)``.
    lr : float
        Base learning rate ``lr0``; SGD uses ``lr0 / S``.
    momentum, weight_decay : float
        SGD momentum and weight decay (applied to the S-scaled gradients, as the reference).
    batch_size : int
        Mini-batch size ``B``: weights stay fixed within a mini-batch.
    epochs : int
        Training epochs.
    seed : int
        Seed for initial weights and sample order.
    feedback_norm : float
        Radius ``r`` of the feedback Frobenius-norm restriction ``||W_fb||_F <= r``.
    input_init, hidden_init, feedback_init : {'kaiming', 'unit_row_norm'}
        Initialisation of the input, feed-forward hidden and feedback weights.
    timing : {'reference', 'brian'}
        Synaptic delays of the numpy reference: ``'reference'`` propagates feed-forward hops
        within a step (the PyTorch code), ``'brian'`` delays every hop by one step (Brian2).
    lr_milestones : tuple of int
        Epochs from which the learning rate is multiplied by ``lr_decay`` (once per
        milestone passed; e.g. ``(30, 60, 90)``); see :meth:`learning_rate`.
    lr_decay : float
        Factor ``gamma`` applied at each milestone.
    warmup_iterations : int
        Mini-batches over which the learning rate rises linearly from ``lr0 / W`` to ``lr0``
        at the start of training (0: no warm-up).
    dropout : float
        Probability ``p`` in ``[0, 1)`` that a neuron's input from one connection is dropped
        for a training sample (one mask per sample and connection, fixed over both stages,
        kept inputs scaled by ``1 / (1 - p)``; :mod:`spide_brian.dropout`). 0: no dropout.
        Evaluation never drops.
    refractory_steps : int
        Absolute refractory period ``R`` of the forward neurons, in steps: after a spike a
        neuron's membrane is held (no leak, its inputs of those steps are lost) and it
        cannot fire for ``R`` steps (:mod:`spide_brian.transfer`; docs/biophysics.md B3).
        0: none (the SPIDE model). The couples have none (see B3).
    gate : {'binary', 'slope'}
        Surrogate derivative of the backward stage. ``'binary'``: the 0/1 gate
        ``m = [0 < count < count_max]`` of the method. ``'slope'``: the gate times the
        slope of the neuron's steady-state transfer function at its rate
        (:func:`spide_brian.transfer.slope_of_rate`); the couples' input is scaled by it.
        The two differ only where the transfer function is not the clamp (refractoriness).
    synapse : {'delta', 'exponential', 'conductance'}
        Synapses of the spiking connections (the input connection drives the membrane
        directly). ``'delta'``: a spike's current acts in one step (the SPIDE model).
        ``'exponential'``: it becomes a current that decays by ``synapse_leak`` per step,
        with unit total charge, on the forward and the couples' pathways (docs/biophysics.md
        B4). ``'conductance'``: forward spikes open excitatory (``w > 0``) or inhibitory
        (``w < 0``) conductances with reversal potentials ``reversal_exc`` and
        ``reversal_inh``, decaying by ``synapse_leak`` (B5); the couples keep delta synapses.
    synapse_leak : float
        Decay per step ``lambda_s = exp(-dt / tau_syn)`` of an exponential synapse's current,
        in ``(0, 1)``, or of a conductance, in ``[0, 1)``; 0 for delta synapses.
    reversal_exc, reversal_inh : float
        Reversal potentials of the excitatory and inhibitory conductances, in the model's
        membrane units above rest (``(E - V_rest) / s``, docs/biophysics.md B1): the defaults
        are 0 mV and -80 mV for a neuron resting at -65 mV with its threshold at -50 mV.
    membrane : {'discrete', 'volts'}
        How the Brian2 model holds the forward membranes and the couples' membranes.
        ``'discrete'``: dimensionless values updated by the map above. ``'volts'``: Brian2
        differential equations with units (``dv/dt = (v_rest - v)/tau_m : volt``, integrated
        exactly; thresholds, resets and Brian2's ``refractory`` in volts and seconds;
        docs/biophysics.md B8), the same model up to rounding; the numpy reference then runs
        the update that Brian2 generates for it.
    integration_steps : int
        Integration steps ``K`` per SPIDE step (docs/biophysics.md B9). 1: the SPIDE map, one
        update per step. ``K > 1`` integrates each of the ``T`` (``T_b``) steps in ``K``
        steps of ``dt = step / K``: the leak per integration step is ``lambda^(1/K)`` (and
        ``lambda_s^(1/K)`` for the synapses), a constant current (``F x``, the biases and the
        gradient current ``g``) deposits ``1/K`` of its charge per step in each integration
        step, a spike still moves the membrane by its whole weight, thresholds are tested at
        every integration step, and a refractory period of ``R`` steps lasts ``R K``
        integration steps. Rates stay per SPIDE step, so a neuron can fire up to ``K``
        spikes in one and its rate saturates at ``K``; the rate model is the clamp to
        ``[0, K]``.
    float_dtype : {'float64', 'float32'}
        Floating-point type of the Brian2 model's state (membranes, currents, rates,
        weights, gradients, optimiser buffers and constants). ``'float64'``: the model
        equals the numpy reference (the oracle, always float64) to rounding, spike for spike.
        ``'float32'``: half the memory traffic per synaptic event, for speed where exactness
        to float64 is not required (the usual choice on GPUs); values are rounded to float32
        after every statement, so spike counts and weights drift from the reference's
        (docs/devices.md). The per-sample schedule (step and slot indices) stays float64;
        parameters are handed back to Python as float64.
    model : str
        A named network of :mod:`spide_brian.models` (convolutional layers and feedback,
        e.g. ``'mnist-conv-f'``); empty: the dense chain of ``hidden_sizes`` (which a named
        model ignores).
    """

    hidden_sizes: tuple = (400,)
    feedback: bool = True
    time_step: int = 30
    time_step_back: int = 100
    vth: float = 1.0
    vth_back: float = 0.5
    leaky: float = 1.0
    couple_neuron: str = "lif"
    reset: str = "modified"
    scale_factor: float = 100.0
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 128
    epochs: int = 20
    seed: int = 0
    feedback_norm: float = 2.0
    input_init: str = "kaiming"
    hidden_init: str = "kaiming"
    feedback_init: str = "unit_row_norm"
    timing: str = "reference"
    lr_milestones: tuple = ()
    lr_decay: float = 0.1
    warmup_iterations: int = 0
    dropout: float = 0.0
    refractory_steps: int = 0
    gate: str = "binary"
    synapse: str = "delta"
    synapse_leak: float = 0.0
    reversal_exc: float = 65.0 / 15.0
    reversal_inh: float = -1.0
    membrane: str = "discrete"
    model: str = ""
    integration_steps: int = 1
    float_dtype: str = "float64"

    def __post_init__(self):
        self._check_types()
        self.validate()

    def _check_types(self):
        """Raise :class:`ConfigError` for a value of the wrong type; normalise numbers.

        Integers must be integers (not bools, not floats: ``hidden_sizes=(1.5,)`` is an
        error, not a layer of 1), floats accept integers, bools must be bools, choices
        strings; checked here so that a wrong type fails at once, not deep inside a run.
        """
        sizes = self.hidden_sizes
        if isinstance(sizes, (str, bytes)) or not isinstance(sizes, (tuple, list)) or not all(
                _is_integer(n) for n in sizes):
            raise ConfigError(f"hidden_sizes must be a tuple of integers, got {sizes!r}")
        object.__setattr__(self, "hidden_sizes", tuple(int(n) for n in sizes))
        milestones = self.lr_milestones
        if isinstance(milestones, (str, bytes)) or not isinstance(milestones, (tuple, list)) \
                or not all(_is_integer(m) for m in milestones):
            raise ConfigError(f"lr_milestones must be a tuple of epoch numbers, got "
                              f"{milestones!r}")
        object.__setattr__(self, "lr_milestones", tuple(int(m) for m in milestones))
        for item in dataclasses.fields(self):
            name, value = item.name, getattr(self, item.name)
            if name in INT_FIELDS:
                if not _is_integer(value):
                    raise ConfigError(f"{name} must be an integer, got {value!r}")
                object.__setattr__(self, name, int(value))
            elif name in FLOAT_FIELDS:
                if not (_is_integer(value) or isinstance(value, (float, np.floating))):
                    raise ConfigError(f"{name} must be a number, got {value!r}")
                object.__setattr__(self, name, float(value))
            elif name in BOOL_FIELDS:
                if not isinstance(value, (bool, np.bool_)):
                    raise ConfigError(f"{name} must be true or false, got {value!r}")
                object.__setattr__(self, name, bool(value))
            elif name in CHOICE_FIELDS + STRING_FIELDS and not isinstance(value, str):
                raise ConfigError(f"{name} must be a string, got {value!r}")

    # -- derived quantities -------------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        """Number of spiking layers ``N`` (of the named model when ``model`` is set)."""
        if self.model:
            from .models import named_model
            return len(named_model(self.model).layers)
        return len(self.hidden_sizes)

    @property
    def reset_amount(self) -> float:
        """Forward reset ``V = V_th - u_rest = 2 V_th`` (also the slope ``1/V`` of the rate)."""
        return 2.0 * self.vth

    @property
    def threshold(self) -> float:
        """Forward firing threshold: ``V_th`` (modified reset) or ``2 V_th`` (standard)."""
        return self.vth if self.reset == "modified" else 2.0 * self.vth

    @property
    def reset_amount_back(self) -> float:
        """Backward spike magnitude ``M = V_th^b - u_rest^b = 2 V_th^b``."""
        return 2.0 * self.vth_back

    @property
    def threshold_back(self) -> float:
        """Backward threshold: ``V_th^b`` (modified reset) or ``2 V_th^b`` (standard)."""
        return self.vth_back if self.reset == "modified" else 2.0 * self.vth_back

    @property
    def forward_steps(self) -> int:
        """Integration steps of the forward stage, ``T K``."""
        return self.time_step * self.integration_steps

    @property
    def backward_steps(self) -> int:
        """Integration steps of the backward stage, ``T_b K``."""
        return self.time_step_back * self.integration_steps

    @property
    def step_leak(self) -> float:
        """Leak of one integration step, ``lambda^(1/K)`` (``lambda`` itself for ``K = 1``)."""
        return _per_integration_step(self.leaky, self.integration_steps)

    @property
    def synapse_step_leak(self) -> float:
        """Synaptic decay of one integration step, ``lambda_s^(1/K)``."""
        return _per_integration_step(self.synapse_leak, self.integration_steps)

    @property
    def current_share(self) -> float:
        """Share ``1/K`` of a step's constant current that one integration step deposits."""
        return 1.0 / self.integration_steps

    @property
    def held_steps(self) -> int:
        """Integration steps a refractory neuron is held after a spike, ``R K``."""
        return self.refractory_steps * self.integration_steps

    @property
    def rate_ceiling(self) -> float:
        """Most spikes per SPIDE step a neuron can fire without refractoriness: ``K``."""
        return float(self.integration_steps)

    @property
    def rate_norm(self) -> float:
        """Normaliser of the forward rate: :func:`rate_normaliser` over the ``T K``
        integration steps with their leak, divided by ``K`` (rates per SPIDE step)."""
        return _per_spide_step(rate_normaliser(self.step_leak, self.forward_steps),
                               self.integration_steps)

    @property
    def step_leak_back(self) -> float:
        """Leak of the couples per integration step: :attr:`step_leak` with
        ``couple_neuron='lif'``, 1 with ``'if'``."""
        return self.step_leak if self.couple_neuron == "lif" else 1.0

    @property
    def rate_norm_back(self) -> float:
        """Normaliser of the backward signed rate ``beta`` (over ``T_b K`` integration
        steps with the couples' leak :attr:`step_leak_back`, per SPIDE step)."""
        return _per_spide_step(rate_normaliser(self.step_leak_back, self.backward_steps),
                               self.integration_steps)

    @property
    def count_max(self) -> int:
        """Most forward spikes a neuron can fire in the forward stage: ``ceil(T K / (R K +
        1))`` integration steps with the refractory period (``T K`` without one); the gate
        closes at this count."""
        return -(-self.forward_steps // (self.held_steps + 1))

    @property
    def slope_refractory(self) -> float:
        """``R`` in the slope gate ``(1 - R a)^2`` (:func:`spide_brian.transfer.slope_of_rate`):
        the refractory period with the ``'slope'`` gate, 0 with the binary one (a gate of
        exactly 1)."""
        return float(self.refractory_steps) if self.gate == "slope" else 0.0

    @property
    def synapse_gain(self) -> float:
        """``1 - lambda_s``: the share of an (integration) step's synaptic input that enters
        the current of an exponential synapse, so that its total charge is that of the delta
        synapse (1 for delta synapses, whose current is the input itself); ``lambda_s`` is
        :attr:`synapse_step_leak`."""
        return 1.0 - self.synapse_step_leak

    @property
    def conductances(self) -> bool:
        """Whether the forward synapses are conductances (``synapse == 'conductance'``)."""
        return self.synapse == "conductance"

    @property
    def backward_gain(self) -> float:
        """Gain ``M/V`` of the couples' transposed input: a backward spike of magnitude
        ``M`` reaches the previous layer through the transposed weights divided by ``V``."""
        return self.reset_amount_back / self.reset_amount

    @property
    def sgd_lr(self) -> float:
        """Learning rate of the SGD step, ``lr0 / S`` (the gradients are ``S``-scaled)."""
        return self.lr / self.scale_factor

    def learning_rate(self, epoch, iteration) -> float:
        r"""Learning rate ``lr0`` in force for a mini-batch (before the division by ``S``).

        .. math:: \eta(e, i) = \mathrm{lr} \cdot \gamma^{\#\{m \in M : m \le e\}}
                  \cdot \min\left(1, \frac{i + 1}{W}\right)

        with ``e`` the number of epochs done before this one (0 in the first), ``M`` the
        ``lr_milestones``, ``gamma`` the ``lr_decay``, ``i`` the mini-batches done before this
        one over the whole run (0 first) and ``W`` the ``warmup_iterations`` (no warm-up
        when 0): the rate is multiplied by ``gamma`` from each milestone epoch on, and rises
        linearly over the first ``W`` mini-batches.
        """
        rate = self.lr * self.lr_decay ** sum(1 for m in self.lr_milestones if epoch >= m)
        if iteration < self.warmup_iterations:
            rate = rate * (iteration + 1) / self.warmup_iterations
        return rate

    def sgd_learning_rates(self, epoch, n_samples) -> list:
        """SGD rates ``learning_rate / S`` of the mini-batches of ``epoch`` over
        ``n_samples`` training samples (every epoch has the same number of mini-batches)."""
        batches = -(-int(n_samples) // int(self.batch_size))
        return [self.learning_rate(epoch, epoch * batches + b) / self.scale_factor
                for b in range(batches)]

    @property
    def scheduled(self) -> bool:
        """Whether the learning rate changes during training (milestones or warm-up)."""
        return bool(self.lr_milestones) or self.warmup_iterations > 0

    def kappa(self, batch) -> float:
        """Scale ``kappa = S / B`` of the gradient current for a mini-batch of ``batch``."""
        return self.scale_factor / batch

    # -- validation and serialisation -----------------------------------------------------
    def validate(self):
        """Raise :class:`ConfigError` naming the first invalid field."""
        if not self.hidden_sizes or any(n < 1 for n in self.hidden_sizes):
            raise ConfigError(f"hidden_sizes must be positive layer sizes, got {self.hidden_sizes}")
        for name in ("time_step", "time_step_back", "batch_size", "integration_steps"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("epochs", "seed"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("vth", "vth_back", "scale_factor", "feedback_norm"):
            value = float(getattr(self, name))
            if not math.isfinite(value) or value <= 0:
                raise ConfigError(f"{name} must be a finite positive number, got {value}")
        for name in ("lr", "momentum", "weight_decay"):
            value = float(getattr(self, name))
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"{name} must be a finite number >= 0, got {value}")
        if any(m < 1 for m in self.lr_milestones) or \
                list(self.lr_milestones) != sorted(set(self.lr_milestones)):
            raise ConfigError(f"lr_milestones must be increasing epoch numbers >= 1, got "
                              f"{self.lr_milestones}")
        if not math.isfinite(float(self.lr_decay)) or float(self.lr_decay) <= 0:
            raise ConfigError(f"lr_decay must be a finite positive factor, got {self.lr_decay}")
        if self.warmup_iterations < 0:
            raise ConfigError(f"warmup_iterations must be >= 0, got {self.warmup_iterations}")
        if not (0.0 <= float(self.dropout) < 1.0):
            raise ConfigError(f"dropout must be a probability in [0, 1), got {self.dropout}")
        if not (0 <= self.refractory_steps < self.time_step):
            raise ConfigError(f"refractory_steps must lie in [0, time_step) = [0, "
                              f"{self.time_step}), got {self.refractory_steps}")
        if not (0.0 < float(self.leaky) <= 1.0):
            raise ConfigError(f"leaky must lie in (0, 1] (1 = IF, <1 = LIF), got {self.leaky}")
        self._check_choice("reset", RESETS)
        self._check_choice("timing", TIMINGS)
        self._check_choice("gate", GATES)
        self._check_choice("couple_neuron", COUPLE_NEURONS)
        if self.couple_neuron == "if" and self.membrane == "volts":
            raise ConfigError("couple_neuron 'if' needs membrane 'discrete': in volts the "
                              "couples' membranes decay as the forward neurons' (drop "
                              "--couple-neuron if or the volts membrane)")
        self._check_choice("synapse", SYNAPSES)
        self._check_choice("membrane", MEMBRANES)
        self._check_choice("float_dtype", FLOAT_DTYPES)
        leak = float(self.synapse_leak)
        if self.synapse == "exponential" and not 0.0 < leak < 1.0:
            raise ConfigError(f"synapse_leak must lie in (0, 1) for exponential synapses "
                              f"(exp(-dt/tau_syn), e.g. --tau-syn 5ms), got {leak}")
        if self.synapse == "conductance" and not 0.0 <= leak < 1.0:
            raise ConfigError(f"synapse_leak must lie in [0, 1) for conductances "
                              f"(0: one-step pulses), got {leak}")
        if not float(self.reversal_exc) > self.threshold:
            raise ConfigError(f"reversal_exc must lie above the threshold {self.threshold} "
                              f"(an excitatory conductance must be able to fire the neuron), "
                              f"got {self.reversal_exc}")
        if not float(self.reversal_inh) < 0.0:
            raise ConfigError(f"reversal_inh must lie below rest (0), got {self.reversal_inh}")
        if self.synapse == "delta" and leak != 0.0:
            raise ConfigError(f"synapse_leak {leak} needs synapse 'exponential' (delta "
                              "synapses have none); add --synapse exponential")
        for name in ("input_init", "hidden_init", "feedback_init"):
            self._check_choice(name, INITS)

    def _check_choice(self, name, choices):
        if getattr(self, name) not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {getattr(self, name)!r}")

    def replace(self, **changes) -> "SPIDEConfig":
        """Return a copy with some fields changed (validated)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigError(f"unknown config fields: {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain-JSON dictionary of all fields."""
        data = dataclasses.asdict(self)
        data["hidden_sizes"] = list(self.hidden_sizes)
        data["lr_milestones"] = list(self.lr_milestones)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "SPIDEConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown config fields: {', '.join(sorted(unknown))}")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "SPIDEConfig":
        return cls.from_dict(json.loads(text))
