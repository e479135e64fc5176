// Package fanout delivers one frame to many connections: bounded concurrent
// posts, retries with backoff for throttles and faults, pruning of gone
// connections. The broadcaster, the WebSocket relay and the local stack all
// deliver through it.
package fanout

import (
	"context"
	"errors"
	"iter"
	"sync"
	"time"

	"github.com/pushgate/pushgate/internal/backoff"
	"github.com/pushgate/pushgate/internal/domain"
)

// Pruner removes a connection that the Management API reported gone.
type Pruner interface {
	Delete(ctx context.Context, id string) error
}

// Options tune a Fanout; zero values take the defaults.
type Options struct {
	// Workers is how many posts run at once (default 32).
	Workers int
	// Attempts bounds tries per connection for retryable failures (default 4).
	Attempts int
	// BaseDelay is the first backoff; each retry doubles it, with full jitter
	// (default 50ms).
	BaseDelay time.Duration
	// MaxDelay caps one backoff (default 2s).
	MaxDelay time.Duration
}

// Fanout posts frames to connections.
type Fanout struct {
	poster domain.Poster
	pruner Pruner
	opt    Options
	// sleep waits between retries; tests replace it to run without delays.
	sleep func(ctx context.Context, d time.Duration) error
}

// New returns a Fanout that posts with p and deletes gone connections with pr.
func New(p domain.Poster, pr Pruner, opt Options) *Fanout {
	if opt.Workers <= 0 {
		opt.Workers = 32
	}
	if opt.Attempts <= 0 {
		opt.Attempts = 4
	}
	if opt.BaseDelay <= 0 {
		opt.BaseDelay = 50 * time.Millisecond
	}
	if opt.MaxDelay <= 0 {
		opt.MaxDelay = 2 * time.Second
	}
	return &Fanout{poster: p, pruner: pr, opt: opt, sleep: backoff.Sleep}
}

// Result counts what happened to each recipient of one delivery.
type Result struct {
	Recipients int `json:"recipients"`
	Delivered  int `json:"delivered"`
	Gone       int `json:"gone"`
	// Retried counts retry attempts, not connections.
	Retried int `json:"retried"`
	Failed  int `json:"failed"`
}

func (r *Result) add(o outcome) {
	r.Retried += o.retries
	switch {
	case o.gone:
		r.Gone++
	case o.err != nil:
		r.Failed++
	default:
		r.Delivered++
	}
}

type outcome struct {
	retries int
	gone    bool
	err     error
}

// Deliver posts frame to every connection id that pages yields, skipping
// exclude and duplicates. One connection's failure never stops the others;
// the error returned is the listing's, when pages fails, so the caller can
// have the whole delivery retried rather than lose recipients silently.
func (f *Fanout) Deliver(ctx context.Context, frame []byte, pages iter.Seq2[[]string, error], exclude string) (Result, error) {
	return f.deliver(ctx, frame, pages, exclude, f.opt.Workers)
}

// To delivers frame to the given connections.
func (f *Fanout) To(ctx context.Context, frame []byte, ids ...string) (Result, error) {
	pages := func(yield func([]string, error) bool) { yield(ids, nil) }
	return f.deliver(ctx, frame, pages, "", min(f.opt.Workers, max(len(ids), 1)))
}

func (f *Fanout) deliver(ctx context.Context, frame []byte, pages iter.Seq2[[]string, error], exclude string, workers int) (Result, error) {
	ids := make(chan string, workers)
	results := make(chan outcome, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				results <- f.deliverOne(ctx, id, frame)
			}
		}()
	}
	var res Result
	done := make(chan struct{})
	go func() {
		defer close(done)
		for o := range results {
			res.add(o)
		}
	}()

	var listErr error
	seen := make(map[string]struct{})
list:
	for page, err := range pages {
		if err != nil {
			listErr = err
			break
		}
		for _, id := range page {
			if id == exclude {
				continue
			}
			if _, dup := seen[id]; dup {
				continue
			}
			seen[id] = struct{}{}
			res.Recipients++
			select {
			case ids <- id:
			case <-ctx.Done():
				listErr = ctx.Err()
				break list
			}
		}
	}
	close(ids)
	wg.Wait()
	close(results)
	<-done
	return res, listErr
}

func (f *Fanout) deliverOne(ctx context.Context, id string, frame []byte) outcome {
	var o outcome
	for attempt := 1; ; attempt++ {
		err := f.poster.Post(ctx, id, frame)
		if err == nil {
			return o
		}
		var pe *domain.PostError
		isPost := errors.As(err, &pe)
		if isPost && pe.Gone() {
			o.gone = true
			if perr := f.pruner.Delete(ctx, id); perr != nil {
				// The TTL removes it later; the delivery itself is settled.
				o.err = perr
			}
			return o
		}
		if !isPost || !pe.Retryable() || attempt >= f.opt.Attempts || ctx.Err() != nil {
			o.err = err
			return o
		}
		if err := f.sleep(ctx, f.backoff(attempt)); err != nil {
			o.err = err
			return o
		}
		o.retries++
	}
}

// backoff is the wait before retry number attempt.
func (f *Fanout) backoff(attempt int) time.Duration {
	return backoff.FullJitter(attempt, f.opt.BaseDelay, f.opt.MaxDelay)
}
