package logtest

import (
	"strings"
	"sync"
	"testing"
)

// TestConcurrentWritesAndReads: every write is kept, whole, while readers
// read (run with -race).
func TestConcurrentWritesAndReads(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				b.Write([]byte("line\n"))
				_ = b.String()
				_ = b.Bytes()
			}
		})
	}
	wg.Wait()
	if n := strings.Count(b.String(), "line\n"); n != 400 {
		t.Fatalf("%d lines, want 400", n)
	}
	c := b.Bytes()
	c[0] = 'X'
	if b.String()[0] != 'l' {
		t.Fatal("Bytes returned the buffer itself, not a copy")
	}
}
