package fanout

import (
	"context"
	"sync"
	"time"
)

// window is an AIMD congestion window over posts in flight, as TCP keeps
// one over bytes: it grows by one per success until the first throttle
// (slow start, so it doubles every round trip), then by one per window of
// successes; a throttle halves it. The posts a throttle catches in flight
// were sent before the cut, so they cut it no further. The broadcast thus
// runs at about the rate the account allows, whatever that is, without a
// setting for it.
type window struct {
	mu       sync.Mutex
	wake     *sync.Cond
	limit    float64
	ssthresh float64
	max      float64
	inFlight int
	waiting  int
	lastCut  time.Time
	closed   bool
}

func newWindow(initial, max int) *window {
	w := &window{limit: float64(min(initial, max)), ssthresh: float64(max), max: float64(max)}
	w.wake = sync.NewCond(&w.mu)
	return w
}

// acquire waits for room in the window and takes one post's place in it,
// returning when the post may start. It fails once ctx ends.
func (w *window) acquire(ctx context.Context) (time.Time, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.inFlight >= int(w.limit) && !w.closed {
		w.waiting++
		w.wake.Wait()
		w.waiting--
	}
	if w.closed {
		return time.Time{}, context.Cause(ctx)
	}
	w.inFlight++
	return time.Now(), nil
}

// release gives a post's place back; throttled says the post was refused
// for the rate, started is when acquire let it go.
func (w *window) release(throttled bool, started time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.inFlight--
	switch {
	case throttled:
		if started.After(w.lastCut) {
			w.ssthresh = max(w.limit/2, 1)
			w.limit = w.ssthresh
			w.lastCut = time.Now()
		}
	case w.limit < w.ssthresh:
		w.limit = min(w.limit+1, w.max)
	default:
		w.limit = min(w.limit+1/w.limit, w.max)
	}
	for range min(int(w.limit)-w.inFlight, w.waiting) {
		w.wake.Signal()
	}
}

// giveBack returns a place taken by acquire but not used, with no effect
// on the window's size.
func (w *window) giveBack() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.inFlight--
	if w.waiting > 0 {
		w.wake.Signal()
	}
}

// close wakes every waiter for good (the delivery's context ended).
func (w *window) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	w.wake.Broadcast()
}

// size is the window's current limit, for tests and metrics.
func (w *window) size() float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.limit
}
