# Forward IF/LIF neuron of one spiking layer, which also holds the state of the layer's
# ternary neuron couples in the backward stage (docs/method.md M1, M3, M4, M7).
#
# One time step is one dt; every update below is a discrete map, so dt cancels.
# Forward, at the steps of the forward phase (slot steps forward_start ...):
#     v <- lam*v + (drop_input*(current_share*((input_current + I_input) + bias*bias_on_input))
#                   + drop_syn*(c_syn + current_share*(bias*(1 - bias_on_input))));
#     spike if v >= threshold;  v <- v - V
#   With K integration steps per SPIDE step (docs/biophysics.md B9) one step of this map is
#   one integration step: lam, syn_leak are per integration step, the constant currents
#   (F x, the bias, g) deposit current_share = 1/K of their charge per integration step
#   (1 for K = 1, which leaves every sum unchanged to the last bit), spikes their whole
#   weight, and refractory_steps, count_max count integration steps.
#   drop_input / drop_syn are the sample's dropout masks of the input connection and of the
#   incoming spiking connection (0 or 1/(1-p); 1 without dropout, which leaves the sum
#   ((input_current + I_input) + bias) + c_syn unchanged to the last bit). The bias joins the
#   input's current in the input's layer (bias_on_input = 1) and the incoming spiking
#   connection's current elsewhere. [dropout_input_load] / [dropout_syn_load] read the masks
#   from the tables dropout_input / dropout_syn (one row per slot) at each slot's commit step
#   (only with dropout).
#   input_current is F x for layer 0 (0 elsewhere), I_input the F x of an event frame that
#   arrived by input events during the previous step (layer 0 with event frames, else 0), I_syn
#   the sum of the weights of the spikes that arrived during the previous step (every hop is
#   one step late). The spiking connections' current is c_syn, the current of the synapses
#   (docs/biophysics.md B4): c_syn <- syn_leak*c_syn + syn_gain*I_syn, syn_leak =
#   exp(-dt/tau_syn) and syn_gain = 1 - syn_leak for exponential synapses; delta synapses
#   have syn_leak = 0, syn_gain = 1 and c_syn = I_syn exactly ([synaptic_current]).
#   Conductance synapses ([conductance_current], docs/biophysics.md B5) receive the weights of
#   excitatory and inhibitory spikes apart (I_exc, I_inh >= 0), keep them as conductances
#   g_exc, g_inh (decay syn_leak, gain syn_gain) and give
#       c_syn = g_exc*(1 - v*inverse_exc) - g_inh*(1 - v*inverse_inh)
#   with v the membrane before the step (0 at the first forward step) and inverse_exc,
#   inverse_inh the inverse reversal potentials above rest. The couples keep delta synapses.
#   Refractoriness (R = refractory_steps, docs/biophysics.md B4): a spike sets held = R; while
#   held > 0 the membrane is held (no leak, the step's inputs are lost), the neuron cannot
#   fire, and held counts down by one per step. R = 0 (the SPIDE model): never held.
#   rate = leak-weighted count / rate_norm, gate m = [0 < count < count_max] (count_max =
#   ceil(T/(R+1)), the most spikes a neuron can fire), and the couple's input scale
#   back_slope = (1 - slope_refractory*rate)^2 (the 'slope' gate; exactly 1 with the binary
#   gate, where slope_refractory = 0), all set once at the end of the forward phase. This
#   group spikes only in the forward phase.
# Backward, at the steps of the backward phase:
#     c_back <- back_syn_leak*c_back + back_syn_gain*(I_back*back_gain)   (the couple's
#   synapses: syn_leak, syn_gain with exponential synapses; 0, 1 (delta) otherwise)
#     u_back <- lam_back*u_back + back_slope*(current_share*grad_current + c_back)
#   grad_current is g (last layer; readout.eq), zeroed at the error step before it arrives
#   by events, or overwritten by a summed variable.
#   The couple's spike is s^b = M (p - n), p and n the unit spikes of its positive and
#   negative half (couple.eq), which fire when gate = 1 and u_back >= threshold_back (resp.
#   <= -threshold_back). Through one-to-one coupling synapses, in the same step, a spike
#   moves u_back by -s^b, adds s^b to weighted_back and 1 to pos_count (resp. neg_count).
#   It reaches the previous layer as s^b through the transposed weights divided by V: the
#   events add w per unit spike to I_back, and back_gain = M/V scales the sum.
#   beta = weighted_back / rate_norm_back, the mean of s^b weighted by the leak lam_back.
#   With it, at the same step, the post factors of the gradients: beta_input =
#   beta*drop_input (input connection), beta_syn = beta*drop_syn (incoming spiking
#   connection), beta_bias (bias).
# The bias b_l is learnt at the commit step (slot step 0) from the summed beta (docs/method.md M4;
# [bias_learning]).
# Names: lam = leak (1 for IF), lam_back = the couples' leak (lam, or 1 for IF couples:
# couple_neuron 'if'), threshold / reset_amount = V_th (or 2 V_th) / V = 2 V_th;
# the couple's threshold_back = V_th^b (or 2 V_th^b) and M = 2 V_th^b are in couple.eq,
# back_gain = M/V (the same float64 constant as the numpy reference's gain).

