"""Every setting of a recipe, in one place: the `Config` dataclass and the two presets.

`Config()` is the tutorial's code (its networks and initialisations, its step, its one Adam, its
mixing, its grid); `PRESETS["stylegan"]` is the recipe that measured best on the full MNIST
(docs/results.md has the measurements behind every choice). train.py makes one flag per field
(`mixing_prob` -> `--mixing-prob`), a checkpoint stores the config whole, and `from_dict`
checks flags and files alike. A field marked `fixed` shapes the network, its weights or the
data: a resumed run keeps it.
"""
import dataclasses
import math
from dataclasses import dataclass, field

LOSSES = ("nonsaturating", "wgan-gp")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
FOLDER_SIZES = (32, 64, 128, 256)
MNIST_SIZE = 28
# what a folder run (--dataset) puts back in a preset unless given: the settings measured on
# digits only (the hand penalty measures digits; G's width was narrowed for MNIST's D)
MNIST_ONLY = {"hand_weight": 0.0, "filters": 64}
FIELD_LIMIT = 1 << 20  # a cap on counts and widths: anything larger is a typo, not a setting


def setting(default, meaning, fixed=False, at_least=None, below=None, at_most=None,
            choices=None):
    """A Config field: its default, a one-line meaning (the flag's help) and its valid range:
    at_least <= value (< below | <= at_most), or one of choices."""
    return field(default=default, metadata=dict(
        meaning=meaning, fixed=fixed, at_least=at_least, below=below, at_most=at_most,
        choices=choices))


