# The per-sample time slot shared by every group of the model (docs/method.md
# M7). Each sample owns slot_length consecutive model steps:
#   step 0                    commit: gradients of the previous sample are accumulated, the
#                             weights are updated at the end of a mini-batch (update_flag),
#                             the input of this sample is loaded and F x is summed
#   steps 1 .. forward_start-1   settle: the feedback Frobenius scale of the new weights
#   forward_start .. +T-1     forward phase (T = forward_steps)
#   forward_start+T           rates and gates are fixed; the readout takes exp(logits)
#   .. +2                     softmax normalisation, error and gradient current g
#   backward_start .. +T_b-1  backward phase of the ternary couples (T_b = backward_steps)
#   backward_start+T_b        backward rates beta are fixed (last step of the slot)
# A model step lasts substeps device steps (dt each): 1 under Brian2's schedule; 2 on GeNN,
# where the events of a spike reach the state in the neuron update of the next device step,
# after that step's run_regularly operations. The run_regularly operations run at the first
# device step of each model step (their dt is substeps*dt) and every flag below is true
# only there, so thresholds are tested once per model step; the other device steps only
# deliver the events of the model step's spikes.
# slot_length, forward_start, forward_steps, backward_start, backward_steps, substeps are
# integer namespace constants. Phases are computed from t, so no group needs a shared clock.
# They stay float64 when the model's state is float32 (float_dtype): float32 holds the step
# index exactly only up to 2^24, and floor(step/slot_length) would round into the next slot
# long before.

[slot_time]
device_step_index = floor(t/dt + 0.5) : 1
time_step_index = floor(device_step_index/substeps) : 1
step_start = device_step_index == substeps*time_step_index : boolean
slot_step = time_step_index - slot_length*floor(time_step_index/slot_length) : 1
commit_step = step_start and slot_step == 0 : boolean
forward_phase = step_start and slot_step >= forward_start and slot_step < forward_start + forward_steps : boolean
forward_first = step_start and slot_step == forward_start : boolean
forward_end = step_start and slot_step == forward_start + forward_steps : boolean
readout_error_step = step_start and slot_step == forward_start + forward_steps + 2 : boolean
backward_phase = step_start and slot_step >= backward_start and slot_step < backward_start + backward_steps : boolean
backward_first = step_start and slot_step == backward_start : boolean
backward_end = step_start and slot_step == backward_start + backward_steps : boolean
