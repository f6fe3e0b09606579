#!/usr/bin/env bash
# A/B of the full default study: an earlier commit (with its own defaults) against the working tree, run
# alternately from a clean results/ so that both see the same VM speed (this VM's speed drifts by up to 2x
# within hours, so only runs of one window compare). Prints each run's wall time and the median ratio.
#   bash benchmarks/ab_study.sh REV [RUNS]      e.g. bash benchmarks/ab_study.sh 2ebf069 2
# With AB_TRACE=FOLDER, each run's Python processes record their CPU seconds (benchmarks/trace/sitecustomize.py)
# in FOLDER/<before|after>-<run>.tsv, for `python benchmarks/job_cpu.py FILE --wall S`; each run prints its load.
# AB_AFTER_CONFIG='KEY=VALUE ...' adds --config settings to the working tree's runs (e.g. 'confirm=null': the grid alone).
# Needs the obesity CSV ($GENBOOST_DATA_CSV or ../shared/data) and, where Slurm's tools are installed, the
# Slurm daemons up (.ci/slurm-up.sh): else every snakemake start waits ~10 s for the plugin's scontrol.
set -euo pipefail
cd "$(dirname "$0")/.."
rev=${1:?give the commit to compare with}
runs=${2:-2}
csv=${GENBOOST_DATA_CSV:-$(realpath ../shared/data/ObesityDataSet_raw_and_data_sinthetic.csv)}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/before" "$tmp/after"
trace_hook=$(realpath benchmarks/trace)
[ -z "${AB_TRACE:-}" ] || mkdir -p "$AB_TRACE"
git archive "$rev" | tar -x -C "$tmp/before"
git ls-files -z | xargs -0 tar -c | tar -x -C "$tmp/after"
declare -A walls=([before]="" [after]="")
for i in $(seq "$runs"); do
    for side in before after; do
        rm -rf "$tmp/$side/results" "$tmp/$side/.snakemake" "$tmp/$side/resources"
        # the data's local copy: a `datasets:` entry since the dataset became config, `data:` before
        if grep -q '^datasets:' "$tmp/$side/config.yaml"; then data="datasets={obesity: {local_copy: $csv}}"; else
            data="data={local_copy: $csv}"; fi
        extra=()
        [ "$side" = before ] || read -r -a extra <<<"${AB_AFTER_CONFIG:-}"
        pythonpath=$tmp/$side trace=""
        if [ -n "${AB_TRACE:-}" ]; then
            pythonpath+=:$trace_hook trace=$(realpath "$AB_TRACE")/$side-$i.tsv
            rm -f "$trace"
        fi
        load=$(cut -d' ' -f1 /proc/loadavg)
        start=$(date +%s.%N)
        (cd "$tmp/$side" && GENBOOST_PROCESS_TRACE=$trace PYTHONPATH=$pythonpath python -m snakemake --cores 2 \
            --quiet --config "$data" "${extra[@]}" >"$tmp/$side.log" 2>&1)
        wall=$(echo "$(date +%s.%N) - $start" | bc)
        walls[$side]+="$wall "
        printf '%s run %d: %.1f s (load %s -> %s)\n' "$side ($([ $side = before ] && echo "$rev" || echo working tree))" \
            "$i" "$wall" "$load" "$(cut -d' ' -f1 /proc/loadavg)"
    done
done
python - "${walls[before]}" "${walls[after]}" <<'PY'
import statistics, sys
before, after = (statistics.median(map(float, s.split())) for s in sys.argv[1:])
print(f"median: before {before:.1f} s, after {after:.1f} s, after/before {after / before:.3f}")
PY
