# handshake-proxy in place of toxiproxy's image (ghcr.io/shopify/toxiproxy),
# with toxiproxy's conventions: the server as /toxiproxy, toxiproxy-cli beside
# it, the API on 0.0.0.0:8474. Nothing is pulled: scripts/image/build.sh
# builds both binaries static on the host into the build context.
#
#   scripts/image/build.sh [TAG]    # default synhold/handshake-proxy
#   docker run --network host synhold/handshake-proxy
#
# handshake_delay and handshake_refuse need CAP_NET_RAW, which Docker grants
# by default (root in the container, no --privileged), and, on a kernel with
# kernel.unprivileged_bpf_disabled set, CAP_NET_ADMIN for the socket filter:
# add --cap-add NET_ADMIN (without it they answer 501 naming it; see
# docs/handshake-proxy.md).
FROM scratch

EXPOSE 8474
ENTRYPOINT ["/toxiproxy"]
CMD ["-host=0.0.0.0"]

ENV LOG_LEVEL=info

COPY handshake-proxy /toxiproxy
COPY toxiproxy-cli /toxiproxy-cli
