#!/usr/bin/env bash
# The lever runs of docs/results.md (the quality issue), on the full MNIST, each followed by
# evaluate.py at the epoch the table reports (with --raw too where the run has G's moving
# average). Usage: benchmarks/levers.sh PATH/TO/mnist.npz [OUT_DIR=runs/i7]
set -euo pipefail
data=${1:?give the path of the full mnist.npz}
out=${2:-runs/i7}

evaluate_epochs() {  # NAME EPOCH...: evaluate.py on each of those checkpoints
    local name=$1 at
    shift
    for at in "$@"; do
        python evaluate.py --checkpoint "$(printf "%s/%s/checkpoints/ckpt-%04d.json" "$out" "$name" "$at")" \
            --data "$data"
    done
}

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
# The first default (session 2): G's recipe + minibatch std + the 7x7, 14x14 | 28 grid, then + R1.
# O turns today's default back into it.
O="--mixing-prob 0.5 --no-styled-to-image --grid-coarse-size 14 --mapping-lr-mult 1 --beta-2 0.999
   --lr-halved-from 0"
run default 10 3 $O --r1-gamma 0
run J1-default-r1 4 4 $O  # then resumed to epoch 10 (--epochs 10 --resume)
run J3-default-mix0.2 2 2 $O --r1-gamma 0 --mixing-prob 0.2
# Session 3 (its runs went to runs/i8), each against J1, evaluated at epoch 3
run K1-r1g10 3 3 $O --r1-gamma 10
run K2-beta2-0.99 3 3 $O --beta-2 0.99
run T1-styled-to-image 3 3 $O --styled-to-image --grid-coarse-size 28
run E1-equalized 3 3 $O --equalized-lr
run M2-mix0.2 3 3 $O --mixing-prob 0.2
run L1-dlr2e-3 3 3 $O --d-lr 0.002
run N1-mix0.2-styled 10 3 --mixing-prob 0.2 --mapping-lr-mult 1 --beta-2 0.999 --lr-halved-from 0  # J1 + mixing 0.2 + styled to_image, grid 28
run N2-mix0.1 3 3 --mapping-lr-mult 1 --beta-2 0.999 --lr-halved-from 0 --mixing-prob 0.1
run P1-default 3 3 --mixing-prob 0.2 --beta-2 0.999 --lr-halved-from 0  # session 3's default: N1 + the paper's mapping multiplier 0.01
# then resumed to epoch 10: python train.py --data "$data" --epochs 10 --resume --out "$out/P1-default"
# Session 4 (its runs went to runs/i9), each against P1 over ten epochs, every checkpoint evaluated
# (C1 was stopped after epoch 4 for time, so it is run to 3 here); B1, then R1, was session 4's default.
run A1-r1every1 10 3 --mixing-prob 0.2 --beta-2 0.999 --lr-halved-from 0 --r1-every 1
run C1-r1every1-mix0.3 3 3 --beta-2 0.999 --lr-halved-from 0 --r1-every 1 --mixing-prob 0.3
run B1-beta2-0.99 10 3 --mixing-prob 0.2 --lr-halved-from 0  # session 4: P1 + Adam beta_2 0.99
# B1 from its epoch-6 checkpoint with G's and D's learning rates halved (does the drift stop?)
mkdir -p "$out/R1-B1-lr5e-4-from6/checkpoints"
cp "$out"/B1-beta2-0.99/checkpoints/ckpt-000[1-6].* "$out/R1-B1-lr5e-4-from6/checkpoints/"
head -7 "$out/B1-beta2-0.99/history.csv" > "$out/R1-B1-lr5e-4-from6/history.csv"
python train.py --data "$data" --epochs 10 --keep 20 --resume --lr 0.0005 \
    --out "$out/R1-B1-lr5e-4-from6"
# Session 5 (runs/i10), ten epochs from scratch, every checkpoint evaluated: X2 is session 4's
# default with the rates halved from epoch 5; X1 is today's default (X2 + mixing 0.5), then two
# more seeds of it to epoch 3, resumed to epoch 10.
run X2-from5 10 3 --mixing-prob 0.2 --lr-halved-from 5
run X1-mix0.5-from5 10 3
for name in X2-from5 X1-mix0.5-from5; do
    evaluate_epochs "$name" 4 5 6 7 8 9 10
    python benchmarks/fid_by_crossover.py "$out/$name/checkpoints/ckpt-0010.json" --data "$data"
done
for seed in 1 2; do
    run "X1-seed$seed" 3 3 --seed "$seed"
    python train.py --data "$data" --epochs 10 --keep 20 --resume --out "$out/X1-seed$seed"
    evaluate_epochs "X1-seed$seed" 4 5 6 7 8 9 10
done
