# A parameter shared by many synapses (docs/method.md M8): one convolution kernel element
# held by every synapse of its positions, or one channel bias held by every neuron of its
# map. The value lives once, in a parameter group (one neuron per element); the synapses or
# neurons that use it read it through a Brian2 linked variable indexed by their element:
#     w_syn = w[element]        (every synapse of an element holds the same value, always)
# Learning acts on the element. Its gradient is the sum of the local two-stage products of
# all its synapses (or neurons),
#     grad_k += sum_{(pre, post) with element k} beta_post * a_pre
# computed by a gather: Synapses from the pre side to the parameter group, one per synapse
# of the weight, whose summed variable adds the products into element k; the post factor
# is read through a linked variable indexed by the synapse's post neuron. The gather runs
# once per slot, at the commit step, before the group's accumulation (it reads the rates
# and backward rates fixed in the previous slot). The group then runs the same plasticity
# text as every weight copy (plasticity.eq: SGD with momentum and weight decay, the
# feedback projection), so the reference's kernel update is reproduced element by element.
# A restricted (feedback) kernel's norm is the norm of its elements, ||K||_F, summed from
# the group into the feedback-norm group (feedback_norm.eq) once per slot; the group reads
# the scale back through a linked variable for the projection.
#
# A dense weight held once (one copy of each weight, docs/devices.md) is the same group with
# one element per synapse: no position shares an element, so no gather is needed; the group
# reads the pre and post factors of its element through linked variables indexed by the
# element's pre and post neuron and accumulates their product itself (as a weight copy does).
# Its elements are stored in the forward orientation's synapse order (pre-major), so the
# forward events, the most numerous, read them in order.

[parameter_model]
w : 1                   # the shared value (a kernel element or a channel bias)
grad : 1                # gradient accumulated over the mini-batch
grad_slot : 1           # gradient of the last sample (summed by the gather)
momentum_buffer : 1     # SGD momentum buffer
fro_scale : 1           # min(1, r/||K||_F) of a restricted kernel (1 otherwise)
momentum_syn : 1 (shared, constant)
weight_decay_syn : 1 (shared, constant)
reset_amount_syn : 1 (shared, constant)

[accumulate]
grad = grad + grad_slot

[own_gradient_model]
pre_factor : 1 (linked)           # the element's pre factor (a rate, indexed by its pre neuron)
post_factor : 1 (linked)          # its post factor (beta, indexed by its post neuron)

[own_accumulate]
grad = grad + post_factor*pre_factor

[view_model]
w : 1 (linked)          # the element's value, w[element]
element : integer (constant)

[gather_model]
post_index : integer (constant)   # post neuron of the weight's synapse
post_factor : 1 (linked)          # its post factor (beta, indexed by post_index)
grad_slot_post = post_factor*PRE_FACTOR : 1 (summed)

[bias_view_model]
bias : 1 (linked)       # the channel's bias, b[channel]
channel : integer (constant)

[bias_gather_model]
grad_slot_post = beta_bias_pre : 1 (summed)

[norm_model]
fro_sq_total_post = w_pre*w_pre : 1 (summed)
