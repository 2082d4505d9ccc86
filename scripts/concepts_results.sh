#!/bin/sh
# Recompute every concept result quoted in docs/CONCEPTS.md (run after retraining data/model/).
# Usage: scripts/concepts_results.sh [OUT]   (default /tmp/concepts); results go through the cache.
set -e
OUT=${1:-/tmp/concepts}
PY=${PY:-.venv/bin/python}
$PY -m core concepts tcav --out "$OUT/generator"
$PY -m core concepts tcav --source annotations --dataset data/demo --out "$OUT/annotations"
$PY -m core concepts tcav --dataset data/real_pbc --out "$OUT/real_pbc"
for feature in granule_density chromatin_heterogeneity lobe_count; do
    $PY -m core concepts sweep --feature "$feature" --cells 20 --out "$OUT/sweeps"
done
