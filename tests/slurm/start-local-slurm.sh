#!/usr/bin/env bash
# tests/slurm/start-local-slurm.sh - install (if missing), configure and start a
# real single-node Slurm cluster (slurmctld + slurmd [+ munged]) on this machine,
# for xpm's Slurm tests (pytest -m slurm).  .ci/run calls it and then sets
# XPM_REQUIRE_SLURM=1 so that Slurm tests fail instead of skipping.
#
# Idempotent: run it as often as you like; daemons that are already running
# with the same configuration are left alone.  Needs root.  No systemd needed.
# Tested on Debian 12 (bookworm), slurm-wlm 22.05.8, munge 0.5.15.
#
# Environment knobs (all optional):
#   SLURM_LOCAL_AUTH=munge|none   authentication (default munge; "none" uses
#                                 auth/none + cred/none, exists in 22.05 only)
#   SLURM_LOCAL_CPUS=N            CPUs advertised by the node (default: real
#                                 count; more than real => config_overrides,
#                                 lets more 1-CPU jobs run at once)
#   SLURM_LOCAL_PARTITION=name    partition name (default: debug)
#   SLURM_LOCAL_WAIT=seconds      how long to wait for the node (default 60)
#
# A second cluster beside the default one (tests/_slurm_small.py starts one with small
# limits; bench/bench_slurm_sweep.py --own-cluster one with large limits) needs its own
# files, ports and name; clients reach it with SLURM_CONF=<its slurm.conf>:
#   SLURM_LOCAL_CONF=path         slurm.conf to write (default /etc/slurm/slurm.conf)
#   SLURM_LOCAL_RUN_DIR=dir       pid files (default /run/slurm-local)
#   SLURM_LOCAL_STATE_DIR=dir     controller state, slurmd spool (default
#                                 /var/spool/slurm-local)
#   SLURM_LOCAL_LOG_DIR=dir       daemon logs, jobcomp file (default /var/log/slurm-local)
#   SLURM_LOCAL_CTLD_PORT=port    slurmctld port (default 6817)
#   SLURM_LOCAL_SLURMD_PORT=port  slurmd port (default 6818)
#   SLURM_LOCAL_CLUSTER=name      ClusterName (default localci)
#   SLURM_LOCAL_MAX_JOB_COUNT=N   MaxJobCount (default: Slurm's, 10000)
#   SLURM_LOCAL_MIN_JOB_AGE=s     MinJobAge: seconds a finished job stays (default 3600)
#   SLURM_LOCAL_MAX_ARRAY_SIZE=N  MaxArraySize (default 101)
#
# Stop with: tests/slurm/stop-local-slurm.sh, or see the printed hint.
set -euo pipefail

AUTH="${SLURM_LOCAL_AUTH:-munge}"
PARTITION="${SLURM_LOCAL_PARTITION:-debug}"
WAIT_S="${SLURM_LOCAL_WAIT:-60}"

CONF="${SLURM_LOCAL_CONF:-/etc/slurm/slurm.conf}"
RUN_DIR="${SLURM_LOCAL_RUN_DIR:-/run/slurm-local}"
STATE_DIR="${SLURM_LOCAL_STATE_DIR:-/var/spool/slurm-local}"
LOG_DIR="${SLURM_LOCAL_LOG_DIR:-/var/log/slurm-local}"
CTLD_PORT="${SLURM_LOCAL_CTLD_PORT:-6817}"
SLURMD_PORT="${SLURM_LOCAL_SLURMD_PORT:-6818}"
CLUSTER="${SLURM_LOCAL_CLUSTER:-localci}"
MIN_JOB_AGE="${SLURM_LOCAL_MIN_JOB_AGE:-3600}"
MAX_ARRAY_SIZE="${SLURM_LOCAL_MAX_ARRAY_SIZE:-101}"
ARRAY_LINES="MaxArraySize=$MAX_ARRAY_SIZE"
# MaxJobCount is written only when asked: without the knobs, slurm.conf stays byte for byte
# what it was (a changed file restarts the daemons of a running cluster).
if [ -n "${SLURM_LOCAL_MAX_JOB_COUNT:-}" ]; then
  ARRAY_LINES+=$'\n'"MaxJobCount=$SLURM_LOCAL_MAX_JOB_COUNT"
fi
# The daemons and every client command below read this cluster's file.
export SLURM_CONF="$CONF"
CTLD_PID="$RUN_DIR/slurmctld.pid"
SLURMD_PID="$RUN_DIR/slurmd.pid"
OUR_MUNGED_PID="$RUN_DIR/munged.pid"   # exists only if WE started munged
MUNGE_PID=/run/munge/munged.pid
MARKER="# managed by start-local-slurm.sh"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

log() { printf '[start-local-slurm] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root"
case "$AUTH" in munge|none) ;; *) die "SLURM_LOCAL_AUTH must be munge or none";; esac

