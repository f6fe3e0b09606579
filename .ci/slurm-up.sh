#!/usr/bin/env bash
# Bring up a real one-node Slurm cluster (Debian 12, root, no systemd, no cgroups) for testing
# `snakemake --profile slurm`. Idempotent: installs what is missing, rewrites the configs, starts
# only the daemons that are not running (restarts them when the config changed), then waits until
# the node is schedulable. On failure it prints the daemon logs and exits 1.
#
# Tunables (never SLURM_*: sbatch/srun read those):
#   LOCALSLURM_CPUS      CPUs the node advertises (default 4, or nproc if larger). More than nproc
#                        is fine; a job asking for more CPUs than the node has would pend forever.
#   LOCALSLURM_GPUS      fake GPUs on the node (default 1): char-device clones of /dev/null.
#   LOCALSLURM_GPU_TYPE  optional GPU model name (gpu:<type>:N), for rules that use gpu_model.
#   LOCALSLURM_WAIT      seconds to wait for the node (default 60).
set -euo pipefail

[ "$(id -u)" -eq 0 ] || { echo "slurm-up: must run as root" >&2; exit 1; }

NODE=$(hostname -s)
NPROC=$(nproc)
CPUS=${LOCALSLURM_CPUS:-$((NPROC > 4 ? NPROC : 4))}
GPUS=${LOCALSLURM_GPUS:-1}
GPU_TYPE=${LOCALSLURM_GPU_TYPE:-}
WAIT=${LOCALSLURM_WAIT:-60}
CONF_DIR=/etc/slurm
LOG_DIR=/var/log/slurm
STATE_DIR=/var/lib/slurm
FAKE_GPU_DIR=$STATE_DIR/fakegpu
PACKAGES=(munge slurmctld slurmd slurm-client)

log() { echo "slurm-up: $*"; }

show_logs() {
    for f in "$LOG_DIR"/slurmctld.log "$LOG_DIR"/slurmd.log /var/log/munge/munged.log; do
        [ -f "$f" ] && { echo "===== $f (last 60 lines)"; tail -n 60 "$f"; }
    done
    echo "===== sinfo"
    sinfo -N -l 2>&1 || true
}

die() {
    echo "slurm-up: ERROR: $*" >&2
    show_logs >&2
    exit 1
}

