package listener

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestCloseFromOtherOnEvent: listener A's OnEvent closes listener B while
// B's own OnEvent runs on B's goroutine. B's close is not "inside" B's
// OnEvent, so it must wait for B's goroutine (never call B's OnEvent on A's
// goroutine, never return while B's OnEvent still runs).
func TestCloseFromOtherOnEvent(t *testing.T) {
	var (
		bIn       atomic.Int32 // B's OnEvent calls in flight
		bOverlap  atomic.Bool
		bStarted  = make(chan struct{})
		bRelease  = make(chan struct{})
		released  atomic.Bool
		bCalls    atomic.Int32
		aReturned = make(chan bool, 1)
	)
	b := newEventQueue(func(Event) {
		if bIn.Add(1) > 1 {
			bOverlap.Store(true)
		}
		defer bIn.Add(-1)
		if bCalls.Add(1) == 1 {
			close(bStarted)
			<-bRelease
		}
	})
	b.push(Event{})
	b.push(Event{})
	<-bStarted // B's goroutine is inside its OnEvent

	a := newEventQueue(func(Event) {
		go func() {
			// If B's close waits, as it must, it is still waiting here.
			time.Sleep(50 * time.Millisecond)
			released.Store(true)
			close(bRelease)
		}()
		b.close()
		aReturned <- released.Load()
	})
	a.push(Event{})
	if !<-aReturned {
		t.Error("B's close, called from A's OnEvent, returned while B's OnEvent still ran")
	}
	a.close()
	if bOverlap.Load() {
		t.Error("B's OnEvent ran on two goroutines at once")
	}
	if n := bCalls.Load(); n != 2 {
		t.Errorf("B's OnEvent called %d times, want 2", n)
	}
}

// TestCloseFromOwnOnEvent: Close from a listener's own OnEvent delivers the
// rest on the spot, in order, and does not wait for itself.
func TestCloseFromOwnOnEvent(t *testing.T) {
	var got []int
	var q *eventQueue
	done, pushed := make(chan struct{}), make(chan struct{})
	q = newEventQueue(func(e Event) {
		<-pushed // all three queued before the first is handled
		got = append(got, int(e.Kind))
		if len(got) == 1 {
			q.close()
			close(done)
		}
	})
	for i := range 3 {
		q.push(Event{Kind: EventKind(i)})
	}
	close(pushed)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("close from its own OnEvent waited for itself")
	}
	<-q.done
	if len(got) != 3 || got[0] != 0 || got[1] != 1 || got[2] != 2 {
		t.Errorf("events %v, want [0 1 2]", got)
	}
}
