# Shared by setup.sh and teardown.sh: sourced, not run.
#
# Environment overrides (tests use them to stay out of the repository):
#   HAPPYEYEBALLS_BIN  the server binary (default: bin/happyeyeballs-server)
#   HAPPYEYEBALLS_LOG  the server's log (default: bin/happyeyeballs-server-PORT.log)

# Work from the repository root, wherever the caller is.
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
REPO_ROOT="$(pwd)"

PORT="${1:-10036}"
BIN="${HAPPYEYEBALLS_BIN:-$REPO_ROOT/bin/happyeyeballs-server}"
LOG="${HAPPYEYEBALLS_LOG:-$REPO_ROOT/bin/happyeyeballs-server-$PORT.log}"

# build_server builds the server into $BIN when it is missing or older than
# any Go source it is built from.
build_server() {
  if [[ -x "$BIN" ]] && [[ -z "$(find cmd/happyeyeballs-server broker internal listener sockopt go.mod go.sum \
      -newer "$BIN" \( -name '*.go' -o -name 'go.mod' -o -name 'go.sum' \) -print -quit)" ]]; then
    return 0
  fi
  echo "building $BIN"
  mkdir -p "$(dirname "$BIN")"
  go build -o "$BIN" ./cmd/happyeyeballs-server
}