[model]
I_syn : 1               # forward synaptic input received during the previous step
c_syn : 1               # current of the forward synapses (= I_syn for delta synapses)
I_exc : 1               # excitatory weights received during the previous step (conductances)
I_inh : 1               # inhibitory |weights| received during the previous step
g_exc : 1               # excitatory conductance
g_inh : 1               # inhibitory conductance
I_input : 1             # F x of the event frame received during the previous step
input_current : 1       # F x (layer 0, summed from the input synapses; 0 in other layers)
bias : 1                # constant current b_l
drop_input : 1          # dropout mask of the input connection's current (1 without dropout)
drop_syn : 1            # dropout mask of the incoming spiking connection's current
count : 1               # forward spikes of the current sample
held : 1                # refractory steps left (0: the neuron integrates and may fire)
resting : 1             # 1 in a step in which the neuron is refractory, else 0
back_slope : 1          # scale of the couple's input (1 with the binary gate)
weighted_count : 1      # leak-weighted forward spike count (= count for IF)
rate : 1                # forward rate a of the last sample
gate : 1                # m = [0 < a < 1] of the last sample (1 or 0)
I_back : 1              # backward synaptic input (signed sum of weights) of the previous step
c_back : 1              # current of the couple's synapses (= I_back*back_gain for delta)
grad_current : 1        # gradient current g (last layer, summed from the readout; 0 elsewhere)
pos_count : 1           # positive couple spikes of the sample (written by coupling synapses)
neg_count : 1           # negative couple spikes of the sample (written by coupling synapses)
weighted_back : 1       # leak-weighted sum of the couple spikes s^b (M per unit spike)
beta : 1                # backward rate (gated) of the last sample
beta_input : 1          # beta*drop_input of the last sample (gradient of F)
beta_syn : 1            # beta*drop_syn of the last sample (gradient of the incoming weights)
beta_bias : 1           # beta times the mask of the current the bias joins (gradient of b)
fro_sq : 1              # sum of the squared incoming feedback weights (layer 0 only)
fro_scale : 1           # min(1, r / ||W_fb||_F) (first and last layer only)
replay_gate : 1         # 1 in the replay window of the replay route (replay.eq); else 0
bias_grad : 1           # accumulated bias gradient (sum of beta over the mini-batch)
bias_momentum : 1       # momentum buffer of the bias
lam : 1 (shared, constant)
lam_back : 1 (shared, constant)
threshold : 1 (shared, constant)
reset_amount : 1 (shared, constant)
rate_norm : 1 (shared, constant)
refractory_steps : 1 (shared, constant)   # R
count_max : 1 (shared, constant)          # ceil(T/(R+1))
slope_refractory : 1 (shared, constant)   # R with the 'slope' gate, else 0
current_share : 1 (shared, constant)      # 1/K: share of a constant current per integration step
syn_leak : 1 (shared, constant)           # exp(-dt/tau_syn); 0 for delta synapses
syn_gain : 1 (shared, constant)           # 1 - syn_leak
back_syn_leak : 1 (shared, constant)      # syn_leak of the couples' synapses
back_syn_gain : 1 (shared, constant)      # 1 - back_syn_leak
inverse_exc : 1 (shared, constant)        # 1 / E_exc (conductances)
inverse_inh : 1 (shared, constant)        # 1 / E_inh (conductances)
rate_norm_back : 1 (shared, constant)
back_gain : 1 (shared, constant)   # M/V: a unit couple spike of magnitude M, divided by V
momentum : 1 (shared, constant)
weight_decay : 1 (shared, constant)
bias_on_input : 1 (shared, constant)   # 1 in the input's layer (its bias joins F x), else 0
SLOT_TIME

