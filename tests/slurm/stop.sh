#!/usr/bin/env bash
# Stop the cluster started by tests/slurm/start.sh: cancels its jobs, then ends exactly the
# daemons named by STATE_DIR/pids/*.pid (slurmd, slurmctld, slurmdbd, mariadbd, munged, in that
# order), waiting for each to exit. Nothing else is signalled. State (databases, logs, config) stays
# in STATE_DIR, so a later start.sh reuses it; delete STATE_DIR for a fresh cluster.
#
#   tests/slurm/stop.sh [STATE_DIR]      (default: $SNAKETUNE_SLURM_DIR or /tmp/snaketune-slurm)
set -uo pipefail

STATE_DIR=${1:-${SNAKETUNE_SLURM_DIR:-/tmp/snaketune-slurm}}
[ -d "$STATE_DIR" ] || { echo "[slurm-stop] no state dir $STATE_DIR: nothing to stop" >&2; exit 0; }
STATE_DIR=$(cd "$STATE_DIR" && pwd -P)
PIDS=$STATE_DIR/pids
SYS_CONF=/etc/slurm/slurm.conf
WAIT=${SNAKETUNE_SLURM_STOP_WAIT:-30}
export PATH="$PATH:/usr/sbin:/sbin" SLURM_CONF=$STATE_DIR/etc/slurm.conf

# running: the process exists and is not a zombie waiting for a (possibly slow) init to reap it
running() { [ -d "/proc/$1" ] && ! grep -q '^[0-9]* (.*) Z' "/proc/$1/stat" 2>/dev/null; }
log() { printf '[slurm-stop %s] %s\n' "$(date +%T)" "$*" >&2; }
pid_of() {  # pid_of NAME : prints the pid if PIDS/NAME.pid names a running process called NAME
    local f=$PIDS/$1.pid pid
    [ -s "$f" ] || return 1
    pid=$(cat "$f")
    running "$pid" && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ] && echo "$pid"
}

# Cancel this cluster's jobs first so that no slurmstepd / job processes outlive slurmd.
if pid_of slurmctld >/dev/null && [ -f "$SLURM_CONF" ]; then
    jobs=$(timeout 10 squeue -h -o %i 2>/dev/null | tr '\n' ' ')
    if [ -n "${jobs// /}" ]; then
        log "cancelling jobs: $jobs"
        # shellcheck disable=SC2086
        timeout 10 scancel $jobs 2>/dev/null
        for _ in $(seq 1 $((WAIT * 2))); do
            [ -z "$(timeout 5 squeue -h -o %i 2>/dev/null)" ] && break
            sleep 0.5
        done
    fi
fi

rc=0
for name in slurmd slurmctld slurmdbd mariadbd munged; do
    if ! pid=$(pid_of "$name"); then
        rm -f "$PIDS/$name.pid"
        continue
    fi
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 $((WAIT * 5))); do
        running "$pid" || break
        sleep 0.2
    done
    if running "$pid"; then
        log "$name (pid $pid) still running after ${WAIT}s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null
        sleep 0.5
        running "$pid" && { log "could not end $name (pid $pid)"; rc=1; continue; }
    fi
    rm -f "$PIDS/$name.pid"
done

# proctrack/cgroup (STATE_DIR/tracking) leaves slurmd's empty cgroup folders behind: remove
# them (rmdir removes only empty ones; one with a process in it stays).
if grep -q '^proctrack/cgroup' "$STATE_DIR/tracking" 2>/dev/null && ! pid_of slurmd >/dev/null; then
    for top in /sys/fs/cgroup/*/slurm_localhost; do
        [ -d "$top" ] && find "$top" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
fi

# Put back a slurm.conf that start.sh moved aside; drop our symlink.
if [ "$(readlink "$SYS_CONF" 2>/dev/null)" = "$STATE_DIR/etc/slurm.conf" ]; then
    rm -f "$SYS_CONF"
    [ -e "$SYS_CONF.pre-snaketune" ] && mv "$SYS_CONF.pre-snaketune" "$SYS_CONF"
fi

left=$(pgrep -x slurmstepd 2>/dev/null | tr '\n' ' ')
[ -n "$left" ] && log "note: slurmstepd processes still running (pids $left)"
[ $rc = 0 ] && log "stopped (state kept in $STATE_DIR)"
exit $rc