@dataclass(frozen=True)
class Config:
    # -- the run
    preset: str = setting("tutorial", "the recipe the run started from", fixed=True,
                          choices=("tutorial", "stylegan"))
    epochs: int = setting(20, "total epochs; --resume trains up to this many", at_least=1,
                          at_most=FIELD_LIMIT)
    batch_size: int = setting(32, "real images per step (the tutorial: 32, as "
                              "get_half_batch_ds(64))", at_least=1, at_most=FIELD_LIMIT)
    seed: int = setting(0, "seeds the weights, the training draws, the data order and the grid",
                        fixed=True, at_least=0, below=2 ** 31)
    steps_per_execution: int = setting(1, "training steps per compiled call (Keras' "
                                       "steps_per_execution; fewer Python dispatches): an "
                                       "epoch is cut to a multiple of it, and checks, logs, "
                                       "checkpoints and stops come between calls", at_least=1,
                                       at_most=1024)
    precision: str = setting("float32", "Keras dtype policy (the tutorial: float32); auto: "
                             "on GPUs of compute capability 8.0+ mixed_bfloat16, 7.x "
                             "mixed_float16; on a CPU with bfloat16 units mixed_bfloat16; "
                             "else float32", choices=PRECISIONS)
    # -- the data: MNIST (data, limit) or a folder of images (dataset, image_size)
    data: str = setting("", "mnist.npz to train on (empty: MNIST_PATH, Keras' cache, the "
                        "shipped data/mnist.npz, then Keras' download)", fixed=True)
    dataset: str = setting("", "a folder of .jpg/.png images to train on instead of MNIST",
                           fixed=True)
    image_size: int = setting(MNIST_SIZE, "image side: 28 for MNIST; with --dataset 32, 64, "
                              "128 or 256", fixed=True, choices=(MNIST_SIZE, *FOLDER_SIZES))
    limit: int = setting(0, "train on the first N images only (0: all)", fixed=True,
                         at_least=0)
    shuffle_buffer: int = setting(1024, "each epoch's order: a tf.data shuffle buffer of this "
                                  "many images (tutorial: 1024), 0: a full permutation",
                                  at_least=0, at_most=FIELD_LIMIT)
    # -- the networks (tutorial: 秀代码)
    latent_dim: int = setting(100, "size of each z", fixed=True, at_least=1,
                              at_most=FIELD_LIMIT)
    w_dim: int = setting(128, "size of w, the mapping net's output", fixed=True, at_least=1,
                         at_most=FIELD_LIMIT)
    mapping_layers: int = setting(2, "Dense layers in the mapping net", fixed=True,
                                  at_least=1, at_most=64)
    mapping_activation: str = setting("linear", "between the mapping net's Dense layers "
                                      "(the tutorial found linear best on MNIST)", fixed=True,
                                      choices=("linear", "leaky_relu"))
    mapping_lr_mult: float = setting(1.0, "the mapping net's learning rate as a multiple of "
                                     "G's (paper: 0.01); kept inside its layers", fixed=True,
                                     at_least=1e-6, at_most=1.0)
    filters: int = setting(64, "style block width (MNIST: every block; folders: at full "
                           "resolution, doubling towards 4x4 up to 256)", fixed=True,
                           at_least=1, at_most=4096)
    styled_to_image: bool = setting(False, "one more style slot, modulating to_image's input "
                                    "(StyleGAN2's toRGB)", fixed=True)
    leaky_slope: float = setting(0.3, "negative slope of every LeakyReLU (Keras' default, "
                                 "the tutorial's; the paper: 0.2)", fixed=True, at_least=0.0,
                                 below=1.0)
    init: str = setting("tutorial", "how G starts: tutorial (AddNoise's scales N(0, 1), "
                        "'large initial noise'; AdaMod's kernel N(0, 1), 'this kernel is "
                        "important'; the constant as a Dense kernel, glorot_uniform) or small "
                        "(noise scales 0, as the paper's; AdaMod's kernel glorot_uniform; the "
                        "constant N(0, 0.05))", fixed=True, choices=("tutorial", "small"))
    d_filters: int = setting(64, "MNIST D: its first conv's width (the second's is twice it)",
                             fixed=True, at_least=1, at_most=4096)
    d_kernel: int = setting(4, "MNIST D: kernel size of its two strided convs", fixed=True,
                            at_least=1, at_most=28)
    d_dropout: float = setting(0.3, "MNIST D: rate of the Dropout after each conv "
                               "(tutorial: 0.3; 0 leaves the layers out, as the paper's D)",
                               fixed=True, at_least=0.0, below=1.0)
    d_batchnorm: bool = setting(True, "MNIST D: BatchNormalization after each conv "
                                "(tutorial)", fixed=True)
    minibatch_std: bool = setting(False, "minibatch standard deviation channel in D (paper)",
                                  fixed=True)
    ema_beta: float = setting(0.0, "moving average of G's weights for pictures and export "
                              "(0: off)", fixed=True, at_least=0.0, below=1.0)
    # -- the training step
    step: str = setting("g_first", "g_first (tutorial): G's update on 2 x batch_size images, "
                        "then D's on the real batch and the first batch_size of those; "
                        "same_fakes: G makes batch_size images, D learns from them, then G "
                        "from the updated D's verdict on them", choices=("g_first", "same_fakes"))
    mixing: str = setting("random_slots", "style mixing in training: random_slots (tutorial: "
                          "each style slot takes z1 or z2 at random, one choice per step for "
                          "the whole batch) or crossover (the paper: per sample, with "
                          "probability mixing_prob, z1 before a random slot, z2 from it)",
                          choices=("random_slots", "crossover"))
    mixing_prob: float = setting(0.9, "crossover mixing: share of training samples made from "
                                 "two z codes", at_least=0.0, at_most=1.0)
    loss: str = setting("nonsaturating", "the tutorial's loss, or wgan-gp (lambda 10)",
                        choices=LOSSES)
    r1_gamma: float = setting(0.0, "R1 penalty weight on real images, on every 16th D update "
                              "(0: off; paper: 10)", at_least=0.0, at_most=1e6)
    hand_weight: float = setting(0.0, "weight of a penalty where a mix (a sample's coarse "
                                 "slots, another's fine ones) has a stroke width other than "
                                 "the fine source's, on every 4th G update; MNIST only; 0: off",
                                 at_least=0.0, at_most=1e6)
    hand_coarse_size: int = setting(28, "the hand penalty's mixes take the coarse source's "
                                    "style slots up to this size in pixels (28 with a styled "
                                    "to_image: every style block, the fine source to_image's "
                                    "style)", at_least=1, at_most=4096)
    # -- the optimizers: Adam (beta_1 0) for D and for G
    shared_optimizer: bool = setting(True, "one Adam for G and D (tutorial: one step counter, "
                                     "advanced by both updates) instead of one each",
                                     fixed=True)
    lr: float = setting(0.001, "Adam's learning rate, of G and of D", at_least=1e-12)
    beta_2: float = setting(0.999, "Adam beta_2 of both (Keras' default; the paper: 0.99)",
                            at_least=0.0, below=1.0)
    lr_halved_from: int = setting(0, "halve the learning rate from this epoch on (1 = the "
                                  "first; 0: never)", at_least=0)
    # -- the pictures
    grid_noise: str = setting("zeros", "the grid's noise image: zeros (tutorial) or one fixed "
                              "draw", choices=("zeros", "fixed"))
    grid_coarse_size: int = setting(7, "the grid's rows give the style slots up to this "
                                    "size in pixels, its columns the rest", at_least=1,
                                    at_most=4096)

    def __post_init__(self):
        _check_recipe(self)

    @property
    def channels(self):
        return 1 if self.image_size == MNIST_SIZE else 3


