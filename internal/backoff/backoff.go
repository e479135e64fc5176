// Package backoff spaces out retries: exponential delays with full jitter,
// and a sleep that ends with its context.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// FullJitter returns the wait before retry number attempt (1 for the first):
// uniform in (0, min(max, base·2^(attempt-1))]. The randomness spreads the
// retries of many workers that failed together, as after a throttle.
func FullJitter(attempt int, base, max time.Duration) time.Duration {
	ceiling := max
	if attempt >= 1 && attempt <= 30 {
		ceiling = min(base<<(attempt-1), max)
	}
	if ceiling <= 0 {
		ceiling = max
	}
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling) + 1
}

// Sleep waits d or until ctx ends, whichever comes first, and then returns
// ctx's error if it ended.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