# pid_alive PIDFILE COMM -> 0 if the pid in PIDFILE is a live (non-zombie)
# process whose comm is COMM.  PID 1 here may reap orphans late, so a killed
# daemon can linger as a zombie; treat that as dead.
pid_alive() {
  local pid
  pid="$(cat "$1" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ -r "/proc/$pid/status" ] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] || return 1
  [ "$(awk '/^State:/{print $2}' "/proc/$pid/status")" != Z ]
}

# stop_pid PIDFILE COMM: SIGTERM the process by pid, wait, SIGKILL if needed.
stop_pid() {
  local pid i
  pid_alive "$1" "$2" || { rm -f "$1"; return 0; }
  pid="$(cat "$1")"
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 100); do pid_alive "$1" "$2" || break; sleep 0.1; done
  if pid_alive "$1" "$2"; then kill -KILL "$pid" 2>/dev/null || true; sleep 0.2; fi
  rm -f "$1"
}

# ---------------------------------------------------------------- install
need_pkgs=()
command -v slurmctld >/dev/null || need_pkgs+=(slurmctld)
command -v slurmd    >/dev/null || need_pkgs+=(slurmd)
command -v sbatch    >/dev/null || need_pkgs+=(slurm-client)
if [ "$AUTH" = munge ]; then
  command -v munged >/dev/null || need_pkgs+=(munge)
