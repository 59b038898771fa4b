// Package netnstest gives tests hosts of their own: network namespaces joined
// by a veth pair, with addresses from the benchmarking range (198.18.0.0/15)
// and a unique local IPv6 prefix, created for the test and removed after it.
//
// It is Linux's; elsewhere the package is empty.
package netnstest
