"""Construction routes: what a device's restrictions add to the objects of the model.

:class:`~spide_brian.network.SPIDENetwork` builds one model from the text in ``equations/``
on every device. Where a device cannot run a construct, the builder does not branch on the
device: it asks its *route*, one object chosen from the device's capability row
(:func:`route_for`), for its additions. The builder hands the route, for each object:

* neuron groups: their ``role`` (``'forward'``, ``'couple'``, ``'input'``, ``'output'`` or
  ``None``) with the model, threshold and reset (:meth:`DirectRoute.neuron_group`);
* per-step code of a group (:meth:`DirectRoute.every_step`);
* weight copies: their :class:`Plasticity` with the model and events
  (:meth:`DirectRoute.weight_copy`), then the copy's per-sample learning operations
  (:meth:`DirectRoute.learning`);
* the slot timeline (:meth:`DirectRoute.schedule`).

Two routes exist (``docs/devices.md``, capability ``synaptic_rr_reads_groups``):

:class:`DirectRoute`
    each weight copy accumulates ``grad += factor_post * factor_pre`` in a synaptic
    ``run_regularly`` that reads neuron variables, once per slot;
:class:`ReplayRoute`
    for devices whose synaptic ``run_regularly`` may not read neuron variables (GeNN, Brian2
    before 2.6): two replay steps at the end of every slot in which every neuron fires once,
    so the accumulation is made of synaptic events (``equations/replay.eq`` explains the two
    waves). The products are the same float64 products, so spike counts, gradients and
    weights equal the direct route's and the numpy reference's.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from . import equations as eq
from .schedule import ReplaySlotSchedule, SlotSchedule

__all__ = ["Plasticity", "DirectRoute", "ReplayRoute", "ROUTES", "route_for", "replay_factors"]

_FACTOR = re.compile(r"^grad\s*=\s*grad\s*\+\s*(\w+)\s*\*\s*(\w+)$")


@dataclass(frozen=True)
class Plasticity:
    """The learning of one weight copy.

    Parameters
    ----------
    piece, section : str
        File and section of the gradient accumulation ``grad = grad + a_pre*b_post`` (or
        with the factors the other way round).
    divide_by : str, optional
        Synaptic variable dividing the accumulated sum (``reset_amount_syn`` = V for the
        spiking layers; none for the readout).
    project : str, optional
        Postsynaptic variable with the restriction's scale (``fro_scale_post``) for the
        copies of a restricted (feedback) weight.
    """

    piece: str
    section: str
    divide_by: str | None = None
    project: str | None = None

    @property
    def statement(self) -> str:
        """The accumulation statement."""
        return eq.statements(self.piece, self.section)

    def code(self, part="both") -> str:
        """Abstract code of ``part`` ('accumulate', 'update' or 'both'), see
        :func:`spide_brian.equations.learning_code`."""
        return eq.learning_code(self.piece, self.section, self.divide_by, self.project,
                                part=part)


@dataclass(frozen=True)
class LearningOperation:
    """One synaptic ``run_regularly`` of a weight copy's learning."""

    code: str
    dt: object      # a Brian2 time
    order: int
    suffix: str     # the operation is named ``<synapses>_run_regularly_<suffix>``


def replay_factors(statement):
    """``(pre_factor, post_factor)`` of an accumulation ``grad = grad + a*b``.

    >>> replay_factors("grad = grad + beta_post*rate_pre")
    ('rate_pre', 'beta_post')
    """
    match = _FACTOR.match(statement.strip())
    if not match:
        raise ValueError(f"not an accumulation 'grad = grad + a*b': {statement!r}")
    factors = match.groups()
    pre = [f for f in factors if f.endswith("_pre")]
    post = [f for f in factors if f.endswith("_post")]
    if len(pre) != 1 or len(post) != 1:
        raise ValueError(f"{statement!r} must multiply one _pre and one _post variable")
    return pre[0], post[0]


