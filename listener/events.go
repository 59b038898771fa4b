package listener

import (
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
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
	// inCall is set while OnEvent runs, so that delivering looks at the
	// caller's stack only then.
	inCall atomic.Bool
}

func newEventQueue(on func(Event)) *eventQueue {
	q := &eventQueue{on: on, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go q.run()
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

func (q *eventQueue) run() {
	defer close(q.done)
	for {
		e, ok, wait := q.next()
		switch {
		case ok:
			q.deliver(e)
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
		q.on(e) // inside deliver already
	}
}

// deliver calls OnEvent with e from the queue's goroutine. Its frame on a
// goroutine's stack is what marks that goroutine as delivering.
//
//go:noinline
func (q *eventQueue) deliver(e Event) {
	q.inCall.Store(true)
	defer q.inCall.Store(false)
	q.on(e)
}

// delivering reports whether the caller runs inside OnEvent, called by
// deliver, so that Close from OnEvent does not wait for itself. It looks
// for deliver's frame on the caller's own stack (runtime.Callers sees only
// the calling goroutine's), and only while OnEvent runs.
func (q *eventQueue) delivering() bool {
	if !q.inCall.Load() {
		return false
	}
	pcs := make([]uintptr, 64)
	for {
		n := runtime.Callers(2, pcs)
		if n < len(pcs) {
			pcs = pcs[:n]
			break
		}
		pcs = make([]uintptr, 2*len(pcs))
	}
	frames := runtime.CallersFrames(pcs)
	for {
		f, more := frames.Next()
		if strings.HasSuffix(f.Function, deliverFrame) {
			return true
		}
		if !more {
			return false
		}
	}
}

// deliverFrame ends the name of deliver's frame.
const deliverFrame = "/listener.(*eventQueue).deliver"