fi
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  log "installing: ${need_pkgs[*]}"
  t0=$SECONDS
  # Keep dpkg from starting daemons through init scripts (no systemd here);
  # only add a policy-rc.d if there is none, and remove only ours.
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  rc=0
  # Try with the current package lists first (.ci/run has just refreshed them);
  # refresh and retry when they are missing or stale.
  apt_install() { apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" >/dev/null 2>&1; }
  apt_install || { apt-get update -q >/dev/null && apt_install; } || rc=$?
  [ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
  [ "$rc" = 0 ] || die "apt-get failed (rc=$rc)"
  log "installed in $((SECONDS - t0))s: $(slurmctld -V)"
fi

# ---------------------------------------------------------------- config
NODE="$(hostname -s)"
[ -n "$NODE" ] || NODE=localhost
hw="$(slurmd -C | head -1)"
hwval() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$hw"; }
HW_CPUS="$(hwval CPUs)"
HW_MEM="$(hwval RealMemory)"
CPUS="${SLURM_LOCAL_CPUS:-$HW_CPUS}"
MEM=$(( HW_MEM * 9 / 10 ))
if [ "$CPUS" -le "$HW_CPUS" ] && [ -z "${SLURM_LOCAL_CPUS:-}" ]; then
  NODE_HW="CPUs=$HW_CPUS Boards=$(hwval Boards) SocketsPerBoard=$(hwval SocketsPerBoard) CoresPerSocket=$(hwval CoresPerSocket) ThreadsPerCore=$(hwval ThreadsPerCore)"
  OVERRIDES=""
else
  # advertised layout differs from hardware: let slurm.conf win
  NODE_HW="CPUs=$CPUS Boards=1 SocketsPerBoard=1 CoresPerSocket=$CPUS ThreadsPerCore=1"
  OVERRIDES="SlurmdParameters=config_overrides"
fi
if [ "$AUTH" = munge ]; then
  AUTH_LINES=$'AuthType=auth/munge\nCredType=cred/munge'
else
  AUTH_LINES=$'AuthType=auth/none\nCredType=cred/none'
fi

mkdir -p "$RUN_DIR" "$STATE_DIR/ctld" "$STATE_DIR/d" "$LOG_DIR" "$(dirname "$CONF")"
new_conf="$(mktemp)"
cat > "$new_conf" <<EOF
$MARKER
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
$AUTH_LINES
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
StateSaveLocation=$STATE_DIR/ctld
SlurmdSpoolDir=$STATE_DIR/d
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
# no cgroups: plain process tracking, no task binding, no accounting daemon
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# finished jobs: 'sacct -c' reads this file; scontrol/squeue -t all keep them MinJobAge s
JobCompType=jobcomp/filetxt
JobCompLoc=$LOG_DIR/jobcomp.log
MinJobAge=$MIN_JOB_AGE
# small job arrays so xpm's array splitting (to MaxArraySize, read from
# 'scontrol show config') is tested with ~100 jobs instead of 1001 (issue 18)
$ARRAY_LINES
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=256
# reject impossible requests at submit time instead of PENDING forever
EnforcePartLimits=ALL
# cancel jobs whose dependency can never be satisfied
DependencyParameters=kill_invalid_depend
# start batch jobs at once (default delay 3s), backfill every second
SchedulerParameters=batch_sched_delay=0,bf_interval=1
KillWait=5
MailProg=/bin/true
ReturnToService=2
MpiDefault=none
SwitchType=switch/none
$OVERRIDES
NodeName=$NODE NodeAddr=127.0.0.1 $NODE_HW RealMemory=$MEM State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
config_changed=0
if ! cmp -s "$new_conf" "$CONF"; then
  if [ -e "$CONF" ] && ! grep -qF "$MARKER" "$CONF"; then
    cp -p "$CONF" "$CONF.orig.$(date +%s)"
    log "backed up foreign $CONF"
  fi
  install -m 644 "$new_conf" "$CONF"
  config_changed=1
fi
rm -f "$new_conf"

# ---------------------------------------------------------------- munge
if [ "$AUTH" = munge ]; then
  if [ ! -s /etc/munge/munge.key ]; then
    log "creating munge key"
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown munge:munge /etc/munge /etc/munge/munge.key
  chmod 700 /etc/munge; chmod 400 /etc/munge/munge.key
  mkdir -p -m 755 /run/munge /var/lib/munge /var/log/munge
  chown munge:munge /run/munge /var/lib/munge /var/log/munge
  if ! pid_alive "$MUNGE_PID" munged; then
    rm -f "$OUR_MUNGED_PID"
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do pid_alive "$MUNGE_PID" munged && break; sleep 0.1; done
    pid_alive "$MUNGE_PID" munged || die "munged did not start (see /var/log/munge/munged.log)"
    cp "$MUNGE_PID" "$OUR_MUNGED_PID"
    log "started munged pid $(cat "$MUNGE_PID")"
  fi
  munge -n | unmunge >/dev/null || die "munge self-test failed"
fi

# ---------------------------------------------------------------- daemons
if [ "$config_changed" = 1 ] && { pid_alive "$CTLD_PID" slurmctld || pid_alive "$SLURMD_PID" slurmd; }; then
  log "configuration changed: restarting daemons"
  stop_pid "$SLURMD_PID" slurmd
  stop_pid "$CTLD_PID" slurmctld
fi

if ! pid_alive "$CTLD_PID" slurmctld; then
  slurmctld -f "$CONF"   # daemonizes, writes $CTLD_PID
  for _ in $(seq 50); do pid_alive "$CTLD_PID" slurmctld && break; sleep 0.1; done
  log "started slurmctld pid $(cat "$CTLD_PID" 2>/dev/null || echo '?')"
fi
for _ in $(seq $((WAIT_S * 10))); do
  scontrol ping 2>/dev/null | grep -q 'is UP' && break; sleep 0.1
done
scontrol ping 2>/dev/null | grep -q 'is UP' || die "slurmctld not responding; see $LOG_DIR/slurmctld.log"

if ! pid_alive "$SLURMD_PID" slurmd; then
  slurmd -f "$CONF" -N "$NODE"   # daemonizes, writes $SLURMD_PID
  for _ in $(seq 50); do pid_alive "$SLURMD_PID" slurmd && break; sleep 0.1; done
  pid_alive "$SLURMD_PID" slurmd || die "slurmd did not start; see $LOG_DIR/slurmd.log"
  log "started slurmd pid $(cat "$SLURMD_PID")"
fi

# ---------------------------------------------------------------- wait idle
state=""
for i in $(seq $((WAIT_S * 10))); do
  state="$(sinfo -h -n "$NODE" -o '%T' 2>/dev/null | head -1)"
  case "$state" in
    idle|mixed|allocated|completing) break;;
    down*|drain*|fail*)
      # left over from an earlier run: bring it back
      [ $((i % 20)) = 1 ] && scontrol update NodeName="$NODE" State=RESUME 2>/dev/null || true;;
  esac
  sleep 0.1
done
case "$state" in
  idle|mixed|allocated|completing) ;;
  *) die "node $NODE is '$state', not idle; see $LOG_DIR/slurmd.log";;
esac

cat <<EOF
Slurm $(sinfo -V | awk '{print $2}') is up: node $NODE ($CPUS CPUs, ${MEM}M), partition $PARTITION, auth $AUTH.
  pids: slurmctld $(cat "$CTLD_PID")  slurmd $(cat "$SLURMD_PID")$( [ -e "$OUR_MUNGED_PID" ] && echo "  munged $(cat "$OUR_MUNGED_PID")")
  logs: $LOG_DIR/   finished jobs: sacct -c  (file $LOG_DIR/jobcomp.log)
  stop: $HERE/stop-local-slurm.sh        (add --purge to drop state, logs and config;
        with the same SLURM_LOCAL_* variables for a second cluster)
        or by hand: kill \$(cat $SLURMD_PID) \$(cat $CTLD_PID)$( [ -e "$OUR_MUNGED_PID" ] && echo " \$(cat $OUR_MUNGED_PID)")
  clients: SLURM_CONF=$CONF
EOF
