// Package asyncinvoke runs a handler as Lambda's asynchronous invocation
// does, for the local stack: invocations wait in a bounded queue, a few
// run at once, each within the function's timeout, and a failed one is
// retried twice.
package asyncinvoke

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pushgate/pushgate/internal/backoff"
)

// Limits of a Queue.
const (
	// Workers is how many invocations run at once.
	Workers = 8
	// QueueLength is how many invocations may wait for a worker.
	QueueLength = 1024
	// EnqueueWait is how long Invoke waits for room in a full queue before
	// failing, as a throttled Lambda would.
	EnqueueWait = 10 * time.Second
	// attempts is Lambda's: the first try and two retries.
	attempts = 3
)

// ErrClosed is returned by Invoke after Close.
var ErrClosed = errors.New("asyncinvoke: queue closed")

// Queue invokes one function's handler with payloads of type T.
type Queue[T any] struct {
	name    string
	run     func(context.Context, T) error
	timeout time.Duration
	log     *slog.Logger
	queue   chan queued[T]
	wg      sync.WaitGroup

	mu     sync.RWMutex
	closed bool
}

type queued[T any] struct {
	ctx     context.Context
	what    string
	payload T
}

// New starts the workers of a Queue for the function name, each
// invocation of run bounded by timeout (none if 0); Close stops them.
func New[T any](name string, run func(context.Context, T) error, timeout time.Duration, log *slog.Logger) *Queue[T] {
	q := &Queue[T]{name: name, run: run, timeout: timeout, log: log, queue: make(chan queued[T], QueueLength)}
	for range Workers {
		q.wg.Go(q.work)
	}
	return q
}

// Invoke queues one invocation and returns once it is queued; what names
// it in the log should it fail for good.
func (q *Queue[T]) Invoke(ctx context.Context, what string, payload T) error {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return ErrClosed
	}
	// The caller's request must not cancel the invocation it caused.
	j := queued[T]{ctx: context.WithoutCancel(ctx), what: what, payload: payload}
	select {
	case q.queue <- j:
		return nil
	default:
	}
	wait := time.NewTimer(EnqueueWait)
	defer wait.Stop()
	select {
	case q.queue <- j:
		return nil
	case <-wait.C:
		return fmt.Errorf("asyncinvoke: %s: %s: %d invocations already waiting", q.name, what, QueueLength)
	case <-ctx.Done():
		return fmt.Errorf("asyncinvoke: %s: %s: %w", q.name, what, ctx.Err())
	}
}

func (q *Queue[T]) work() {
	for j := range q.queue {
		for i := 1; ; i++ {
			err := q.once(j)
			if err == nil {
				break
			}
			if i == attempts {
				q.log.ErrorContext(j.ctx, "asynchronous invocation failed; dropped after retries",
					"function", q.name, "invocation", j.what, "error", err.Error())
				break
			}
			_ = backoff.Sleep(j.ctx, backoff.FullJitter(i, 100*time.Millisecond, time.Second))
		}
	}
}

func (q *Queue[T]) once(j queued[T]) error {
	ctx := j.ctx
	if q.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, q.timeout)
		defer cancel()
	}
	return q.run(ctx, j.payload)
}

// Close refuses further invocations, runs those queued and stops the
// workers.
func (q *Queue[T]) Close() {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.queue)
	}
	q.mu.Unlock()
	q.wg.Wait()
}
