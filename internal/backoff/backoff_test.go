package backoff

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestFullJitter(t *testing.T) {
	tests := []struct {
		attempt   int
		base, max time.Duration
		ceiling   time.Duration
	}{
		{1, 10 * time.Millisecond, time.Second, 10 * time.Millisecond},
		{3, 10 * time.Millisecond, time.Second, 40 * time.Millisecond},
		{10, 10 * time.Millisecond, time.Second, time.Second},
		{64, 10 * time.Millisecond, time.Second, time.Second},
		{0, 10 * time.Millisecond, time.Second, time.Second},
	}
	for _, tc := range tests {
		seenLow := false
		for range 500 {
			d := FullJitter(tc.attempt, tc.base, tc.max)
			if d <= 0 || d > tc.ceiling {
				t.Fatalf("attempt %d: %v outside (0, %v]", tc.attempt, d, tc.ceiling)
			}
			if d < tc.ceiling/2 {
				seenLow = true
			}
		}
		if !seenLow {
			t.Errorf("attempt %d: 500 draws all in the top half; not jittered", tc.attempt)
		}
	}
}

func TestSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > time.Second {
		t.Error("Sleep did not return when its context ended")
	}
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatal(err)
	}
}
