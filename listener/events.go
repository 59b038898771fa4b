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
	q    []Event // q[head:] are queued; the array is reused once drained
	head int
	shut bool
	wake chan struct{}
	done chan struct{}
	// inCall is set while OnEvent runs, so that delivering looks at the
	// caller's stack only then.
	inCall atomic.Bool
	// id, never 0, is what deliver writes on its goroutine's stack (see
	// markBits), so that delivering tells this queue's OnEvent from
	// another listener's.
	id uint64
}

// queueIDs numbers the event queues of the process.
var queueIDs atomic.Uint64

func newEventQueue(on func(Event)) *eventQueue {
	q := &eventQueue{on: on, wake: make(chan struct{}, 1), done: make(chan struct{}), id: queueIDs.Add(1)}
	go q.run()
	return q
}

// maxIdleQueue is the most events' room a drained queue keeps.
const maxIdleQueue = 1024

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
	if q.head == len(q.q) {
		return Event{}, false, !q.shut
	}
	e = q.q[q.head]
	q.q[q.head] = Event{}
	if q.head++; q.head == len(q.q) {
		// Drained: reuse the array (a burst's, up to maxIdleQueue events)
		// rather than growing a new one behind the head each time.
		q.q, q.head = q.q[:0], 0
		if cap(q.q) > maxIdleQueue {
			q.q = nil
		}
	}
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
// goroutine's stack marks that goroutine as delivering, and the frames
// between it and OnEvent spell the queue's id, one frame per bit (mark0 or
// mark1, lowest bit first), so that a listener whose OnEvent closes another
// listener is not taken for that other listener's OnEvent.
//
//go:noinline
func (q *eventQueue) deliver(e Event) {
	q.inCall.Store(true)
	defer q.inCall.Store(false)
	markBits(q.id, q, &e)
}

// markBits calls OnEvent below one frame per bit of rest still to spell.
func markBits(rest uint64, q *eventQueue, e *Event) {
	switch {
	case rest == 0:
		q.on(*e)
	case rest&1 == 1:
		mark1(rest>>1, q, e)
	default:
		mark0(rest>>1, q, e)
	}
}

//go:noinline
func mark0(rest uint64, q *eventQueue, e *Event) { markBits(rest, q, e) }

//go:noinline
func mark1(rest uint64, q *eventQueue, e *Event) { markBits(rest, q, e) }

// delivering reports whether the caller runs inside this queue's OnEvent,
// called by deliver, so that Close from OnEvent does not wait for itself.
// It reads the caller's own stack (runtime.Callers sees only the calling
// goroutine's), only while OnEvent runs: a deliver frame there, and the id
// the mark frames above it spell, which must be this queue's.
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
	var id uint64 // the bits seen, innermost (highest) first
	for {
		f, more := frames.Next()
		switch {
		case strings.HasSuffix(f.Function, mark0Frame):
			id <<= 1
		case strings.HasSuffix(f.Function, mark1Frame):
			id = id<<1 | 1
		case strings.HasSuffix(f.Function, markBitsFrame):
		case strings.HasSuffix(f.Function, deliverFrame):
			return id == q.id // one deliver frame per goroutine at most
		default:
			id = 0 // OnEvent's own frames, or above them
		}
		if !more {
			return false
		}
	}
}

// The names' ends of the frames delivering looks for.
const (
	deliverFrame  = "/listener.(*eventQueue).deliver"
	mark0Frame    = "/listener.mark0"
	mark1Frame    = "/listener.mark1"
	markBitsFrame = "/listener.markBits"
)
