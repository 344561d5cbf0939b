# Negative half of the ternary neuron couple of one layer (SPIDE_SPEC 2.2; DESIGN.md "One
# model, every device": no custom events, so a couple is two groups). The positive half is
# the forward neuron group itself (forward_neuron.eq), which holds the signed membrane u_back.
#   u_mirror = u_back * gate of the partner, copied every step by a one-to-one summed
#              variable (mirror synapses), so the negative neuron fires when
#              gate = 1 and u_back <= -threshold_back;
#   the coupled reset u_back <- u_back + M of the partner goes through the one-to-one
#   coupling synapses in the same step (the positive half cannot fire in that step);
#   beta is a copy of the partner's backward rate, read by the transposed weight copies.

[model]
u_mirror : 1            # gated signed membrane of the partner
beta : 1                # the partner's beta (copied every step)
threshold_back : 1 (shared, constant)
SLOT_TIME

[threshold]
backward_phase and u_mirror <= -threshold_back

[mirror_model]
u_mirror_post = u_back_pre*gate_pre : 1 (summed)

[beta_copy_model]
beta_post = beta_pre : 1 (summed)

[coupling_model]
magnitude : 1 (shared, constant)   # M, the couple's spike magnitude

[coupling_on_pre]
u_back_post = u_back_post + magnitude
neg_count_post = neg_count_post + 1
weighted_back_post = weighted_back_post - 1
