#!/usr/bin/env bash
# The lever runs of docs/results.md (the quality issue), on the full MNIST, each followed by
# evaluate.py at the epoch the table reports (with --raw too where the run has G's moving
# average). Usage: benchmarks/levers.sh PATH/TO/mnist.npz [OUT_DIR=runs/i7]
set -euo pipefail
data=${1:?give the path of the full mnist.npz}
out=${2:-runs/i7}

run() {  # NAME EPOCHS EVAL_EPOCH FLAGS...
    local name=$1 epochs=$2 at=$3
    shift 3
    python train.py --data "$data" --epochs "$epochs" --keep 20 --out "$out/$name" "$@"
    local ckpt
    ckpt=$(printf "%s/%s/checkpoints/ckpt-%04d.json" "$out" "$name" "$at")
    python evaluate.py --checkpoint "$ckpt" --data "$data"
    if grep -q '"ema_beta": 0\.[0-9]*[1-9]' "$ckpt"; then
        python evaluate.py --checkpoint "$ckpt" --data "$data" --raw
    fi
}

T="--preset tutorial"
run A-adam2e-4-b0.5 2 2 $T --lr 0.0002 --beta-1 0.5 --ema-beta 0.999
run B-paperD-r1 3 3 $T --lr 0.0002 --beta-1 0.5 --ema-beta 0.999 --no-d-batchnorm \
    --minibatch-std --r1-gamma 1
run E-noBN-lr1e-3 2 2 $T --no-d-batchnorm --ema-beta 0.999
run F-BN-Gtrain-lr1e-3 2 2 $T --g-step-d-training --ema-beta 0.999
run G-noBN-mix0.5 3 3 $T --no-d-batchnorm --ema-beta 0.999 --mixing-prob 0.5
run H-noBN-mix0.5-2conv 1 1 $T --no-d-batchnorm --ema-beta 0.999 --mixing-prob 0.5 \
    --convs-per-block 2
run default 10 3 # --preset stylegan: G's recipe + minibatch std + the 7x7, 14x14 | 28 grid
run J1-default-r1 4 4 --r1-gamma 1
run J3-default-mix0.2 2 2 --mixing-prob 0.2
