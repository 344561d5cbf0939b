# One learnt connection between spiking layers and its transposed backward pathways
# (docs/method.md M1, M3, M4). Layer l -> layer l+1 (weight_l) or the feedback last -> first
# (feedback_weight). Three copies of the weights, each with a single event pathway:
# Forward copy, pre = forward group of the source layer, post = forward group of the target:
#   on_pre   forward spike:       I_syn_post += w           (arrives next step)
# Positive copy, pre = positive couple group of the target layer, post = forward group of
# the source layer (which holds the couple's membrane):
#   on_pre   positive couple spike: I_back_post += w   (transposed, W^T s^b / V with the
#            couple spike s^b = +-M: the receiving neuron multiplies the sum of the
#            weights of the unit spikes by M/V, forward_neuron.eq)
# Negative copy, pre = negative couple group of the target layer, post = forward group of
# the source layer:
#   on_pre   negative couple spike: I_back_post += -w   (brian2genn accepts only += on a
#            postsynaptic variable; x + (-w) equals x - w exactly)
# The transposed copies multiply w by keep, the dropout mask of the couple's neuron for this
# connection (W^T (D s^b) / V), read per slot from the post layer's dropout_syn table
# ([transposed_dropout_load], only with dropout; keep = 1 otherwise, which changes no bit).
# The forward-orientation copies accumulate beta_syn = beta*drop_syn (forward_neuron.eq), the
# couples copy it as their beta.
# Forward spikes thus drive only the forward pathway and couple spikes only the backward ones.
# Every copy accumulates the same local two-stage gradient at every commit step,
#     grad += beta_target * a_source        (gated beta: beta = 0 where m = 0)
# and updates with plasticity.eq using gradient = grad / V (reset_amount_syn); they stay
# bitwise equal. The feedback copies multiply w by fro_scale (feedback_norm.eq) in their
# events; the feedback also has a norm copy (forward orientation, no events) whose summed
# w*w gives the Frobenius norm.

[model]
w : 1                   # the weight, W[post_forward, pre_forward]
grad : 1                # gradient accumulated over the mini-batch
momentum_buffer : 1     # SGD momentum buffer
momentum_syn : 1 (shared, constant)
weight_decay_syn : 1 (shared, constant)
reset_amount_syn : 1 (shared, constant)

[transposed_model]
keep : 1                # dropout mask of the couple (pre) neuron: 0 or 1/(1-p); 1 without dropout

[transposed_dropout_load]
keep = dropout_syn(t, i)

[forward_on_pre]
I_syn_post += w

[forward_accumulate]
grad = grad + beta_syn_post*rate_pre

[conductance_forward_on_pre]
# conductance synapses (forward_neuron.eq [conductance_current]): a positive weight opens the
# excitatory conductance, a negative one the inhibitory conductance by |w|
I_exc_post += w*int(w > 0)
I_inh_post += -(w*int(w < 0))

[feedback_conductance_forward_on_pre]
I_exc_post += (w*fro_scale_post)*int(w > 0)
I_inh_post += -((w*fro_scale_post)*int(w < 0))

[positive_on_pre]
I_back_post += w*keep

[negative_on_pre]
I_back_post += -(w*keep)

[transposed_accumulate]
grad = grad + beta_pre*rate_post

[feedback_forward_on_pre]
I_syn_post += w*fro_scale_post

[feedback_positive_on_pre]
I_back_post += (w*fro_scale_post)*keep

[feedback_negative_on_pre]
I_back_post += -((w*fro_scale_post)*keep)

[feedback_norm_accumulate]
grad = grad + beta_syn_post*rate_pre

[feedback_norm_model]
fro_sq_post = w*w : 1 (summed)
