#!/usr/bin/env bash
# Start a single-node Slurm cluster (munged, mariadbd, slurmdbd, slurmctld, slurmd) on
# localhost for end-to-end tests. Needs root. See tests/slurm/README.md.
#
#   tests/slurm/start.sh [STATE_DIR]     (default: $SNAKETUNE_SLURM_DIR or /tmp/snaketune-slurm)
#
# Everything (configs, logs, databases, spool, pid files) lives in STATE_DIR. The only file written
# outside it is the symlink /etc/slurm/slurm.conf -> STATE_DIR/etc/slurm.conf, so that client
# commands (sbatch, squeue, sacct, the Snakemake slurm executor) find the cluster without
# SLURM_CONF in their environment. An existing /etc/slurm/slurm.conf that is not such a symlink is
# moved to /etc/slurm/slurm.conf.pre-snaketune (stop.sh puts it back).
set -euo pipefail

STATE_DIR=${1:-${SNAKETUNE_SLURM_DIR:-/tmp/snaketune-slurm}}
mkdir -p "$STATE_DIR"
STATE_DIR=$(cd "$STATE_DIR" && pwd -P)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
TIMEOUT=${SNAKETUNE_SLURM_TIMEOUT:-60}          # seconds to wait for each daemon
PORT_BASE=${SNAKETUNE_SLURM_PORT_BASE:-6817}    # slurmctld, slurmd, slurmdbd = base, +1, +2
CLUSTER=${SNAKETUNE_SLURM_CLUSTER:-snaketune}
PARTITION=debug
# Process tracking: cgroup (proctrack/cgroup + task/cgroup, jobs' processes in their own cgroups,
# confined to their CPUs and memory), linuxproc (proctrack/linuxproc + task/affinity, no cgroups
# needed), or auto: cgroup where the cgroup v1 controllers Slurm 22.05 needs are mounted and
# writable here, linuxproc otherwise. What was used is written to STATE_DIR/tracking.
TRACKING=${SNAKETUNE_SLURM_TRACKING:-auto}
# 1: each job gets a private /tmp and /dev/shm (job_container/tmpfs), as on clusters whose nodes
# do: a file the login shell has in /tmp is not there for the job. STATE_DIR must not be in /tmp.
PRIVATE_TMP=${SNAKETUNE_SLURM_PRIVATE_TMP:-0}
export PATH="$PATH:/usr/sbin:/sbin"

ETC=$STATE_DIR/etc PIDS=$STATE_DIR/pids LOG=$STATE_DIR/log
MUNGE_DIR=$STATE_DIR/munge DB_DIR=$STATE_DIR/mysql
MUNGE_SOCKET=$MUNGE_DIR/munge.socket.2 DB_SOCKET=$DB_DIR/mysqld.sock
SLURM_CONF_FILE=$ETC/slurm.conf
SYS_CONF=/etc/slurm/slurm.conf

log() { printf '[slurm-start %s] %s\n' "$(date +%T)" "$*" >&2; }
die() {  # die MESSAGE [LOGFILE...]
    local msg=$1; shift
    printf '[slurm-start] ERROR: %s\n' "$msg" >&2
    for f in "$@"; do
        [ -f "$f" ] && { printf -- '--- last lines of %s ---\n' "$f" >&2; tail -n 30 "$f" >&2; }
    done
    printf '[slurm-start] state dir: %s; stop what was started with: %s/stop.sh %s\n' \
        "$STATE_DIR" "$HERE" "$STATE_DIR" >&2
    exit 1
}
wait_for() {  # wait_for WHAT CMD... : retry CMD until it succeeds or TIMEOUT passes
    local what=$1; shift
    local deadline=$((SECONDS + TIMEOUT))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.5
    done
    log "$what is up"
}
alive() {  # alive NAME : pid file PIDS/NAME.pid names a running process called NAME
    local f=$PIDS/$1.pid pid
    [ -s "$f" ] || return 1
    pid=$(cat "$f")
    [ -d "/proc/$pid" ] && ! grep -q '^[0-9]* (.*) Z' "/proc/$pid/stat" 2>/dev/null &&
        [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ]
}
record_pid() {  # record_pid NAME PIDFILE_WRITTEN_BY_DAEMON
    local deadline=$((SECONDS + TIMEOUT))
    until [ -s "$2" ]; do
        ((SECONDS < deadline)) || die "$1 wrote no pid file $2" "$LOG/$1.log"
        sleep 0.2
    done
    cp "$2" "$PIDS/$1.pid"
    alive "$1" || die "$1 (pid $(cat "$2")) is not running" "$LOG/$1.log"
}