[threshold]
forward_phase and v >= threshold and resting < 0.5

[reset]
# only spikes of the forward phase count (the replay route's replay spikes change nothing;
# elsewhere this group fires only in the forward phase, and the factor is 1)
v = v - int(forward_phase)*reset_amount

[reset_counts]
count = count + int(forward_phase)
held = held + int(forward_phase)*(refractory_steps - held)
weighted_count = weighted_count + int(forward_phase)

[membrane_model]
v : 1                   # forward membrane potential (post-reset value between steps)
u_back : 1              # signed membrane of the ternary couple

[membrane_step]
# forward integration (the first forward step starts from v = 0), run before [every_step]
fwd = int(forward_phase)
fwd_first = int(forward_first)
drive = drop_input*(current_share*((input_current + I_input) + bias*bias_on_input)) + drop_syn*(c_syn + current_share*(bias*(1 - bias_on_input)))
held = (1 - fwd_first)*held
resting = fwd*int(held > 0.5)
v = fwd*((1 - resting)*((1 - fwd_first)*(lam*v) + drive) + resting*v) + (1 - fwd)*v
held = held - resting

[every_step]
weighted_count = fwd*((1 - fwd_first)*(lam*weighted_count)) + (1 - fwd)*weighted_count
count = (1 - fwd_first)*count
I_syn = 0
I_input = 0
fwd_end = int(forward_end)
rate = fwd_end*(weighted_count/rate_norm) + (1 - fwd_end)*rate
gate = fwd_end*int(count > 0.5 and count < count_max - 0.5) + (1 - fwd_end)*gate
back_slope = fwd_end*((1 - slope_refractory*rate)*(1 - slope_refractory*rate)) + (1 - fwd_end)*back_slope

[backward_step]
# backward integration (the first backward step starts from u_back = 0), run after
# [every_step] in the same per-step code; the forward-only model of a test pass leaves it
# (and [couple_step], [bias_learning]) out
bwd = int(backward_phase)
bwd_first = int(backward_first)
c_back = bwd*((1 - bwd_first)*(back_syn_leak*c_back) + back_syn_gain*(I_back*back_gain)) + (1 - bwd)*c_back
weighted_back = bwd*((1 - bwd_first)*(lam_back*weighted_back)) + (1 - bwd)*weighted_back
pos_count = (1 - bwd_first)*pos_count
neg_count = (1 - bwd_first)*neg_count
I_back = 0
# g of the new sample arrives by events at the error step (readout.eq): start from 0
grad_current = (1 - int(readout_error_step))*grad_current
bwd_end = int(backward_end)
beta = bwd_end*(weighted_back/rate_norm_back) + (1 - bwd_end)*beta
beta_input = bwd_end*(beta*drop_input) + (1 - bwd_end)*beta_input
beta_syn = bwd_end*(beta*drop_syn) + (1 - bwd_end)*beta_syn
beta_bias = bwd_end*(beta*(bias_on_input*drop_input + (1 - bias_on_input)*drop_syn)) + (1 - bwd_end)*beta_bias

[couple_step]
# backward integration of the couple (the first backward step starts from u_back = 0), run
# after [backward_step]
u_back = bwd*((1 - bwd_first)*(lam_back*u_back) + back_slope*(current_share*grad_current + c_back)) + (1 - bwd)*u_back

[synaptic_current]
# current-based synapses (delta or exponential), run before [every_step]
c_syn = int(forward_phase)*((1 - int(forward_first))*(syn_leak*c_syn) + syn_gain*I_syn) + (1 - int(forward_phase))*c_syn

[driving_membrane]
# the membrane of the conductances' driving force: v before the step (0 at the first step)
v_before = (1 - int(forward_first))*v