class ConfigError(ValueError):
    """A setting that is not valid; the message is one line and names it."""


def flag(name):
    return "--" + name.replace("_", "-")


def from_dict(values, name_of=flag):
    """A Config from a dict of settings (flags merged over a preset, or a checkpoint's json),
    after checking every key, type and range. `name_of(key)` names a setting in the messages
    ("--mixing-prob" for flags, "mixing_prob" for a file)."""
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise ConfigError(f"unknown setting {name_of(unknown[0])}")
    for name, value in values.items():
        _check_value(name, value, name_of)
    config = Config(**values)  # checks the recipe's combinations
    _check_data(config)
    return config


def field_type(name):
    """The field's class: int, float, bool or str (also under string annotations)."""
    kind = FIELDS[name].type
    return {"int": int, "float": float, "bool": bool, "str": str}.get(kind, kind)


def _check_value(name, value, name_of):
    meta, kind = FIELDS[name].metadata, field_type(name)
    ok_type = (isinstance(value, kind) and not (kind is int and isinstance(value, bool))
               or kind is float and isinstance(value, int) and not isinstance(value, bool))
    if not ok_type:
        raise ConfigError(f"{name_of(name)} must be {kind.__name__}, got {value!r}")
    if kind is float and not math.isfinite(value):
        raise ConfigError(f"{name_of(name)} must be a finite number, got {value}")
    if meta["choices"] is not None and value not in meta["choices"]:
        raise ConfigError(f"{name_of(name)} must be one of "
                          f"{', '.join(map(str, meta['choices']))}, got {value}")
    low, below, high = meta["at_least"], meta["below"], meta["at_most"]
    if (low is not None and value < low or below is not None and value >= below
            or high is not None and value > high):
        top = f"{below})" if below is not None else (f"{high}]" if high is not None else "...)")
        raise ConfigError(f"{name_of(name)} must be in [{low}, {top}, got {value}")


def _check_data(config):
    """The data settings fit together (a Config for networks alone, in tests and benchmarks,
    may name no data)."""
    if config.dataset and config.image_size not in FOLDER_SIZES:
        raise ConfigError(f"{flag('image_size')} {config.image_size}: with a folder of "
                          f"images use one of {', '.join(map(str, FOLDER_SIZES))}")
    if not config.dataset and config.image_size != MNIST_SIZE:
        raise ConfigError(f"{flag('image_size')} {config.image_size}: MNIST is 28x28; "
                          f"give {flag('dataset')} DIR to train on other images")
    if config.dataset and config.data:
        raise ConfigError(f"{flag('data')} and {flag('dataset')} both given: train on "
                          f"MNIST or on a folder, not both")
    if config.dataset and config.hand_weight:
        raise ConfigError(f"{flag('hand_weight')} {config.hand_weight}: the penalty measures "
                          f"the stroke width of a digit, light ink on dark paper: MNIST only")


