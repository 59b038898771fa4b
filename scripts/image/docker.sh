# Sourced by build.sh and check.sh: need_docker makes sure a Docker daemon
# answers, installing docker.io and starting dockerd if need be.

need_docker() {
	if ! command -v docker >/dev/null; then
		echo "docker is missing: apt-get install docker.io"
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
	fi
	if docker info >/dev/null 2>&1; then
		return
	fi
	local log=${TMPDIR:-/tmp}/handshake-proxy-dockerd.log
	echo "no Docker daemon answers: starting dockerd (log: $log)"
	nohup dockerd >"$log" 2>&1 &
	for _ in $(seq 60); do
		if docker info >/dev/null 2>&1; then
			return
		fi
		sleep 1
	done
	echo "dockerd did not answer within 60 s; its log:" >&2
	tail -20 "$log" >&2
	exit 1
}
