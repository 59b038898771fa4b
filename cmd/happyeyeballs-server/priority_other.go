//go:build !linux

package main

import (
	"errors"
	"fmt"
	"runtime"
)

// setNice is Linux's: elsewhere the start-up line leaves the priority out.
func setNice(n int) error {
	return fmt.Errorf("nice %d on %s: %w", n, runtime.GOOS, errors.ErrUnsupported)
}
