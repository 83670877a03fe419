#!/bin/bash
# Full person-voc training with two checkouts, one after the other on an otherwise idle machine:
#   benchmarks/train_side_by_side.sh OLD_CHECKOUT NEW_CHECKOUT [SHARED]
# (each checkout built in place: python setup.py build_ext --inplace). Prints wall seconds and the
# model's sha256 for each; used for the fixed-order training (docs/training.md).
set -u
old=$1; new=$2; shared=${3:-$(dirname "$0")/../../shared}
work=$(mktemp -d)
for which in old new; do
  dir=${!which}
  s=$(date +%s.%N)
  (cd "$dir" && PYTHONPATH="$dir" python bin/dpm-train person --voc "$shared/data/person-voc" --components 1 -j 2 \
      --seed 0 --box-scale 0.6 0.75 --out "$work/$which.npz" -q)
  e=$(date +%s.%N)
  echo "$which $(echo "$e - $s" | bc) s $(sha256sum "$work/$which.npz" | cut -c1-16)"
done
