package fanout

import (
	"context"
	"testing"
	"time"
)

func TestWindow(t *testing.T) {
	ctx := context.Background()
	w := newWindow(2, 16)
	// Slow start: each success adds one, so a round of n makes it 2n.
	round := func() {
		n := int(w.size())
		starts := make([]time.Time, n)
		for i := range n {
			starts[i], _ = w.acquire(ctx)
		}
		for i := range n {
			w.release(false, starts[i])
		}
	}
	for _, want := range []float64{4, 8, 16, 16} {
		round()
		if got := w.size(); got != want {
			t.Fatalf("after a round: %v, want %v (bounded by max 16)", got, want)
		}
	}
	// A throttle halves it once for the posts already in flight.
	starts := make([]time.Time, 10)
	for i := range starts {
		starts[i], _ = w.acquire(ctx)
	}
	w.release(true, starts[0])
	w.release(true, starts[1])
	if got := w.size(); got != 8 {
		t.Fatalf("after throttles of one round: %v, want 8", got)
	}
	// Past the threshold it grows by one per window of successes.
	for _, s := range starts[2:] {
		w.release(false, s)
	}
	if got := w.size(); got < 8.9 || got > 9.1 {
		t.Fatalf("after 8 successes past the threshold: %v, want about 9", got)
	}
	// A throttle of a post started after the cut cuts again.
	s, _ := w.acquire(ctx)
	w.release(true, s)
	if got := w.size(); got < 4.4 || got > 4.6 {
		t.Fatalf("after a later throttle: %v, want about 4.5", got)
	}
}

func TestWindowBlocksAtItsLimitAndWakesOnClose(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	w := newWindow(1, 4)
	stop := context.AfterFunc(ctx, w.close)
	defer stop()
	first, _ := w.acquire(ctx)
	got := make(chan error, 1)
	go func() {
		_, err := w.acquire(ctx)
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("a second post started with the window full: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	w.release(false, first) // grows to 2 and makes room
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	// Full again (2 in flight of 2): the waiter leaves when ctx ends.
	_, _ = w.acquire(ctx)
	go func() {
		_, err := w.acquire(ctx)
		got <- err
	}()
	cancel()
	select {
	case err := <-got:
		if err == nil {
			t.Fatal("acquire succeeded after its context ended")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("acquire did not return when its context ended")
	}
}
