# Two-stage local plasticity: SGD with momentum and weight decay, PyTorch semantics
# (docs/method.md M4). Every weight copy and every bias runs this same text, so copies
# of one connection stay bitwise equal.
# Before this text, the including code defines two temporaries:
#   update_now   1 at the commit step that ends a mini-batch, else 0
#   gradient     the S-scaled gradient: accumulated sum over the mini-batch of
#                beta_post * a_pre (/ V for spiking layers)
# With d = gradient + weight_decay * weight:
#     buffer <- momentum * buffer + d;   weight <- weight - eta * buffer;   accumulator <- 0
# with eta = sgd_rate(t), the SGD rate lr0 / S of the mini-batch (a per-slot table set at the
# commit slots, so that a learning-rate schedule changes it inside a run).
# Products with update_now (0 or 1) select exactly, without branches.
# WEIGHT, ACCUMULATOR, BUFFER are replaced by the variable names of the including group;
# in Synapses momentum, weight_decay become momentum_syn, weight_decay_syn
# (Brian2 forbids synaptic names that shadow pre/post variables).

[sgd]
BUFFER = update_now*(momentum*BUFFER + (gradient + weight_decay*WEIGHT)) + (1 - update_now)*BUFFER
WEIGHT = WEIGHT - update_now*(sgd_rate(t)*BUFFER)
ACCUMULATOR = (1 - update_now)*ACCUMULATOR

[project]
# Feedback weights are kept unprojected between updates; events use w*fro_scale. The
# projection W <- W min(1, r/||W||_F) is made permanent right before the next update.
WEIGHT = update_now*(WEIGHT*FRO_SCALE) + (1 - update_now)*WEIGHT
