"""The event-driven (replay-window) construction of the SPIDE model, for GeNN.

brian2genn cannot compile a synaptic ``run_regularly`` that reads pre- or postsynaptic
variables, so the per-sample gradient accumulation ``grad += beta_post * a_pre`` of
:class:`~spide_brian.network.SPIDENetwork` cannot run there. :class:`ReplaySPIDENetwork`
builds the same model with the accumulation made of synaptic events: two replay steps at the
end of every slot in which every neuron fires once (``equations/replay.eq`` explains the two
waves). The capability table chooses it (``synaptic_rr_reads_groups`` false, see
:func:`network_class`); it differs from the base builder only in:

* the slot is two model steps longer (:class:`ReplaySlotSchedule`);
* forward, couple, input and output groups also fire at the replay steps, forward and output
  groups compute the two gates of ``replay.eq`` (the forward reset and the coupled reset,
  written once in ``forward_neuron.eq`` and ``couple.eq``, read them);
* every weight copy has an ``on_post`` that stores its pre side's factor and an ``on_pre``
  that accumulates, both derived from the copy's accumulation statement; its synaptic
  ``run_regularly`` only does the SGD step;
* no Synapses runs on a slot-long clock (its events must be seen every step).

The products are the same float64 products as in the base route, so spike counts, gradients
and weights equal the base route's and the numpy reference's.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from . import equations as eq
from .network import SPIDENetwork
from .schedule import SlotSchedule

__all__ = ["ReplaySlotSchedule", "ReplaySPIDENetwork", "network_class", "replay_factors"]

_FACTOR = re.compile(r"^grad\s*=\s*grad\s*\+\s*(\w+)\s*\*\s*(\w+)$")


@dataclass(frozen=True)
class ReplaySlotSchedule(SlotSchedule):
    """:class:`SlotSchedule` with the replay window."""

    @property
    def replay_start(self) -> int:
        """Slot step of the first replay spikes (the step at which beta is fixed)."""
        return self.backward_start + self.backward_steps

    @property
    def slot_length(self) -> int:
        return self.replay_start + 2

    def namespace(self) -> dict:
        return dict(super().namespace(), slot_length=self.slot_length,
                    replay_start=self.replay_start)


def network_class(caps):
    """The builder class for a device's :class:`~spide_brian.devices.Capabilities`."""
    return SPIDENetwork if caps.synaptic_rr_reads_groups else ReplaySPIDENetwork


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


def _replay(section, **names):
    return eq.statements("replay", section, **names)


class ReplaySPIDENetwork(SPIDENetwork):
    """:class:`~spide_brian.network.SPIDENetwork` with event-driven gradient accumulation.

    Same parameters, attributes and methods.
    """

    _GATED_ROLES = ("forward", "output")
    _FIRING_ROLES = ("forward", "couple", "input", "output")

    def _make_schedule(self):
        return ReplaySlotSchedule.from_config(self.config, self._substeps())

    # -- groups -------------------------------------------------------------------------------
    def _neuron_group(self, size, model, name, threshold=None, reset=None, role=None):
        if role in self._FIRING_ROLES:
            model = model + eq.model_equations("replay", "slot_time")
            threshold = f"({threshold}) or replay_fire" if threshold else "replay_fire"
            reset = reset if reset is not None else ""
        if role in self._GATED_ROLES:
            model = model + eq.model_equations("replay", "gate_model")
        if role == "output":
            model = model + eq.model_equations("replay", "output_gate_model")
        group = super()._neuron_group(size, model, name, threshold, reset, role)
        if role in self._GATED_ROLES:
            self._gated = getattr(self, "_gated", set()) | {group.name}
        return group

    def _every_step(self, group, piece, section="every_step"):
        code = eq.statements(piece, section)
        if group.name in getattr(self, "_gated", ()):
            code += "\n" + _replay("gates")
        self._add(group.run_regularly(code, dt=self.dt,
                                      name=f"{group.name}_run_regularly_every_step"))

    # -- weight copies ------------------------------------------------------------------------
    def _copy(self, connection, transposed, source, target, model, slow=False,
              accumulate=None, on_pre=None, **kwargs):
        piece, section, project = accumulate
        pre_factor, post_factor = replay_factors(eq.statements(piece, section))
        model = model + eq.model_equations("replay", "synapse_model")
        events = [on_pre] if on_pre else []
        events.append(_replay("accumulate_on_pre", POST_FACTOR=post_factor))
        if project:
            model = model + eq.model_equations("replay", "feedback_synapse_model")
            events.append(_replay("feedback_on_pre"))
        return super()._copy(connection, transposed, source, target, model, slow=False,
                             accumulate=accumulate, on_pre="\n".join(events),
                             on_post=_replay("store_on_post", PRE_FACTOR=pre_factor), **kwargs)

    def _learning(self, synapses, piece, accumulate, divide_by=None, project=None):
        code = eq.learning_code(piece, accumulate, divide_by, "fro_syn" if project else None,
                                part="update")
        self._add(synapses.run_regularly(code, dt=self.batch_dt or self.slot_dt,
                                         name=f"{synapses.name}_run_regularly_update"))
