#!/usr/bin/env bash
# Checks the image scripts/image/build.sh built, as Testcontainers' Toxiproxy
# modules start toxiproxy's: -host=0.0.0.0 and -config=FILE (mounted), with
# Docker's default capabilities (no --privileged). The container runs with
# --network host, so that every byte stays on loopback. It:
#   1. waits for GET /version to answer 200 on the API port;
#   2. uses the proxy the config file created (upstream: the API itself);
#   3. creates a second proxy and its handshake_delay with toxiproxy-cli,
#      inside the image;
#   4. times, from the host, a connect through each: the delayed one must
#      complete at the delay (not before, give or take 1 ms, and not 1 s
#      after), the other well before it;
# then removes the container, whatever happened.
#
#   scripts/image/check.sh [--port N] [TAG]
#
# TAG defaults to synhold/handshake-proxy. --port is the API's port (8474 as
# toxiproxy's, if free; else a free one). The proxies get free ports.
set -euo pipefail
cd "$(dirname "$0")/../.."
port=
tag=synhold/handshake-proxy
while [ $# -gt 0 ]; do
	case $1 in
	--port | -port) port=$2; shift 2 ;;
	--port=* | -port=*) port=${1#*=}; shift ;;
	-h | --help) sed -n '2,18s/^# \{0,1\}//p' "$0"; exit 0 ;;
	-*) echo "check.sh: unknown option $1 (want --port N)" >&2; exit 2 ;;
	*) tag=$1; shift ;;
	esac
done
case $port in
'' | [1-9] | [1-9][0-9] | [1-9][0-9][0-9] | [1-9][0-9][0-9][0-9] | [1-6][0-9][0-9][0-9][0-9]) ;;
*) echo "check.sh: --port $port: want a TCP port, 1 to 65535" >&2; exit 2 ;;
esac
. scripts/image/docker.sh
need_docker
command -v curl >/dev/null || { echo "check.sh needs curl (apt-get install curl)" >&2; exit 1; }
docker image inspect "$tag" >/dev/null 2>&1 || { echo "no image $tag: run scripts/image/build.sh $tag first" >&2; exit 1; }

# free_port prints a TCP port no socket uses, below the kernel's ephemeral
# range (ip_local_port_range), where other programs' connections and
# kernel-picked ports never land.
free_port() {
	local p low
	read -r low _ </proc/sys/net/ipv4/ip_local_port_range
	[ "$low" -gt 11000 ] || low=30000
	for _ in $(seq 100); do
		p=$((10000 + RANDOM % (low - 10000)))
		if [ -z "$(ss -Htan "sport = :$p")" ]; then
			echo "$p"
			return
		fi
	done
	echo "no free port found" >&2
	exit 1
}
if [ -z "$port" ]; then
	port=8474
	[ -z "$(ss -Htan 'sport = :8474')" ] || port=$(free_port)
fi
first=$(free_port)
second=$(free_port)
delay_ms=300
api=http://127.0.0.1:$port

work=$(mktemp -d)
name=handshake-proxy-check-$$
cleanup() {
	status=$?
	if [ $status -ne 0 ]; then
		echo "== the container's log"
		docker logs "$name" 2>&1 | tail -40 || true
	fi
	docker rm -f "$name" >/dev/null 2>&1 || true
	rm -rf "$work"
	exit $status
}
trap cleanup EXIT
cat >"$work/toxiproxy.json" <<JSON
[{"name": "first", "listen": "127.0.0.1:$first", "upstream": "127.0.0.1:$port", "enabled": true}]
JSON
chmod 0644 "$work/toxiproxy.json"
chmod 0755 "$work"

