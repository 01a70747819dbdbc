#!/usr/bin/env bash
# The quality figures of docs/results.md: each recipe trained on the full MNIST, then evaluate.py
# on its last checkpoint (the FID, the classes, the grid's attribution; a .eval.json beside it).
#
#     benchmarks/reproduce.sh PATH/TO/mnist.npz OUT [SEEDS="0 1 2"] [FLAGS...]
#
# trains `python train.py --seed S FLAGS` into OUT/seed-S for each seed: no FLAGS is the
# default recipe (10 epochs; docs/results.md, "What the default recipe achieves"),
# `--preset tutorial --epochs 5` the tutorial's, any other flags a lever of the levers' table.
set -euo pipefail
data=${1:?give the path of the full mnist.npz}
out=${2:?give a folder for the runs}
seeds=${3:-0 1 2}
shift $(($# < 3 ? $# : 3))
for seed in $seeds; do
    python train.py --data "$data" --seed "$seed" --out "$out/seed-$seed" "$@"
    last=$(ls "$out/seed-$seed"/checkpoints/ckpt-*.json | grep -v -- -step | sort | tail -1)
    python evaluate.py --checkpoint "$last" --data "$data" --pairs 5000
done
