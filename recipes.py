"""The training recipes: the tutorial's exactly (`--preset tutorial`) and the measured best
(`--preset stylegan`, the default). docs/results.md has the measurements behind every choice.

A recipe sets the StyleGAN arguments in MODEL_KEYS, the two Adam optimizers and where the
style-mixing grid splits coarse from fine; train.py's flags change single parts of it.
"""
PRESETS = {
    "tutorial": dict(
        mixing_prob=0.9,  # share of training samples made from two z codes (style mixing)
        g_lr=0.001, d_lr=0.001,  # one Adam learning rate for D and G
        beta_1=0.0, beta_2=0.999,  # Adam betas of both
        lr_halved_from=0,  # from this epoch on (1 = the first), G's and D's rates halve; 0 = never
        convs_per_block=1,  # style layers per resolution: 7, 14, 28
        d_batchnorm=True,  # the tutorial D's BatchNormalization
        minibatch_std=False,  # the paper's minibatch-std channel in D
        r1_gamma=0.0,  # R1 penalty weight (0 = off)
        r1_every=16,  # lazy R1: every 16th D step
        ema_beta=0.0,  # moving average of G's weights for pictures and export (0 = off)
        mapping_lr_mult=1.0,  # mapping net's learning rate / G's
        g_step_d_training=False,  # G's step runs D in inference mode (BatchNorm moving stats)
        styled_to_image=False,  # a last style slot that modulates to_image (StyleGAN2's toRGB)
        equalized_lr=False,  # weights scaled by He's constant at run time (the paper's layers)
        grid_coarse_size=7,  # the grid's rows give the style layers up to 7x7
    ),
}
PRESETS["stylegan"] = {  # the tutorial's, with the levers that measured best
    **PRESETS["tutorial"],
    "mixing_prob": 0.5,  # mixed images' FID within 1.3x of one-z images' (at 0.2: up to 1.6x)
    "beta_2": 0.99,  # the paper's Adam betas (0, 0.99): no blow-up by epoch 10, 0.999 had one
    "lr_halved_from": 5,  # before the full rate's drift (after epoch 6): FID falls every epoch
    "d_batchnorm": False,  # no train/inference gap in D for G's step to exploit
    "minibatch_std": True,  # D sees a batch short of variety
    "r1_gamma": 1.0,  # R1 on real digits, lazily every 16 D steps: fewer missing classes
    "ema_beta": 0.999,  # pictures and export from G's moving average
    "mapping_lr_mult": 0.01,  # the paper's: the mapping net learns 100x slower than G
    "styled_to_image": True,  # a 4th style slot, on to_image: the finest style of all
    "grid_coarse_size": 28,  # rows give every style block, columns to_image's style
}
RECIPE_KEYS = tuple(PRESETS["tutorial"])
OPTIMIZER_KEYS = ("g_lr", "d_lr", "beta_1", "beta_2", "lr_halved_from")
MODEL_KEYS = tuple(k for k in RECIPE_KEYS if k not in OPTIMIZER_KEYS + ("grid_coarse_size",))
# recipe keys that change the model's weights or optimizer slots: a resumed run keeps them
STRUCTURAL_KEYS = ("convs_per_block", "d_batchnorm", "minibatch_std", "ema_beta",
                   "mapping_lr_mult", "styled_to_image", "equalized_lr")
