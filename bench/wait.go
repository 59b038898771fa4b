package main

import (
	"errors"
	"time"
)

// errLate is waitUntil's error when the deadline passed first.
var errLate = errors.New("not in time")

// waitUntil calls check until it is done or fails, waiting between calls
// until the channel check returned is closed (what it looks at changed) or
// deadline passes (errLate).
func waitUntil(deadline time.Time, check func() (done bool, changed <-chan struct{}, err error)) error {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	for {
		done, changed, err := check()
		if done || err != nil {
			return err
		}
		select {
		case <-changed:
		case <-t.C:
			return errLate
		}
	}
}
