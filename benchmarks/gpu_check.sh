#!/usr/bin/env bash
# The prepared CUDA check, for a session that is lent a GPU machine (the device tool; its python3 holds a CUDA
# build of torch, pandas and scikit-learn, but neither snakemake nor pooch, and ../shared does not travel):
#   1. the engine's CUDA path against the oracle on CUDA (tests/test_engine.py -k cuda);
#   2. the engine at K = 1, 8, 48, 192, 648 on CUDA (benchmarks/bench_engine.py --device cuda);
#   3. the full default study with train.device: cuda, where snakemake and pooch import (carry their wheels):
#      one train job per optimizer x rho (genboost/config/packing.py splits groups to fill CPU cores, never for
#      CUDA), each job's start and end printed from its log (whether the GPU jobs overlap).
# Copy the obesity CSV into a git-ignored folder of the checkout, carry it, and point GENBOOST_DATA_CSV at it.
# Figures go to $OUT (the device tool's folder) or else benchmarks/results.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-benchmarks/results}
py=${PYTHON:-python3}
csv=${GENBOOST_DATA_CSV:?set GENBOOST_DATA_CSV to the obesity CSV}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
$py -m pytest -q -p no:cacheprovider tests/test_engine.py -k cuda -rs
$py benchmarks/bench_engine.py --device cuda --ks 1,8,48,192,648 --epochs 5 --csv "$csv" --out "$out/cuda-engine.json"
if $py -c "import snakemake, pooch" 2>/dev/null; then
    $py benchmarks/bench_study.py --device cuda --skip-engine --skip-baselines --repeats 1 --csv "$csv" \
        --out "$out/cuda-study.json"
else
    echo "gpu_check: snakemake or pooch is not installed here, so the full study was skipped (carry their wheels)"
fi