# start [DOCKER_RUN_ARGS...] starts the container as Testcontainers' modules
# do and waits for GET /version to answer 200.
start() {
	docker rm -f "$name" >/dev/null 2>&1 || true
	echo "== starting $tag $*: API on :$port, config with proxy first on :$first"
	docker run -d --name "$name" --network host "$@" \
		-v "$work/toxiproxy.json:/tmp/tc-toxiproxy.json:ro" \
		"$tag" -host=0.0.0.0 -port="$port" -config=/tmp/tc-toxiproxy.json >/dev/null
	local code=
	for _ in $(seq 150); do
		code=$(curl -s -o /dev/null -w '%{http_code}' "$api/version" || true)
		[ "$code" = 200 ] && break
		if [ "$(docker inspect -f '{{.State.Running}}' "$name")" != true ]; then
			echo "FAIL: the container exited" >&2
			exit 1
		fi
		sleep 0.2
	done
	[ "$code" = 200 ] || { echo "FAIL: GET $api/version answered ${code:-nothing} within 30 s" >&2; exit 1; }
	echo "GET /version: 200 $(curl -s "$api/version")"
	curl -s "$api/proxies/first" | grep -q '"enabled":true' || { echo "FAIL: -config did not create proxy first" >&2; exit 1; }
	echo "$(docker logs "$name" 2>&1 | grep -m1 'handshake toxics' || true)"
}

cli() { docker exec "$name" /toxiproxy-cli -h "$api" "$@"; }

# connect_ms PORT: a connect's duration in ms, from curl on the host, with
# GET /version through the proxy on PORT answered 200.
connect_ms() {
	local out
	out=$(curl -s -o /dev/null --connect-timeout 5 -w '%{http_code} %{time_connect}' "http://127.0.0.1:$1/version")
	set -- $out
	if [ "$1" != 200 ]; then
		echo "FAIL: GET /version through the proxy answered $1" >&2
		exit 1
	fi
	awk -v s="$2" 'BEGIN { printf "%d", s * 1000 }'
}

# Docker's default capabilities: the proxy forwards whatever the kernel.
start
plain=$(connect_ms "$first")
echo "connect through first (no toxic): ${plain} ms"
if [ "$plain" -ge "$delay_ms" ]; then
	echo "FAIL: a connect with no toxic took ${plain} ms" >&2
	exit 1
fi

# Where kernel.unprivileged_bpf_disabled is set, the socket filter that holds
# SYNs one at a time needs CAP_NET_ADMIN, which Docker does not grant by
# default: the proxy then refuses handshake_delay and says so.
extra=()
if [ "$(cat /proc/sys/kernel/unprivileged_bpf_disabled 2>/dev/null || echo 0)" != 0 ]; then
	out=$(curl -s -XPOST "$api/proxies/first/toxics" -d '{"type":"handshake_delay","attributes":{"delay":10}}')
	echo "handshake_delay with the default capabilities: $out"
	echo "$out" | grep -q 'CAP_NET_ADMIN' || { echo "FAIL: want a refusal naming CAP_NET_ADMIN" >&2; exit 1; }
	echo "kernel.unprivileged_bpf_disabled is set here: the handshake_delay check adds --cap-add NET_ADMIN"
	extra=(--cap-add NET_ADMIN)
	start "${extra[@]}"
fi

echo "== toxiproxy-cli inside the image: proxy second on :$second, handshake_delay ${delay_ms} ms"
cli create -l "127.0.0.1:$second" -u "127.0.0.1:$port" second
cli toxic add -t handshake_delay -a delay=$delay_ms second
cli list
delayed=$(connect_ms "$second")
echo "connect through second (handshake_delay ${delay_ms} ms): ${delayed} ms"
# Not before the delay: 1 ms less at most, for the replay's margin and
# curl's rounding; not 1 s after it.
if [ "$delayed" -lt $((delay_ms - 1)) ] || [ "$delayed" -gt $((delay_ms + 1000)) ]; then
	echo "FAIL: the handshake_delay connect took ${delayed} ms, want $((delay_ms - 1)) ms to $((delay_ms + 1000)) ms" >&2
	exit 1
fi
echo "OK: $tag (Docker's default capabilities ${extra[*]:+plus ${extra[*]}}): /version, -config, toxiproxy-cli, handshake_delay from the host"