[ "$(id -u)" = 0 ] || die "must run as root (daemons run as root/munge/mysql, writes $SYS_CONF)"
case $TRACKING in auto|cgroup|linuxproc) ;; *) die "SNAKETUNE_SLURM_TRACKING=$TRACKING: auto, cgroup or linuxproc" ;; esac
if [ "$PRIVATE_TMP" = 1 ]; then
    case $STATE_DIR/ in /tmp/*|/dev/shm/*)
        die "SNAKETUNE_SLURM_PRIVATE_TMP=1 needs STATE_DIR outside /tmp and /dev/shm (jobs do not see those)" ;;
    esac
fi

# ---------------------------------------------------------------- packages
have_all() {
    local c
    for c in slurmctld slurmd slurmdbd munged mungekey mariadbd mariadb-install-db mariadb \
             sbatch sacct sacctmgr; do
        command -v "$c" >/dev/null 2>&1 || return 1
    done
}
if ! have_all; then
    log "installing slurm-wlm munge slurmdbd mariadb-server (apt)"
    # Keep the packages' init scripts from starting system-wide daemons during the install.
    policy_added=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
        policy_added=1
    fi
    {
        DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            slurm-wlm munge slurmdbd mariadb-server mariadb-client
    } >"$STATE_DIR/apt.log" 2>&1 || { [ -n "$policy_added" ] && rm -f /usr/sbin/policy-rc.d
                                      die "apt-get failed" "$STATE_DIR/apt.log"; }
    [ -n "$policy_added" ] && rm -f /usr/sbin/policy-rc.d
    have_all || die "packages installed but commands still missing" "$STATE_DIR/apt.log"
fi

# ---------------------------------------------------------------- already running?
export SLURM_CONF=$SLURM_CONF_FILE
running=()
for d in munged mariadbd slurmdbd slurmctld slurmd; do alive "$d" && running+=("$d"); done
if [ ${#running[@]} = 5 ] && [ "$(readlink "$SYS_CONF" 2>/dev/null)" = "$SLURM_CONF_FILE" ] &&
   timeout 10 sinfo -h -N -n localhost -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
    log "cluster in $STATE_DIR is already running; reusing it"
    exit 0
fi
if [ ${#running[@]} -gt 0 ]; then
    log "stopping leftovers of a previous start: ${running[*]}"
    "$HERE/stop.sh" "$STATE_DIR"
fi

# ---------------------------------------------------------------- directories
mkdir -p "$ETC" "$PIDS" "$LOG" "$STATE_DIR/state" "$STATE_DIR/spool/slurmd" "$STATE_DIR/run"
chmod 755 "$STATE_DIR" "$ETC" "$PIDS" "$LOG"
rm -f "$PIDS"/*.pid "$STATE_DIR"/run/*.pid
for f in "$LOG"/*.log; do [ -f "$f" ] && mv -f "$f" "$f.1"; done   # logs of the previous start

# ---------------------------------------------------------------- munged
# Own key, socket, pid, seed and log under STATE_DIR/munge; runs as the munge user.
mkdir -p "$MUNGE_DIR"
if [ ! -s "$MUNGE_DIR/munge.key" ]; then
    mungekey --create --keyfile="$MUNGE_DIR/munge.key" >/dev/null 2>&1 ||
        dd if=/dev/urandom of="$MUNGE_DIR/munge.key" bs=1024 count=1 status=none
fi
chown -R munge:munge "$MUNGE_DIR"
chmod 755 "$MUNGE_DIR"   # munged wants the socket dir executable by all
chmod 600 "$MUNGE_DIR/munge.key"
rm -f "$MUNGE_DIR/munged.pid" "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
: >"$LOG/munged.log"; chown munge:munge "$LOG/munged.log"
log "starting munged"
runuser -u munge -- munged --socket="$MUNGE_SOCKET" --key-file="$MUNGE_DIR/munge.key" \
    --pid-file="$MUNGE_DIR/munged.pid" --seed-file="$MUNGE_DIR/munged.seed" \
    --log-file="$LOG/munged.log" >>"$LOG/munged.log" 2>&1 ||
    die "munged failed to start" "$LOG/munged.log"
record_pid munged "$MUNGE_DIR/munged.pid"
wait_for munged sh -c "munge -n -S '$MUNGE_SOCKET' | unmunge -S '$MUNGE_SOCKET'" ||
    die "munge does not answer on $MUNGE_SOCKET" "$LOG/munged.log"

# ---------------------------------------------------------------- mariadbd
# --no-defaults: ignore /etc/mysql; unix socket only (--skip-networking).
mkdir -p "$DB_DIR"
chown mysql:mysql "$DB_DIR"; chmod 755 "$DB_DIR"
: >"$LOG/mariadbd.log"; chown mysql:mysql "$LOG/mariadbd.log"
if [ ! -d "$DB_DIR/data/mysql" ]; then
    log "initialising the database in $DB_DIR/data"
    mariadb-install-db --no-defaults --user=mysql --datadir="$DB_DIR/data" \
        --auth-root-authentication-method=socket --skip-test-db >"$LOG/mariadb-install-db.log" 2>&1 ||
        die "mariadb-install-db failed" "$LOG/mariadb-install-db.log"
fi
rm -f "$DB_SOCKET" "$DB_DIR/mariadbd.pid"
log "starting mariadbd"
setsid mariadbd --no-defaults --user=mysql --datadir="$DB_DIR/data" --socket="$DB_SOCKET" \
    --pid-file="$DB_DIR/mariadbd.pid" --skip-networking --log-error="$LOG/mariadbd.log" \
    --innodb-buffer-pool-size=128M --innodb-lock-wait-timeout=900 \
    </dev/null >>"$LOG/mariadbd.log" 2>&1 &
record_pid mariadbd "$DB_DIR/mariadbd.pid"
# shellcheck disable=SC2120  # (arguments come through wait_for)
sql() { mariadb --no-defaults --socket="$DB_SOCKET" -uroot "$@"; }
wait_for mariadbd sql -e 'SELECT 1' || die "mariadbd does not answer on $DB_SOCKET" "$LOG/mariadbd.log"

DB_PASS_FILE=$ETC/dbpass
[ -s "$DB_PASS_FILE" ] || (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$DB_PASS_FILE")
DB_PASS=$(cat "$DB_PASS_FILE")
# CREATE USER IF NOT EXISTS keeps an old password, hence the ALTER USER.
# shellcheck disable=SC2119
sql <<SQL || die "could not create the accounting database/user" "$LOG/mariadbd.log"
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL PRIVILEGES ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
SQL

# ---------------------------------------------------------------- configuration
HW=$(slurmd -C | head -n 1 | sed -e 's/^NodeName=[^ ]* *//')
[[ $HW == *CPUs=* && $HW == *RealMemory=* ]] || die "unexpected 'slurmd -C' output: $HW"

