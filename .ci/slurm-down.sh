#!/usr/bin/env bash
# Stop the one-node Slurm cluster started by .ci/slurm-up.sh: cancel every job, then stop slurmd,
# slurmctld and munged by their PID files (no systemd here). Safe to run when nothing is up.
set -uo pipefail

[ "$(id -u)" -eq 0 ] || { echo "slurm-down: must run as root" >&2; exit 1; }

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

stop_pidfile() { # stop_pidfile PIDFILE NAME: terminate that process and wait up to 10 s for it to go
    alive "$1" || return 0
    local pid
    pid=$(cat "$1")
    echo "slurm-down: stopping $2 (pid $pid)"
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
    echo "slurm-down: $2 still running after 10 s, killing it" >&2
    kill -9 "$pid" 2>/dev/null || true
}

if alive /run/slurmctld.pid && command -v squeue >/dev/null; then
    jobs=$(squeue -h -o %i 2>/dev/null || true)
    if [ -n "$jobs" ]; then
        echo "slurm-down: cancelling jobs $(echo "$jobs" | tr '\n' ' ')"
        # shellcheck disable=SC2086 # one argument per job id
        scancel $jobs || true
        for _ in $(seq 20); do [ -z "$(squeue -h -t R,CG -o %i 2>/dev/null)" ] && break; sleep 0.5; done
    fi
fi

stop_pidfile /run/slurmd.pid slurmd
stop_pidfile /run/slurmctld.pid slurmctld
stop_pidfile /run/munge/munged.pid munged
