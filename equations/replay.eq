# Event-driven gradient accumulation: the replay window (docs/devices.md,
# synaptic_rr_reads_groups). Used where a synaptic run_regularly may not read pre/post variables (GeNN;
# capability synaptic_rr_reads_groups). Two model steps are added after the step at which
# beta is fixed (replay_start). The events of the spikes of a model step are delivered
# before the next model step's run_regularly operations on every device (schedule.eq:
# substeps).
# At slot steps replay_start and replay_start + 1 every neuron of the model fires once
# (forward, both couple halves, input and output groups):
#   wave 1: each weight copy's on_post stores the factor of its pre side in pre_factor
#           (on_post may read presynaptic variables);
#   wave 2: each copy's on_pre adds accumulate_gate_post * (POST_FACTOR * pre_factor) to
#           grad (on_pre may read postsynaptic variables).
# The gates are set by the every_step code of the forward and output groups and read by the
# events of the spikes of the same model step:
#   replay_gate      1 from the first replay wave on (coupling events of the replay do nothing)
#   accumulate_gate  1 only at the second replay wave (forward and backward events of the
#                    other steps, and wave 1, add exactly 0)
# The product is the same float64 product as in the run_regularly route (a*b == b*a, and a
# gate of 1 multiplies exactly), so gradients and weights are bitwise those of that route
# and the copies stay equal. The SGD step stays a synaptic run_regularly that reads only
# synaptic variables (feedback copies keep fro_scale in fro_syn, stored by on_pre).
# Replay spikes change no count (the forward reset of forward_neuron.eq is phase-gated, the
# coupled reset of couple.eq gated by replay_gate); their other writes (I_syn, I_back,
# rate_sum, g) are cleared before they are next read.
# GeNN rules respected: on_pre writes at most one postsynaptic variable and only with +=,
# on_pre reads no presynaptic and on_post no postsynaptic variable, no subexpression in
# synaptic code.

[slot_time]
replay_fire = step_start and (slot_step == replay_start or slot_step == replay_start + 1) : boolean

[gate_model]
accumulate_gate : 1     # 1 at the second replay wave

[output_gate_model]
replay_gate : 1         # 1 from the first replay wave to the slot's end (forward groups
                        # declare it in forward_neuron.eq)

[gates]
replay_gate = int(slot_step > replay_start - 0.5)
accumulate_gate = int(abs(slot_step - (replay_start + 1)) < 0.5)

[synapse_model]
pre_factor : 1          # the pre side's gradient factor, stored by the first replay wave

[feedback_synapse_model]
fro_syn : 1             # fro_scale of the copy's post group, stored by on_pre

[store_on_post]
pre_factor = PRE_FACTOR
# brian2genn leaves a synaptic variable that only a run_regularly uses out of the GeNN
# model and then fails to copy it from the device; this no-op keeps the buffer in it.
momentum_buffer += 0

[accumulate_on_pre]
grad = grad + accumulate_gate_post*(POST_FACTOR*pre_factor)

[feedback_on_pre]
fro_syn = fro_scale_post