# cgroup v1 (Slurm 22.05's cgroup/v1 plugin; its cgroup/v2 one needs a delegated unified
# hierarchy, which a machine without systemd does not set up): the controllers proctrack/cgroup,
# task/cgroup and jobacct_gather/cgroup use, each mounted under /sys/fs/cgroup and writable.
cgroup_v1_usable() {
    local c probe
    for c in freezer cpuset memory devices cpuacct; do
        [ "$(stat -f -c %T "/sys/fs/cgroup/$c" 2>/dev/null)" = cgroupfs ] || return 1
        probe=/sys/fs/cgroup/$c/snaketune-probe-$$
        mkdir "$probe" 2>/dev/null || return 1
        rmdir "$probe"
    done
}
if [ "$TRACKING" = auto ]; then
    if cgroup_v1_usable; then TRACKING=cgroup; else TRACKING=linuxproc; fi
fi
if [ "$TRACKING" = cgroup ]; then
    cgroup_v1_usable || die "SNAKETUNE_SLURM_TRACKING=cgroup, but the cgroup v1 controllers (freezer cpuset memory devices cpuacct) are not mounted and writable under /sys/fs/cgroup"
    PROCTRACK=proctrack/cgroup TASK=task/cgroup,task/affinity ACCT_GATHER=jobacct_gather/cgroup
    cat >"$ETC/cgroup.conf" <<EOF
# generated by tests/slurm/start.sh
CgroupPlugin=cgroup/v1
CgroupMountpoint=/sys/fs/cgroup
ConstrainCores=yes
ConstrainRAMSpace=yes
EOF
else
    PROCTRACK=proctrack/linuxproc TASK=task/affinity ACCT_GATHER=jobacct_gather/linux
    rm -f "$ETC/cgroup.conf"
fi
if [ "$PRIVATE_TMP" = 1 ]; then
    mkdir -p "$STATE_DIR/jobtmp"; chmod 700 "$STATE_DIR/jobtmp"
    JOB_CONTAINER="JobContainerType=job_container/tmpfs
PrologFlags=Contain"
    cat >"$ETC/job_container.conf" <<EOF
# generated by tests/slurm/start.sh
AutoBasePath=true
BasePath=$STATE_DIR/jobtmp
EOF
else
    JOB_CONTAINER="JobContainerType=job_container/none"
    rm -f "$ETC/job_container.conf"
fi
printf '%s %s%s\n' "$PROCTRACK" "$TASK" "$([ "$PRIVATE_TMP" = 1 ] && echo ' job_container/tmpfs')" >"$STATE_DIR/tracking"

