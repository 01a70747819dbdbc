#!/usr/bin/env bash
# The four 5-epoch runs of the tutorial's recipe in docs/results.md, on the full MNIST, then evaluate.py on every
# checkpoint. Usage: benchmarks/results_runs.sh PATH/TO/mnist.npz [OUT_DIR=runs]
set -euo pipefail
data=${1:?give the path of the full mnist.npz}
out=${2:-runs}
python train.py --preset tutorial --data "$data" --epochs 5 --keep 10 --precision float32 --out "$out/mixing-0.9"
python train.py --preset tutorial --data "$data" --epochs 5 --keep 10 --precision float32 --out "$out/mixing-0.0" --mixing-prob 0
python train.py --preset tutorial --data "$data" --epochs 5 --keep 10 --precision float32 --out "$out/leaky-relu" \
    --mapping-activation leaky_relu
python train.py --preset tutorial --data "$data" --epochs 5 --keep 10 --precision mixed_bfloat16 --out "$out/bfloat16"
for run in mixing-0.9 mixing-0.0 leaky-relu bfloat16; do
    for ckpt in "$out/$run"/checkpoints/ckpt-*.json; do
        python evaluate.py --checkpoint "$ckpt" --data "$data"
    done
done