class DirectRoute:
    """The model as written: gradients accumulated by synaptic ``run_regularly`` code."""

    #: Name of the route (shown by ``spide-brian info``).
    name = "direct"
    #: Whether the route runs dropout (the transposed copies read the couples' masks by a
    #: synaptic ``run_regularly``).
    dropout = True

    def schedule(self, config, substeps):
        """The slot timeline (:class:`~spide_brian.schedule.SlotSchedule`)."""
        return SlotSchedule.from_config(config, substeps)

    def neuron_group(self, role, model, threshold, reset):
        """``(model, threshold, reset)`` of a NeuronGroup with ``role``."""
        return model, threshold, reset

    def every_step(self, role, code):
        """Per-step code of a group with ``role``."""
        return code

    def weight_copy(self, plasticity, model, events, slow):
        """``(model, events, slow)`` of a weight copy: its Synapses equations, its event
        code (``{'on_pre': ...}``) and whether it may run on a slot-long clock."""
        return model, events, slow

    def learning(self, plasticity, slot_dt, batch_dt):
        """The :class:`LearningOperation` list of a weight copy.

        ``batch_dt`` is the mini-batch period where the device runs the SGD step on a clock
        of its own (None: the SGD step runs every slot, with the accumulation, and applies
        only where ``update_flag`` is set).
        """
        if batch_dt is None:
            return [LearningOperation(plasticity.code(), slot_dt, 0, "learning")]
        # accumulate every slot; SGD only at slots that may end a mini-batch, after the
        # accumulation of the same commit step (order)
        return [LearningOperation(plasticity.code("accumulate"), slot_dt, 0, "accumulate"),
                LearningOperation(plasticity.code("update"), batch_dt, 1, "update")]


class ReplayRoute(DirectRoute):
    """Gradients accumulated from the spike events of a replay window (``replay.eq``)."""

    name = "replay"
    dropout = False
    #: Roles of the groups that compute the replay gates.
    GATED_ROLES = ("forward", "output")
    #: Roles of the groups whose neurons all fire in the replay window.
    FIRING_ROLES = ("forward", "couple", "input", "output")

    def schedule(self, config, substeps):
        return ReplaySlotSchedule.from_config(config, substeps)

    def neuron_group(self, role, model, threshold, reset):
        if role in self.FIRING_ROLES:
            model = model + eq.model_equations("replay", "slot_time")
            threshold = f"({threshold}) or replay_fire" if threshold else "replay_fire"
            reset = reset if reset is not None else ""
        if role in self.GATED_ROLES:
            model = model + eq.model_equations("replay", "gate_model")
        if role == "output":
            model = model + eq.model_equations("replay", "output_gate_model")
        return model, threshold, reset

    def every_step(self, role, code):
        if role in self.GATED_ROLES:
            code += "\n" + eq.statements("replay", "gates")
        return code

    def weight_copy(self, plasticity, model, events, slow):
        pre_factor, post_factor = replay_factors(plasticity.statement)
        model = model + eq.model_equations("replay", "synapse_model")
        on_pre = [events["on_pre"]] if events.get("on_pre") else []
        on_pre.append(eq.statements("replay", "accumulate_on_pre", POST_FACTOR=post_factor))
        if plasticity.project:
            model = model + eq.model_equations("replay", "feedback_synapse_model")
            on_pre.append(eq.statements("replay", "feedback_on_pre"))
        events = dict(events, on_pre="\n".join(on_pre),
                      on_post=eq.statements("replay", "store_on_post", PRE_FACTOR=pre_factor))
        # the replay events must be seen every step: no slow clock
        return model, events, False

    def learning(self, plasticity, slot_dt, batch_dt):
        # the events accumulate; the run_regularly only does the SGD step, reading only
        # synaptic variables (a feedback copy's scale is in fro_syn)
        plasticity = Plasticity(plasticity.piece, plasticity.section, plasticity.divide_by,
                                "fro_syn" if plasticity.project else None)
        return [LearningOperation(plasticity.code("update"), batch_dt or slot_dt, 0, "update")]


#: The routes by name.
ROUTES = {route.name: route for route in (DirectRoute(), ReplayRoute())}


def route_for(caps):
    """The route of a device's :class:`~spide_brian.devices.Capabilities`."""
    return ROUTES["direct" if caps.synaptic_rr_reads_groups else "replay"]


def check_dropout(caps):
    """Raise a ``ValueError`` naming the fix where the device's route cannot run dropout."""
    route = route_for(caps)
    if not route.dropout:
        raise ValueError(
            f"dropout is not available on the {caps.name} device (its '{route.name}' route "
            "cannot scale the backward events per neuron); use a device of the direct route "
            "(numpy, cython, cpp_standalone with Brian2 >= 2.6) or --backend reference")