cat >"$ETC/slurmdbd.conf" <<EOF
# generated by tests/slurm/start.sh
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$((PORT_BASE + 2))
SlurmUser=root
LogFile=$LOG/slurmdbd.log
PidFile=$STATE_DIR/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
EOF
chown root:root "$ETC/slurmdbd.conf"; chmod 600 "$ETC/slurmdbd.conf"

cat >"$SLURM_CONF_FILE" <<EOF
# generated by tests/slurm/start.sh (snaketune); state in $STATE_DIR
ClusterName=$CLUSTER
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$PORT_BASE
SlurmdPort=$((PORT_BASE + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
CredType=cred/munge
MpiDefault=none
ProctrackType=$PROCTRACK
TaskPlugin=$TASK
$JOB_CONTAINER
ReturnToService=2
StateSaveLocation=$STATE_DIR/state
SlurmdSpoolDir=$STATE_DIR/spool/slurmd
SlurmctldPidFile=$STATE_DIR/run/slurmctld.pid
SlurmdPidFile=$STATE_DIR/run/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=5
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=500
MailProg=/bin/true
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$((PORT_BASE + 2))
# connections to slurmdbd take their munge socket from here, not from AuthInfo
AccountingStoragePass=$MUNGE_SOCKET
JobAcctGatherType=$ACCT_GATHER
JobAcctGatherFrequency=30
JobCompType=jobcomp/none
MinJobAge=300
KillWait=5
InactiveLimit=0
NodeName=localhost NodeAddr=127.0.0.1 NodeHostname=localhost $HW State=UNKNOWN
PartitionName=$PARTITION Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
chmod 644 "$SLURM_CONF_FILE"

mkdir -p /etc/slurm
if [ -e "$SYS_CONF" ] && [ ! -L "$SYS_CONF" ] && [ ! -e "$SYS_CONF.pre-snaketune" ]; then
    log "moving the existing $SYS_CONF to $SYS_CONF.pre-snaketune"
    mv "$SYS_CONF" "$SYS_CONF.pre-snaketune"
fi
ln -sfn "$SLURM_CONF_FILE" "$SYS_CONF"

# ---------------------------------------------------------------- slurmdbd
log "starting slurmdbd"
# slurmdbd has no socket option: libmariadb takes the socket for StorageHost=localhost from
# MYSQL_UNIX_PORT (default /run/mysqld/mysqld.sock).
MYSQL_UNIX_PORT=$DB_SOCKET slurmdbd >>"$LOG/slurmdbd.log" 2>&1 || die "slurmdbd failed to start" "$LOG/slurmdbd.log"
record_pid slurmdbd "$STATE_DIR/run/slurmdbd.pid"
# slurmctld dies ("we have no TRES from it") if slurmdbd does not answer yet.
wait_for slurmdbd timeout 5 sacctmgr -n list cluster ||
    die "slurmdbd does not answer" "$LOG/slurmdbd.log" "$LOG/mariadbd.log"

# ---------------------------------------------------------------- slurmctld + slurmd
log "starting slurmctld"
slurmctld -i >>"$LOG/slurmctld.log" 2>&1 || die "slurmctld failed to start" "$LOG/slurmctld.log"
record_pid slurmctld "$STATE_DIR/run/slurmctld.pid"
wait_for slurmctld timeout 5 scontrol ping || die "slurmctld does not answer" "$LOG/slurmctld.log"

log "starting slurmd"
slurmd -N localhost >>"$LOG/slurmd.log" 2>&1 || die "slurmd failed to start" "$LOG/slurmd.log"
record_pid slurmd "$STATE_DIR/run/slurmd.pid"

node_ready() {
    # an unclean restart can leave the node down/drained: resume it
    local st
    st=$(timeout 5 sinfo -h -N -n localhost -o %t) || return 1
    case $st in
        idle|mix|alloc) return 0 ;;
        drain*|down*) timeout 5 scontrol update nodename=localhost state=resume >/dev/null 2>&1; return 1 ;;
        *) return 1 ;;
    esac
}
wait_for "node localhost (idle)" node_ready ||
    die "node localhost not idle: $(sinfo -N -o '%N %t %E' 2>&1 | tail -n 1)" \
        "$LOG/slurmd.log" "$LOG/slurmctld.log"
wait_for sacct timeout 5 sacct -n -X -S now ||
    die "sacct does not answer" "$LOG/slurmdbd.log" "$LOG/slurmctld.log"
timeout 10 sacctmgr -n list cluster format=cluster%30 | grep -qw "$CLUSTER" ||
    log "warning: cluster $CLUSTER not (yet) listed by sacctmgr"

log "cluster '$CLUSTER' ready: partition $PARTITION, node localhost ($HW); $(cat "$STATE_DIR/tracking")"
log "config $SLURM_CONF_FILE (linked from $SYS_CONF), logs $LOG, stop with $HERE/stop.sh $STATE_DIR"
