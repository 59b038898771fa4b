#!/usr/bin/env bash
# Starts the Happy Eyeballs test server in the background and waits until it
# answers. Usage: setup.sh [PORT] (default 10036). Stop it with teardown.sh.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

build_server
mkdir -p "$(dirname "$LOG")"
nohup "$BIN" --control "$PORT" --log-format json </dev/null >"$LOG" 2>&1 &
pid=$!
if ! "$BIN" --control "$PORT" --wait; then
  echo "happy eyeballs server did not come up; its log ($LOG):" >&2
  tail -n 20 "$LOG" >&2 || true
  kill "$pid" 2>/dev/null || true
  exit 1
fi
if ! kill -0 "$pid" 2>/dev/null; then
  echo "note: the new server exited (log: $LOG); another server already answers on port $PORT" >&2
else
  echo "happy eyeballs server running on port $PORT (pid $pid, log $LOG)"
fi
