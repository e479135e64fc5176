package fanout

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushgate/pushgate/internal/domain"
	"github.com/pushgate/pushgate/internal/testkit/sink"
)

// scriptPoster answers each connection's posts with a scripted sequence of
// statuses (0 = delivered); the last status repeats.
type scriptPoster struct {
	mu        sync.Mutex
	script    map[string][]int
	posts     map[string]int
	delivered map[string][]byte
	inFlight  atomic.Int32
	maxFlight atomic.Int32
}

func newScriptPoster(script map[string][]int) *scriptPoster {
	return &scriptPoster{script: script, posts: map[string]int{}, delivered: map[string][]byte{}}
}

func (p *scriptPoster) Post(_ context.Context, id string, frame []byte) error {
	n := p.inFlight.Add(1)
	defer p.inFlight.Add(-1)
	for {
		m := p.maxFlight.Load()
		if n <= m || p.maxFlight.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(100 * time.Microsecond) // let workers overlap
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.script[id]
	i := p.posts[id]
	p.posts[id]++
	status := 0
	if len(s) > 0 {
		status = s[min(i, len(s)-1)]
	}
	if status != 0 {
		return &domain.PostError{ConnectionID: id, Status: status, Err: fmt.Errorf("status %d", status)}
	}
	p.delivered[id] = frame
	return nil
}

type recordPruner struct {
	mu      sync.Mutex
	deleted []string
	err     error
}

func (r *recordPruner) Delete(_ context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deleted = append(r.deleted, id)
	return r.err
}

func pagesOf(pages ...[]string) iter.Seq2[[]string, error] {
	return func(yield func([]string, error) bool) {
		for _, p := range pages {
			if !yield(p, nil) {
				return
			}
		}
	}
}

func noSleep(context.Context, time.Duration) error { return nil }

func TestDeliver(t *testing.T) {
	tests := []struct {
		name        string
		pages       [][]string
		exclude     string
		script      map[string][]int
		attempts    int
		want        Result
		wantPruned  []string
		wantNotSent []string
	}{
		{
			name:  "all delivered across pages",
			pages: [][]string{{"a", "b"}, {"c"}, {}, {"d"}},
			want:  Result{Recipients: 4, Delivered: 4},
		},
		{
			name:        "sender excluded and duplicates skipped",
			pages:       [][]string{{"a", "s", "b"}, {"b", "a", "c"}},
			exclude:     "s",
			want:        Result{Recipients: 3, Delivered: 3},
			wantNotSent: []string{"s"},
		},
		{
			name:       "gone is pruned, others delivered",
			pages:      [][]string{{"a", "gone", "b"}},
			script:     map[string][]int{"gone": {410}},
			want:       Result{Recipients: 3, Delivered: 2, Gone: 1},
			wantPruned: []string{"gone"},
		},
		{
			name:   "throttle then success is retried",
			pages:  [][]string{{"a", "t"}},
			script: map[string][]int{"t": {429, 503, 0}},
			want:   Result{Recipients: 2, Delivered: 2, Retried: 2, Throttled: 1},
		},
		{
			name:     "retries are bounded",
			pages:    [][]string{{"a", "t"}},
			script:   map[string][]int{"t": {500}},
			attempts: 3,
			want:     Result{Recipients: 2, Delivered: 1, Retried: 2, Failed: 1},
		},
		{
			name:     "throttles are retried past Attempts",
			pages:    [][]string{{"t"}},
			script:   map[string][]int{"t": {429, 429, 429, 429, 0}},
			attempts: 2,
			want:     Result{Recipients: 1, Delivered: 1, Retried: 4, Throttled: 4},
		},
		{
			name:   "client errors are not retried",
			pages:  [][]string{{"f", "a"}},
			script: map[string][]int{"f": {403}},
			want:   Result{Recipients: 2, Delivered: 1, Failed: 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newScriptPoster(tc.script)
			pr := &recordPruner{}
			f := New(p, pr, Options{Workers: 3, Attempts: tc.attempts})
			f.sleep = noSleep
			got, err := f.Deliver(context.Background(), Delivery{Frame: []byte("frame"), Recipients: pagesOf(tc.pages...), Exclude: tc.exclude})
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("result = %+v, want %+v", got, tc.want)
			}
			if !slices.Equal(pr.deleted, tc.wantPruned) {
				t.Errorf("pruned %v, want %v", pr.deleted, tc.wantPruned)
			}
			for _, id := range tc.wantNotSent {
				if p.posts[id] != 0 {
					t.Errorf("%s was posted to", id)
				}
			}
			for id, frame := range p.delivered {
				if string(frame) != "frame" {
					t.Errorf("%s got %q", id, frame)
				}
			}
		})
	}
}

func TestDeliverListingErrorIsReturnedAfterInFlightPosts(t *testing.T) {
	listErr := errors.New("query failed")
	pages := func(yield func([]string, error) bool) {
		if !yield([]string{"a", "b"}, nil) {
			return
		}
		yield(nil, listErr)
	}
	p := newScriptPoster(nil)
	f := New(p, &recordPruner{}, Options{Workers: 2})
	got, err := f.Deliver(context.Background(), Delivery{Frame: []byte("x"), Recipients: pages})
	if !errors.Is(err, listErr) {
		t.Fatalf("err = %v, want %v", err, listErr)
	}
	if got.Delivered != 2 || got.Recipients != 2 {
		t.Errorf("result = %+v; the first page should still be delivered", got)
	}
}

