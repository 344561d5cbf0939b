# Feedback Frobenius-norm restriction ||W_fb||_F <= r (docs/method.md M5; exact norm).
# A one-neuron group sums the squared feedback weights (fro_sq of the first layer, itself a
# summed variable of the norm copy of W_fb) and computes
#     fro_scale = min(1, r / ||W_fb||_F),
# which is copied to the first and last layers (and read through a linked variable by a
# parameter group holding W, [scale_view_model]). Feedback events use w * fro_scale; the
# scale is made permanent at the next update (plasticity.eq [project]), which equals
# projecting right after each update as the reference does.

[model]
fro_sq_total : 1        # ||W_fb||_F^2
fro_scale : 1           # min(1, r/||W_fb||_F)
radius : 1 (shared, constant)

[every_step]
norm = sqrt(fro_sq_total)
above = int(norm > radius)
fro_scale = above*(radius/(norm + (1 - above))) + (1 - above)

[sum_model]
fro_sq_total_post = fro_sq_pre : 1 (summed)

[copy_model]
fro_scale_post = fro_scale_pre : 1 (summed)

[scale_view_model]
fro_scale : 1 (linked)  # min(1, r/||W_fb||_F), read from the feedback-norm group
