#!/usr/bin/env bash
# Stops the Happy Eyeballs test server that setup.sh started.
# Usage: teardown.sh [PORT] (default 10036). No server running is not an error.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

build_server
"$BIN" --control "$PORT" --stop
