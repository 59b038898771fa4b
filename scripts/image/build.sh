#!/usr/bin/env bash
# Builds the container image of handshake-proxy (Dockerfile at the repo's
# root): the static handshake-proxy as /toxiproxy and toxiproxy-cli (at the
# toxiproxy module version go.mod names) as /toxiproxy-cli, FROM scratch, so
# that nothing is pulled from a registry.
#
#   scripts/image/build.sh [TAG]      TAG defaults to synhold/handshake-proxy
#
# Needs go and Docker: installs docker.io with apt-get if docker is missing,
# and starts dockerd in the background if none answers (its log:
# $TMPDIR/handshake-proxy-dockerd.log). Prints the image's size.
set -euo pipefail
cd "$(dirname "$0")/../.."
tag=${1:-synhold/handshake-proxy}
. scripts/image/docker.sh
need_docker

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
export CGO_ENABLED=0 GOOS=linux
version=$(go list -m -f '{{.Version}}' github.com/Shopify/toxiproxy/v2)
echo "building handshake-proxy and toxiproxy-cli $version (static)"
go build -trimpath -ldflags='-s -w' -o "$ctx/handshake-proxy" ./cmd/handshake-proxy
GOBIN="$ctx/bin" GOFLAGS= go install -trimpath -ldflags='-s -w' "github.com/Shopify/toxiproxy/v2/cmd/cli@$version"
mv "$ctx/bin/cli" "$ctx/toxiproxy-cli"
cp Dockerfile "$ctx/"
revision=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
docker build -q -t "$tag" \
	--label org.opencontainers.image.title=handshake-proxy \
	--label org.opencontainers.image.revision="$revision" \
	--label io.synhold.toxiproxy-cli.version="$version" \
	"$ctx" >/dev/null
size=$(docker image inspect -f '{{.Size}}' "$tag")
echo "built $tag: $size bytes ($((size / 1024 / 1024)) MiB), revision $revision"