def _check_recipe(config):
    """Rules that tie two training settings together (checked whenever a Config is made)."""
    penalised = "R1" if config.r1_gamma else "WGAN-GP" if config.loss == "wgan-gp" else None
    if penalised and config.d_batchnorm and config.image_size == MNIST_SIZE:
        raise ConfigError(f"{penalised} needs D without BatchNorm (a gradient penalty is per "
                          f"image; BatchNorm mixes the batch): add --no-d-batchnorm")
    lazy = [name for name in ("r1_gamma", "hand_weight") if getattr(config, name)]
    if config.shared_optimizer and lazy:
        given = " ".join(f"{flag(name)} {getattr(config, name)}" for name in lazy)
        off = " ".join(f"{flag(name)} 0" for name in lazy)
        raise ConfigError(f"{given}: a lazy penalty counts its own network's updates, but G "
                          f"and D share one optimizer: give {off} (or train a new run with "
                          f"--no-shared-optimizer)")
    if config.hand_weight and config.batch_size < 2:
        raise ConfigError(f"--hand-weight {config.hand_weight}: the penalty pairs the images of "
                          f"a batch: give --batch-size 2 or more (or --hand-weight 0)")


def unused(config):
    """{field: why} for the settings this config does not read: a flag that sets one is
    refused (train.py), so no run looks different from what it trains."""
    why = {}
    if config.mixing == "random_slots":
        why["mixing_prob"] = "acts with --mixing crossover only"
    if config.dataset:
        for name in ("d_filters", "d_kernel", "d_dropout", "d_batchnorm"):
            why[name] = "sets the MNIST discriminator; a folder run has a deeper D of its own"
    if not config.hand_weight:
        why["hand_coarse_size"] = "acts with --hand-weight only"
    return why


def to_dict(config):
    return dataclasses.asdict(config)


PATH_FIELDS = ("data", "dataset")  # fixed, but the files may move: a new path is taken


def fixed_fields():
    return [name for name, f in FIELDS.items() if f.metadata["fixed"]]


PRESETS = {"tutorial": Config()}
PRESETS["stylegan"] = dataclasses.replace(
    PRESETS["tutorial"],
    preset="stylegan",
    # the base the levers below were measured on (docs/results.md, "What each lever did")
    precision="auto",
    epochs=10,
    batch_size=64,
    shuffle_buffer=0,  # a full permutation: every batch draws from all of MNIST
    mapping_layers=3,
    leaky_slope=0.2,  # the paper's
    init="small",  # noise learned up from nothing, as the paper's
    d_kernel=5,
    step="same_fakes",  # D learns from fakes of the G it judges; G makes them once a step
    mixing="crossover",  # the paper's: per sample, a crossover at any slot
    shared_optimizer=False,
    grid_noise="fixed",
    # the levers that measured best on that base, one at a time
    mixing_prob=0.5,  # enough mixing that mixed images look as good as one-z images
    beta_2=0.99,  # the paper's Adam betas (0, 0.99): Adam forgets old gradients faster
    lr_halved_from=5,  # the full rate drifts once the digits are formed
    d_batchnorm=False,  # no train/inference gap in D for G's step to exploit
    minibatch_std=True,  # D sees a batch short of variety
    r1_gamma=1.0,  # R1 on real digits: fewer missing classes
    ema_beta=0.999,  # pictures and export from G's moving average, smoother than G
    mapping_lr_mult=0.01,  # the paper's: the mapping net learns 100x slower than G
    styled_to_image=True,  # a 4th style slot, on to_image: the finest style of all
    grid_coarse_size=28,  # rows give every style block, columns to_image's style
    hand_weight=0.1,  # the columns then give their stroke width: "each column one hand"
    # measured last, in this order: a narrower G paid for a wider D; D without Dropout; D at
    # 96/192 filters (FID 4.7, 4.5, 4.6 on three seeds against 5.4, 4.5, 7.7 at 64/128)
    filters=48,  # G narrower than the tutorial's 64
    d_dropout=0.0,  # the paper's D: no Dropout
    d_filters=96,  # D 1.5x the tutorial's widths: 96/192
)
FIELDS = {f.name: f for f in dataclasses.fields(Config)}
