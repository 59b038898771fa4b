//go:build !linux

package main

// lacksNetRaw reports false: only Linux has capabilities to look at, and
// listener.Probe says what it needs elsewhere.
func lacksNetRaw() (bool, error) { return false, nil }
