# Readout with softmax cross-entropy and the gradient current g (docs/method.md M2, M4).
#   y = W_c a + b_c,  p = softmax(y),  error = kappa (p - onehot(label)),  g = W_c^T error
# with kappa = S/B (0 for padding or evaluation samples) from the TimedArray `sample_kappa`
# and the label from `sample_label`.
# Output group: rate_sum collects the weights of the last layer's forward spikes (event
# driven, leak-weighted like the rates), so y = rate_sum / rate_norm + b_c needs no
# per-step sum. exp(y) is summed by the normaliser group (one neuron) and copied back.
# The readout is trained with the same SGD as every weight: grad += error * a.
# Readout copy (pre = last layer, post = output): on_pre rate_sum_post += w.
# Gradient copy (pre = output, post = last layer): grad_current = sum_c w error_c, either
# event driven (devices whose on_pre may read presynaptic variables): every output neuron
# emits one event at the error step, after the last layer has zeroed grad_current
# (forward_neuron.eq), and each event adds w*error_c -- the sum is formed once per sample;
# or as a summed variable recomputed every step (brian2genn).

[model]
rate_sum : 1            # sum of w over the last layer's spikes (leak-weighted)
logit : 1               # y
expo : 1                # exp(y)
normaliser : 1          # sum over classes of exp(y) (copied from the normaliser group)
prob : 1                # p
error : 1               # kappa (p - onehot(label))
bias : 1                # b_c
bias_grad : 1
bias_momentum : 1
lam : 1 (shared, constant)
rate_norm : 1 (shared, constant)
momentum : 1 (shared, constant)
weight_decay : 1 (shared, constant)
SLOT_TIME

[every_step]
fwd = int(forward_phase)
rate_sum = fwd*((1 - int(forward_first))*(lam*rate_sum)) + (1 - fwd)*rate_sum
fwd_end = int(forward_end)
logit = fwd_end*(rate_sum/rate_norm + bias) + (1 - fwd_end)*logit
expo = fwd_end*exp(fwd_end*logit) + (1 - fwd_end)*expo
err_step = int(readout_error_step)
prob = err_step*(expo/(normaliser + (1 - err_step))) + (1 - err_step)*prob
error = err_step*(sample_kappa(t)*(prob - int(abs(sample_label(t) - i) < 0.5))) + (1 - err_step)*error
commit = int(commit_step)
bias_grad = bias_grad + commit*error
update_now = commit*update_flag(t)
gradient = bias_grad
SGD(bias, bias_grad, bias_momentum)

[error_event]
readout_error_step

[normaliser_model]
total : 1               # sum over classes of exp(y)

[sum_model]
total_post = expo_pre : 1 (summed)

[copy_back_model]
normaliser_post = total_pre : 1 (summed)

[synapse_model]
w : 1
grad : 1
momentum_buffer : 1
momentum_syn : 1 (shared, constant)
weight_decay_syn : 1 (shared, constant)

[readout_on_pre]
rate_sum_post += w

[readout_accumulate]
grad = grad + error_post*rate_pre

[gradient_model]
grad_current_post = w*error_pre : 1 (summed)

[gradient_on_pre]
grad_current_post += w*error_pre

[gradient_accumulate]
grad = grad + error_pre*rate_post
