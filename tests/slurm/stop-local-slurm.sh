#!/usr/bin/env bash
# tests/slurm/stop-local-slurm.sh - stop the cluster started by start-local-slurm.sh.
# Idempotent: stopping a cluster that is not running does nothing.
# Kills only the daemons it started, by PID from their pid files (never by
# name).  munged is stopped only if start-local-slurm.sh started it.
#   --purge   also delete state (job ids restart at 1), logs, jobcomp file
#             and the generated slurm.conf
# SLURM_LOCAL_CONF, SLURM_LOCAL_RUN_DIR, SLURM_LOCAL_STATE_DIR and SLURM_LOCAL_LOG_DIR
# name a second cluster's files, as for start-local-slurm.sh.
set -uo pipefail

# The same SLURM_LOCAL_* variables as start-local-slurm.sh stop a second cluster.
RUN_DIR="${SLURM_LOCAL_RUN_DIR:-/run/slurm-local}"
STATE_DIR="${SLURM_LOCAL_STATE_DIR:-/var/spool/slurm-local}"
LOG_DIR="${SLURM_LOCAL_LOG_DIR:-/var/log/slurm-local}"
CONF="${SLURM_LOCAL_CONF:-/etc/slurm/slurm.conf}"
# squeue and scancel below must reach this cluster's controller, not another one.
export SLURM_CONF="$CONF"
MARKER="# managed by start-local-slurm.sh"
CTLD_PID="$RUN_DIR/slurmctld.pid"
SLURMD_PID="$RUN_DIR/slurmd.pid"
OUR_MUNGED_PID="$RUN_DIR/munged.pid"

log() { printf '[stop-local-slurm] %s\n' "$*" >&2; }

pid_alive() {
  local pid
  pid="$(cat "$1" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ -r "/proc/$pid/status" ] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] || return 1
  [ "$(awk '/^State:/{print $2}' "/proc/$pid/status")" != Z ]
}

stop_pid() {
  local pid i
  if ! pid_alive "$1" "$2"; then rm -f "$1"; return 0; fi
  pid="$(cat "$1")"
  log "stopping $2 pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 100); do pid_alive "$1" "$2" || break; sleep 0.1; done
  if pid_alive "$1" "$2"; then
    log "$2 pid $pid ignored SIGTERM for 10s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true; sleep 0.2
  fi
  rm -f "$1"
}

# 1. cancel remaining jobs so their slurmstepd/job processes end with them
if pid_alive "$CTLD_PID" slurmctld && command -v squeue >/dev/null; then
  jobs="$(squeue -h -o %A 2>/dev/null | sort -u)"
  if [ -n "$jobs" ]; then
    log "cancelling jobs: $(echo $jobs)"
    # shellcheck disable=SC2086
    scancel $jobs 2>/dev/null || true
    for _ in $(seq 150); do [ -z "$(squeue -h -o %A 2>/dev/null)" ] && break; sleep 0.1; done
  fi
fi

# 2. daemons, by pid
stop_pid "$SLURMD_PID" slurmd
stop_pid "$CTLD_PID" slurmctld
if [ -e "$OUR_MUNGED_PID" ]; then
  stop_pid "$OUR_MUNGED_PID" munged
  rm -f /run/munge/munged.pid
fi

# 3. optional purge
if [ "${1:-}" = --purge ]; then
  log "purging $STATE_DIR $LOG_DIR"
  rm -rf "$STATE_DIR" "$LOG_DIR"
  if [ -e "$CONF" ] && grep -qF "$MARKER" "$CONF"; then rm -f "$CONF"; fi
fi
log "stopped"
