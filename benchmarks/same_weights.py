"""Does a change keep what a preset trains? One digest of the weights after a short run.

    python benchmarks/same_weights.py --data PATH/mnist.npz                  # both presets
    python benchmarks/same_weights.py --data PATH/mnist.npz --preset tutorial --limit 640

Trains `python train.py --preset P --limit N --epochs 1` (20 steps: the tutorial's batches of
32 on 640 digits, the default's batches of 64 on 1,280) in a temporary folder, then prints one
SHA-256 over every array of its checkpoint (G, D, G's moving average, the optimizers' slots,
the random states), taken in an order that does not depend on the arrays' names: a refactoring
that renames layers keeps the digest; one that changes a single number does not. Run it before
and after a change, on one machine (another CPU or TensorFlow version rounds differently).
20 steps can miss a change that moves only the last bit of a rarely used path: creating the
hand penalty's ops in another order changed the default's gradients in the last bit on some
batches and not on others. `--limit 60000` trains a whole epoch (937 steps, a few minutes),
the stronger check.
"""
import argparse
import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
LIMITS = {"tutorial": 640, "stylegan": 1280}  # 20 steps of each preset's batch


def weights_digest(weights_file):
    """(the first 16 hex digits of a SHA-256 over every array's shape and bytes, sorted; the
    number of arrays)."""
    blobs = []
    with h5py.File(weights_file) as h5:
        h5.visititems(lambda name, item: blobs.append(
            str(item.shape).encode() + np.asarray(item[()]).tobytes())
            if isinstance(item, h5py.Dataset) else None)
    hasher = hashlib.sha256()
    for blob in sorted(blobs):
        hasher.update(blob)
    return hasher.hexdigest()[:16], len(blobs)


def train_and_digest(preset, limit, data):
    with tempfile.TemporaryDirectory() as folder:
        run = subprocess.run([sys.executable, str(ROOT / "train.py"), "--preset", preset,
                              "--limit", str(limit), "--epochs", "1", "--data", data,
                              "--out", f"{folder}/run"], capture_output=True, text=True)
        if run.returncode:
            sys.exit(f"error: train.py failed ({run.stderr.strip().splitlines()[-1:]})")
        weights = sorted(Path(folder, "run", "checkpoints").glob("*.weights.h5"))[-1]
        return weights_digest(weights)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="mnist.npz")
    p.add_argument("--preset", choices=sorted(LIMITS), help="one preset (default: both)")
    p.add_argument("--limit", type=int, help="digits to train on (default: 20 steps' worth)")
    args = p.parse_args()
    for preset in [args.preset] if args.preset else sorted(LIMITS):
        digest, arrays = train_and_digest(preset, args.limit or LIMITS[preset], args.data)
        print(f"{preset}: {digest} ({arrays} arrays)")


if __name__ == "__main__":
    main()
