// Package backoff judges the connection backoff of a gRPC client from the
// times of its connection attempts, as gRPC's connection-backoff interop test
// does (doc/connection-backoff.md and
// doc/connection-backoff-interop-test-description.md in grpc/grpc).
//
// In that test a client reconnects to a port that closes every connection at
// once, and the server judges the gaps between consecutive attempts. The
// timestamps can come from anywhere: SYNs in a live capture or a pcap file,
// accept times, or a list of numbers.
//
// Reference reproduces the reference C++ server's verdict exactly. Analyze
// goes further: it removes retransmitted SYNs and attempts from other
// sources, judges each destination address on its own (gRPC keeps one backoff
// per address), fits the multiplier, measures the jitter, and names the
// deviations it recognises, such as a client without jitter or one whose
// jitter compounds from one backoff to the next. Every figure it reports,
// error bars included, comes from the attempts; where there are too few to
// estimate one, it says so. Analysis.WriteText, its JSON and
// Analysis.WriteSVG (a picture of the attempts against their allowed
// windows) give our verdict with the reference server's beside it.
//
// The package is pure computation: it works on every system and needs no
// privilege. ExampleAnalyze judges a run from its attempt times; the
// backoff-check command is Analyze on a pcap file or a list of times, and
// docs/backoff-check.md explains its report; the reconnect server
// (package broker/reconnect) judges each test with it.
package backoff
