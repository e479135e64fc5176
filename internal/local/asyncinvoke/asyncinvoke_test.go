package asyncinvoke_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/pushgate/pushgate/internal/local/asyncinvoke"
)

// TestInvocationsRunWithinTheFunctionTimeout: each run's context ends at
// the timeout, not with the caller's, and a failing run is tried three
// times in all; Close runs what is queued and refuses more.
func TestInvocationsRunWithinTheFunctionTimeout(t *testing.T) {
	var mu sync.Mutex
	var deadlines []time.Duration
	tries := map[string]int{}
	q := asyncinvoke.New("fn", func(ctx context.Context, what string) error {
		mu.Lock()
		defer mu.Unlock()
		d, ok := ctx.Deadline()
		if !ok {
			return errors.New("no deadline")
		}
		deadlines = append(deadlines, time.Until(d))
		tries[what]++
		if what == "fails" {
			return errors.New("boom")
		}
		return nil
	}, 3*time.Second, slog.New(slog.DiscardHandler))
	caller, cancel := context.WithCancel(context.Background())
	for _, what := range []string{"a", "b", "fails"} {
		if err := q.Invoke(caller, what, what); err != nil {
			t.Fatal(err)
		}
	}
	cancel() // the caller's request ending does not cancel what it queued
	q.Close()
	if tries["a"] != 1 || tries["b"] != 1 || tries["fails"] != 3 {
		t.Fatalf("tries %v", tries)
	}
	for _, d := range deadlines {
		if d <= 2*time.Second || d > 3*time.Second {
			t.Fatalf("a run had %v left, want about the 3 s timeout", d)
		}
	}
	if err := q.Invoke(context.Background(), "late", "late"); !errors.Is(err, asyncinvoke.ErrClosed) {
		t.Fatalf("Invoke after Close = %v", err)
	}
}