func TestDeliverBoundsConcurrency(t *testing.T) {
	ids := make([]string, 200)
	for i := range ids {
		ids[i] = fmt.Sprint("c", i)
	}
	p := newScriptPoster(nil)
	f := New(p, &recordPruner{}, Options{Workers: 5})
	got, err := f.Deliver(context.Background(), Delivery{Frame: []byte("x"), Recipients: pagesOf(ids[:120], ids[120:])})
	if err != nil {
		t.Fatal(err)
	}
	if got.Delivered != 200 {
		t.Errorf("delivered %d", got.Delivered)
	}
	if m := p.maxFlight.Load(); m > 5 || m < 2 {
		t.Errorf("max concurrent posts = %d, want 2..5", m)
	}
}

func TestDeliverStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p := newScriptPoster(map[string][]int{"a": {500}})
	f := New(p, &recordPruner{}, Options{Workers: 1, Attempts: 10, BaseDelay: time.Hour})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = f.Deliver(ctx, Delivery{Frame: []byte("x"), Recipients: pagesOf([]string{"a", "b", "c"})})
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Deliver did not return after its context was cancelled")
	}
}

func TestBackoffIsBoundedFullJitter(t *testing.T) {
	f := New(nil, nil, Options{BaseDelay: 10 * time.Millisecond, MaxDelay: 80 * time.Millisecond})
	for attempt := 1; attempt <= 40; attempt++ {
		ceiling := min(80*time.Millisecond, 10*time.Millisecond<<(attempt-1))
		if attempt > 10 {
			ceiling = 80 * time.Millisecond
		}
		for range 50 {
			if d := f.backoff(attempt); d < 0 || d > ceiling {
				t.Fatalf("attempt %d: backoff %v outside [0, %v]", attempt, d, ceiling)
			}
		}
	}
}

func TestTo(t *testing.T) {
	p := newScriptPoster(nil)
	f := New(p, &recordPruner{}, Options{})
	got, err := f.To(context.Background(), []byte("hi"), "x")
	if err != nil || got.Delivered != 1 || string(p.delivered["x"]) != "hi" {
		t.Fatalf("To: %+v %v %q", got, err, p.delivered["x"])
	}
}

// TestDeliverUnderThrottlingAndFaults: a sink that throttles hard, fails a
// fifth of its calls and has one connection in ten gone. Every live
// recipient gets exactly one copy, every gone one is pruned, nothing else
// is.
func TestDeliverUnderThrottlingAndFaults(t *testing.T) {
	s := sink.New(sink.Options{Latency: time.Millisecond, Rate: 3000, Burst: 10, GoneEvery: 10, FailRate: 0.2})
	const n = 3000
	var pages [][]string
	var live, gone []string
	for i := 0; i < n; i += 100 {
		var page []string
		for j := i; j < i+100; j++ {
			id := fmt.Sprintf("conn-%05d=", j)
			page = append(page, id)
			if s.IsGone(id) {
				gone = append(gone, id)
			} else {
				live = append(live, id)
			}
		}
		pages = append(pages, page)
	}
	pr := &recordPruner{}
	f := New(s, pr, Options{Workers: 64, Attempts: 10, BaseDelay: 5 * time.Millisecond, MaxDelay: 200 * time.Millisecond})
	res, err := f.Deliver(context.Background(), Delivery{Frame: []byte("x"), Recipients: pagesOf(pages...)})
	if err != nil {
		t.Fatal(err)
	}
	copies := s.Copies()
	for _, id := range live {
		if copies[id] != 1 {
			t.Errorf("%s got %d copies", id, copies[id])
		}
	}
	slices.Sort(pr.deleted)
	if !slices.Equal(pr.deleted, gone) {
		t.Errorf("pruned %d ids, want the %d gone ones", len(pr.deleted), len(gone))
	}
	st := s.Stats()
	want := Result{Recipients: n, Delivered: len(live), Gone: len(gone), Throttled: int(st.Throttled), Retried: res.Retried}
	if res != want || st.Throttled == 0 || st.Failed == 0 {
		t.Errorf("result %+v, want %+v; sink %+v", res, want, st)
	}
	t.Logf("result %+v; sink %+v", res, st)
}

// TestFailedConnectionsAreClosed: with a Closer, a connection whose post
// failed every attempt is closed (its client reconnects and reads the
// history); a gone or a delivered one is not.
func TestFailedConnectionsAreClosed(t *testing.T) {
	p := newScriptPoster(map[string][]int{"bad": {500}, "gone": {410}, "flaky": {500, 0}})
	closer := &recordPruner{}
	f := New(p, &recordPruner{}, Options{Workers: 2, Attempts: 2}).WithCloser(closer)
	f.sleep = noSleep
	res, err := f.Deliver(context.Background(), Delivery{Frame: []byte(`{}`), Recipients: pagesOf([]string{"ok", "bad", "gone", "flaky"})})
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed != 1 || res.Closed != 1 || res.Gone != 1 || res.Delivered != 2 {
		t.Fatalf("result %+v; want 1 failed and closed, 1 gone, 2 delivered", res)
	}
	if fmt.Sprint(closer.deleted) != "[bad]" {
		t.Fatalf("closed %v, want [bad]", closer.deleted)
	}
	// A close that fails too is counted as failed, not closed.
	closer.err = errors.New("throttled")
	res, _ = f.Deliver(context.Background(), Delivery{Frame: []byte(`{}`), Recipients: pagesOf([]string{"bad"})})
	if res.Failed != 1 || res.Closed != 0 {
		t.Fatalf("result %+v; want failed, not closed", res)
	}
}
