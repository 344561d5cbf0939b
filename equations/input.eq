# Input layer and the learnt input weights F (docs/method.md M1, M4).
# Static input ([every_step]): x is the sample of the current slot, read from the TimedArray
# `stimulus` (one row per slot); x_mean keeps the sample of the slot for the gradient of F,
# which is accumulated at the next slot's commit step (x itself already shows the next sample
# then).
# Event frames ([frames_every_step]): frame k of the sample (k = 0 .. T-1) drives forward step
# k. It is read from the TimedArray `frames` (row sample*T + k, rows frame_dt apart) one step
# before that forward step, because the summed F x reaches the neurons one step after x
# changes. x_sum adds the frames in order and x_mean = x_sum / T is their time mean, which the
# gradient of F uses. Outside the loading steps x is 0. With K integration steps per SPIDE
# step (forward_steps = T K model steps, frames_per_sample = T, integration_steps = K) frame
# k is loaded at the K model steps of SPIDE step k (row sample*T + floor(step/K)); x_sum then
# holds every frame K times and x_sum / (T K) is the same time mean.
# Input synapses: static input reaches layer 0 as input_current = F x, a summed variable,
# summed once per slot (at step 0) on devices with a slow clock for summed variables, else
# every step. Event frames are sparse: where an event may read its source (capability
# event_reads_source) every input with x != 0 at a loading step emits one event
# ([frame_event]) that adds w*x to I_input of layer 0, read at the next step like the summed
# variable; elsewhere input_current is summed every step.
#     grad_F += beta_0 * x_mean ;  gradient = grad / V
# (beta_input = beta times the input connection's dropout mask, forward_neuron.eq)

[model]
x : 1                   # input of the current sample
x_mean : 1              # input (time-mean frame) of the sample whose gradient is accumulated next
x_sum : 1               # frames only: running sum of the frames of the current sample
SLOT_TIME

[every_step]
x_mean = int(forward_first)*x + int(not forward_first)*x_mean
x = stimulus(t, i)

[frames_every_step]
frame = slot_step + 1 - forward_start
loading = int(frame >= 0 and frame < forward_steps)
row = floor(time_step_index/slot_length)*frames_per_sample + clip(floor(frame/integration_steps), 0, frames_per_sample - 1)
x = loading*frames(row*frame_dt, i)
x_sum = int(frame == 0)*x + int(frame > 0)*loading*(x_sum + x) + (1 - loading)*x_sum
last_frame = int(frame == forward_steps - 1)
x_mean = last_frame*(x_sum/forward_steps) + (1 - last_frame)*x_mean

[frame_event]
step_start and x != 0

[frame_on_pre]
I_input_post += w*x_pre

[synapse_model]
w : 1
grad : 1
momentum_buffer : 1
momentum_syn : 1 (shared, constant)
weight_decay_syn : 1 (shared, constant)
reset_amount_syn : 1 (shared, constant)

[summed_input_model]
input_current_post = w*x_pre : 1 (summed)

[synapse_accumulate]
grad = grad + beta_input_post*x_mean_pre
