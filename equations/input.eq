# Static input layer and the learnt input weights F (SPIDE_SPEC 1.5, 3.1).
# Input group: x is the sample of the current slot, read from the TimedArray `stimulus`
# (one row per slot); x_mean keeps the sample of the slot for the gradient of F, which is
# accumulated at the next slot's commit step (x itself already shows the next sample then).
# Input synapses: input_current = F x as a summed variable into layer 0. On devices with a
# slow clock for summed variables it is summed once per slot (at step 0), else every step.
#     grad_F += beta_0 * x_mean ;  gradient = grad / V

[model]
x : 1                   # input of the current sample
x_mean : 1              # input of the sample whose gradient is accumulated next
SLOT_TIME

[every_step]
x_mean = int(forward_first)*x + int(not forward_first)*x_mean
x = stimulus(t, i)

[synapse_model]
w : 1
grad : 1
momentum_buffer : 1
lr_syn : 1 (shared, constant)
momentum_syn : 1 (shared, constant)
weight_decay_syn : 1 (shared, constant)
reset_amount_syn : 1 (shared, constant)
input_current_post = w*x_pre : 1 (summed)

[synapse_accumulate]
grad = grad + beta_post*x_mean_pre
