package listener

import (
	"bytes"
	"runtime"
	"strconv"
	"sync"
)

// eventQueue hands one listener's events to its OnEvent, in order, from a
// goroutine of the listener's own. Queuing never blocks, so a slow OnEvent
// delays only that listener's later events, never a release or the capture.
// The queue is unbounded: every event a listener produced while open
// reaches OnEvent.
type eventQueue struct {
	on   func(Event)
	mu   sync.Mutex
	q    []Event
	shut bool
	wake chan struct{}
	done chan struct{}
	gid  uint64 // the delivering goroutine's id, set before the first event
}

func newEventQueue(on func(Event)) *eventQueue {
	q := &eventQueue{on: on, wake: make(chan struct{}, 1), done: make(chan struct{})}
	ready := make(chan struct{})
	go q.run(ready)
	<-ready
	return q
}

// push queues e; after close it is dropped (it happened after Close).
func (q *eventQueue) push(e Event) {
	q.mu.Lock()
	if q.shut {
		q.mu.Unlock()
		return
	}
	q.q = append(q.q, e)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// next pops the oldest event; ok is false once the queue is closed and
// empty.
func (q *eventQueue) next() (e Event, ok, wait bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.q) == 0 {
		return Event{}, false, !q.shut
	}
	e = q.q[0]
	q.q[0] = Event{}
	q.q = q.q[1:]
	return e, true, false
}

func (q *eventQueue) run(ready chan struct{}) {
	defer close(q.done)
	q.gid = goroutineID()
	close(ready)
	for {
		e, ok, wait := q.next()
		switch {
		case ok:
			q.on(e)
		case wait:
			<-q.wake
		default:
			return
		}
	}
}

// close delivers every event queued so far and returns once OnEvent will
// not be called again. Called from OnEvent itself, it delivers the rest on
// the spot, in order, instead of waiting for itself.
func (q *eventQueue) close() {
	q.mu.Lock()
	q.shut = true
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	if !q.delivering() {
		<-q.done
		return
	}
	for {
		e, ok, _ := q.next()
		if !ok {
			return
		}
		q.on(e)
	}
}

// delivering reports whether the caller is the goroutine that calls OnEvent.
func (q *eventQueue) delivering() bool { return goroutineID() == q.gid }

// goroutineID returns the calling goroutine's id, from the first line of its
// stack trace ("goroutine 18 [running]:"), as golang.org/x/net/http2 does for
// its lock checks. It lets Close tell a call from OnEvent, which must not wait
// for itself, from any other.
func goroutineID() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i >= 0 {
		b = b[:i]
	}
	id, _ := strconv.ParseUint(string(b), 10, 64)
	return id
}
