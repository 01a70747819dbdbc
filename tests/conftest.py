import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import keras  # noqa: E402
import pytest  # noqa: E402

import stylegan  # noqa: E402

TINY = dict(latent_dim=8, w_dim=16, filters=8)  # small enough for a test to train in seconds


@pytest.fixture
def tiny_model():
    keras.utils.set_random_seed(0)
    model = stylegan.StyleGAN(**TINY, seed=0)
    model.compile()
    return model