alive() { # alive PIDFILE: the process named in PIDFILE is running
    [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

stop_pidfile() { # stop_pidfile PIDFILE: terminate that process and wait up to 10 s for it to go
    alive "$1" || return 0
    local pid
    pid=$(cat "$1")
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
}

install_packages() {
    local missing=()
    command -v munged >/dev/null || missing+=(munge)
    command -v slurmctld >/dev/null || missing+=(slurmctld)
    command -v slurmd >/dev/null || missing+=(slurmd)
    command -v sbatch >/dev/null || missing+=(slurm-client)
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
    log "installing ${PACKAGES[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"; then
        log "install failed; refreshing the package lists and retrying"
        apt-get update -q
        apt-get install -y -q --no-install-recommends "${PACKAGES[@]}"
    fi
}

ensure_hostname_resolves() {
    getent hosts "$NODE" >/dev/null || echo "127.0.0.1 $NODE" >>/etc/hosts
}

# Fake GPUs: gres.conf File= must be a character device; mknod clones of /dev/null (c 1:3) where
# allowed, otherwise existing harmless char devices.
fake_gpu_files() {
    mkdir -p "$FAKE_GPU_DIR"
    local fallback=(/dev/null /dev/zero /dev/full /dev/urandom /dev/random) files=() i dev
    for ((i = 0; i < GPUS; i++)); do
        dev=$FAKE_GPU_DIR/nvidia$i
        if [ -c "$dev" ] || mknod -m 666 "$dev" c 1 3 2>/dev/null; then
            files+=("$dev")
        elif [ "$i" -lt ${#fallback[@]} ]; then
            files+=("${fallback[$i]}")
        else
            die "cannot create fake GPU device $dev (mknod not permitted) and only ${#fallback[@]} fallbacks exist"
        fi
    done
    echo "${files[@]}"
}

CONFIG_CHANGED=no
write_if_changed() { # write_if_changed PATH: stdin -> PATH, atomically; sets CONFIG_CHANGED=yes if it differed
    local tmp
    tmp=$(mktemp "$1.XXXXXX")
    cat >"$tmp"
    if [ -f "$1" ] && cmp -s "$tmp" "$1"; then
        rm -f "$tmp"
        return 0
    fi
    chmod 644 "$tmp"
    mv "$tmp" "$1"
    CONFIG_CHANGED=yes
}

write_configs() {
    local mem_kb real_mem gres overrides="" files file
    mem_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
    real_mem=$((mem_kb * 85 / 100 / 1024)) # above what slurmd detects, the node drains
    gres="gpu:${GPU_TYPE:+$GPU_TYPE:}$GPUS"
    [ "$CPUS" -gt "$NPROC" ] && overrides="SlurmdParameters=config_overrides"$'\n'
    mkdir -p "$CONF_DIR" "$LOG_DIR" "$STATE_DIR/slurmctld" "$STATE_DIR/slurmd"

    # MinJobAge 3600: tests/test_slurm.py reads the accepted jobs' records after the whole run, which can take
    # longer than Slurm's default 300 s on a busy machine (the tests share its cores), and a purged record fails it.
    write_if_changed "$CONF_DIR/slurm.conf" <<EOF
# written by .ci/slurm-up.sh -- single-node CI cluster, no systemd/cgroups
ClusterName=localci
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
ReturnToService=2
MinJobAge=3600
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$STATE_DIR/slurmctld
SlurmdSpoolDir=$STATE_DIR/slurmd
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
${overrides}GresTypes=gpu
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$real_mem Gres=$gres State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF

    files=$(fake_gpu_files)
    {
        echo "# written by .ci/slurm-up.sh -- fake GPU(s): char devices standing in for /dev/nvidiaN"
        echo "AutoDetect=off"
        for file in $files; do
            echo "NodeName=$NODE Name=gpu${GPU_TYPE:+ Type=$GPU_TYPE} File=$file"
        done
    } >"$CONF_DIR/gres.conf.new"
    write_if_changed "$CONF_DIR/gres.conf" <"$CONF_DIR/gres.conf.new"
    rm -f "$CONF_DIR/gres.conf.new"
}

start_munge() {
    alive /run/munge/munged.pid && return 0
    if [ ! -s /etc/munge/munge.key ]; then
        mkdir -p /etc/munge
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    log "starting munged"
    runuser -u munge -- /usr/sbin/munged || die "munged did not start"
}

start_slurm() {
    if [ $CONFIG_CHANGED = yes ] && { alive /run/slurmctld.pid || alive /run/slurmd.pid; }; then
        log "configuration changed: restarting slurmd and slurmctld"
        stop_pidfile /run/slurmd.pid
        stop_pidfile /run/slurmctld.pid
    fi
    if ! alive /run/slurmctld.pid; then
        log "starting slurmctld"
        slurmctld -c || die "slurmctld did not start"
    fi
    if ! alive /run/slurmd.pid; then
        log "starting slurmd"
        slurmd || die "slurmd did not start"
    fi
}

wait_for_node() {
    local state="" resumed=no deadline=$((SECONDS + WAIT))
    while [ $SECONDS -lt $deadline ]; do
        state=$(sinfo -h -n "$NODE" -o %T 2>/dev/null | head -n1 || true)
        case "$state" in
            idle | mixed | allocated | completing)
                log "node $NODE is $state (CPUs=$CPUS, gres=gpu:${GPU_TYPE:+$GPU_TYPE:}$GPUS)"
                return 0
                ;;
            down | drained | draining)
                # e.g. left down by an earlier run; the daemons are up now, so bring it back once
                if [ $resumed = no ]; then
                    scontrol update NodeName="$NODE" State=RESUME 2>/dev/null || true
                    resumed=yes
                fi
                ;;
        esac
        sleep 0.5
    done
    die "node $NODE not schedulable after ${WAIT}s (state: '${state:-unknown}')"
}

install_packages
ensure_hostname_resolves
write_configs
start_munge
start_slurm
wait_for_node
