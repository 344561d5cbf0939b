# Ternary neuron couple of one layer (docs/method.md M3; docs/devices.md: no
# custom events, so a couple is a positive and a negative group). The signed membrane u_back
# of the couple, its counts and its rate beta live in the forward group (forward_neuron.eq);
# each half is a group of spike generators that reads the membrane and writes back:
#   u_mirror = u_back * gate of the partner, copied every step by a one-to-one summed
#              variable (mirror synapses), so the positive neuron fires when
#              gate = 1 and u_back >= threshold_back, the negative one when
#              gate = 1 and u_back <= -threshold_back;
#   the couple's spike is s^b = +M (positive half) or -M (negative half), M = 2 V_th^b; the
#   coupled reset goes through one-to-one coupling synapses in the same step (spikes are
#   delivered in the synapses slot, before the next integration):
#       positive spike: u_back <- u_back - M, pos_count += 1, weighted_back += M
#       negative spike: u_back <- u_back + M, neg_count += 1, weighted_back -= M
#   (the two halves never fire in the same step; the counts stay unit counts, beta is the
#   leak-weighted mean of s^b, and the transposed weights carry s^b through the gain M/V of
#   the receiving layer, forward_neuron.eq);
#   beta is a copy of the partner's backward rate, read by the transposed weight copies
#   where they learn themselves (a weight held once learns from the partner's beta_syn, and
#   its couples have no copy).
# Separate halves keep the forward group silent in the backward phase, so forward spikes
# drive only the forward pathways and couple spikes only the backward ones.

[model]
beta : 1                # the partner's beta_syn (beta times the dropout mask of the
                        # layer's incoming spiking connection; copied every step)
SLOT_TIME

[mirror_variables]
u_mirror : 1            # gated signed membrane of the partner
threshold_back : 1 (shared, constant)

[mirror_variables_volts]
# with the partner's membrane in volts (forward_neuron.eq): its depolarisation u_back -
# v_rest, gated, against the threshold V_th^b - V_rest in volts
u_mirror : volt
threshold_back : volt (shared, constant)

[positive_threshold]
backward_phase and u_mirror >= threshold_back

[negative_threshold]
backward_phase and u_mirror <= -threshold_back

[mirror_model]
u_mirror_post = u_back_pre*gate_pre : 1 (summed)

[mirror_model_volts]
u_mirror_post = (u_back_pre - v_rest_pre)*gate_pre : volt (summed)

[beta_copy_model]
beta_post = beta_syn_pre : 1 (summed)

[coupling_model]
magnitude : 1 (shared, constant)   # M, the couple's spike magnitude

[coupling_model_volts]
magnitude : volt (shared, constant)   # M in volts (the membrane's coupled reset only)

# The coupled reset, one Synapses per written variable (GeNN allows one postsynaptic write
# per on_pre, with +=); replay spikes of the replay route (replay_gate = 1) change nothing.
[positive_coupling_magnitude_on_pre]
u_back_post += -(magnitude*(1 - replay_gate_post))

[positive_coupling_count_on_pre]
pos_count_post += 1 - replay_gate_post

[positive_coupling_weighted_on_pre]
weighted_back_post += magnitude*(1 - replay_gate_post)

[negative_coupling_magnitude_on_pre]
u_back_post += magnitude*(1 - replay_gate_post)

[negative_coupling_count_on_pre]
neg_count_post += 1 - replay_gate_post

[negative_coupling_weighted_on_pre]
weighted_back_post += -(magnitude*(1 - replay_gate_post))