[conductance_current]
# conductance synapses, after [driving_membrane] and before [every_step] (in place of
# [synaptic_current])
g_exc = int(forward_phase)*((1 - int(forward_first))*(syn_leak*g_exc) + syn_gain*I_exc) + (1 - int(forward_phase))*g_exc
g_inh = int(forward_phase)*((1 - int(forward_first))*(syn_leak*g_inh) + syn_gain*I_inh) + (1 - int(forward_phase))*g_inh
c_syn = int(forward_phase)*(g_exc*(1 - v_before*inverse_exc) - g_inh*(1 - v_before*inverse_inh)) + (1 - int(forward_phase))*c_syn
I_exc = 0
I_inh = 0

[bias_learning]
# a bias per neuron, appended to [couple_step]: at the commit step accumulate the bias
# gradient of the last sample, update every mini-batch. A bias per channel is a shared
# parameter (shared_weight.eq: [bias_view_model] replaces bias, the channel's group learns);
# a layer without a bias (a pooling layer) leaves bias at 0.
commit = int(commit_step)
bias_grad = bias_grad + commit*beta_bias
update_now = commit*update_flag(t)
gradient = bias_grad/reset_amount
SGD(bias, bias_grad, bias_momentum)

[dropout_input_load]
drop_input = dropout_input(t, i)

[dropout_syn_load]
drop_syn = dropout_syn(t, i)

# The membrane in volts (docs/biophysics.md B8), in place of [membrane_model],
# [membrane_step], [couple_step], [threshold] and [reset]: a leaky integrator
#     dv/dt = (v_rest - v)/tau_m   (leak_rate = 1/tau_m; 0 Hz: the perfect integrator, IF)
# integrated exactly by Brian2's state updater at the start of each step, before the
# step's inputs; while refractory (Brian2's refractory = (R + 1) dt: the spike's step
# counts) it is held. This is the (unless refractory) flag written out: Brian2's numpy
# target cannot apply the flag's conditional write to code that reads per-step scalars
# such as forward_phase, so the equation and the step's code test not_refractory. At each
# forward step the drive jumps v by volt_scale*drive (volt_scale = (V_th - V_rest)/vth, the voltage of one unit of drive); a refractory
# neuron loses it. The first forward step starts from v_rest. The threshold is
# threshold_volts = V_rest + threshold*volt_scale; a spike subtracts reset_volts =
# reset_amount*volt_scale (the modified reset: 2 (V_th - V_rest)). Outside the forward
# phase the membrane decays freely: nothing reads it there, and the next forward phase
# starts from rest.
[membrane_model_volts]
dv/dt = int(not_refractory)*leak_rate*(v_rest - v) : volt
du_back/dt = leak_rate*(v_rest - u_back) : volt   # the couple's membrane (never refractory)
leak_rate : hertz (shared, constant)
v_rest : volt (shared, constant)
volt_scale : volt (shared, constant)
threshold_volts : volt (shared, constant)
reset_volts : volt (shared, constant)

[membrane_step_volts]
# a refractory neuron loses the step's drive
fwd = int(forward_phase)
fwd_first = int(forward_first)
drive = drop_input*(current_share*((input_current + I_input) + bias*bias_on_input)) + drop_syn*(c_syn + current_share*(bias*(1 - bias_on_input)))
v = fwd*(((1 - fwd_first)*v + fwd_first*v_rest) + int(not_refractory)*(volt_scale*drive)) + (1 - fwd)*v

[couple_step_volts]
# the couple's membrane in volts: the same decay, its drive jumps it by volt_scale*drive
# from v_rest at the first backward step; the couple halves compare u_back - v_rest with
# +-threshold_back in volts, and a couple spike moves it by the magnitude in volts
# (couple.eq)
u_back = bwd*(((1 - bwd_first)*u_back + bwd_first*v_rest) + volt_scale*(back_slope*(current_share*grad_current + c_back))) + (1 - bwd)*u_back

[driving_membrane_volts]
# the same membrane in volts, as the model's value above rest: run at the start of the step
# ahead of the state update (with [conductance_current]), so v is the one before the step
v_before = (1 - int(forward_first))*((v - v_rest)/volt_scale)

[threshold_volts]
forward_phase and v >= threshold_volts

[reset_volts]
v = v - int(forward_phase)*reset_volts
