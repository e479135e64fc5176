// Package outbox is the outbox sweeper: it publishes the events whose
// publish right after their write failed, so a write and its event cannot
// diverge.
package outbox

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushgate/pushgate/internal/domain"
)

// DefaultGrace is how old an event on the outbox must be before the
// sweeper takes it: a write publishes its own within its timeout.
const DefaultGrace = 30 * time.Second

// pageSize is how many events one read of the outbox takes.
const pageSize = 500

// deadlineMargin is left of an invocation: what the sweeper has claimed
// and not published by then is on the outbox again after Grace.
const deadlineMargin = 3 * time.Second

// Sweeper publishes what is left on the outbox.
type Sweeper struct {
	store domain.Outbox
	pub   domain.Publisher
	grace time.Duration
	log   *slog.Logger
	now   func() time.Time
}

// New returns a sweeper of store's outbox that publishes with pub the
// events older than grace.
func New(store domain.Outbox, pub domain.Publisher, grace time.Duration, log *slog.Logger) *Sweeper {
	if grace <= 0 {
		grace = DefaultGrace
	}
	return &Sweeper{store: store, pub: pub, grace: grace, log: log, now: time.Now}
}

// WithClock replaces time.Now, for tests.
func (s *Sweeper) WithClock(now func() time.Time) *Sweeper {
	s.now = now
	return s
}

// Result counts one sweep.
type Result struct {
	// Found were listed; Claimed were still pending when taken (the rest
	// another sweeper or their write published meanwhile).
	Found, Claimed, Published, Failed int
}

// Handle is the Lambda handler for the scheduled (EventBridge) event.
func (s *Sweeper) Handle(ctx context.Context, _ events.EventBridgeEvent) error {
	start := time.Now()
	r, err := s.Sweep(ctx)
	attrs := []slog.Attr{
		slog.Int("found", r.Found), slog.Int("claimed", r.Claimed),
		slog.Int("published", r.Published), slog.Int("failed", r.Failed),
		slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
	}
	level := slog.LevelInfo
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
		level = slog.LevelError
	} else if r.Failed > 0 || r.Published > 0 {
		// Each one is a publish a write could not make.
		level = slog.LevelWarn
	}
	s.log.LogAttrs(ctx, level, "sweep", attrs...)
	return err
}

// Sweep publishes the events on the outbox for longer than the grace,
// each room's in seq order. An event whose publish fails again stays on
// the outbox for the next sweep; only failing to read the outbox is an
// error (the invocation is retried).
func (s *Sweeper) Sweep(ctx context.Context) (Result, error) {
	var r Result
	deadline, hasDeadline := ctx.Deadline()
	// What this sweep tried: one that failed is left to the next sweep,
	// not tried again as soon as its claim is older than the grace.
	tried := map[string]bool{}
	for {
		now := s.now()
		if hasDeadline && time.Until(deadline) < deadlineMargin {
			return r, nil
		}
		listed, err := s.store.Unpublished(ctx, now.Add(-s.grace), pageSize)
		if err != nil {
			return r, fmt.Errorf("outbox: %w", err)
		}
		pending := listed[:0]
		for _, p := range listed {
			if !tried[p.Event.EventID] {
				tried[p.Event.EventID] = true
				pending = append(pending, p)
			}
		}
		r.Found += len(pending)
		slices.SortFunc(pending, func(a, b domain.Pending) int {
			return cmp.Or(cmp.Compare(a.Event.Room, b.Event.Room), cmp.Compare(a.Event.Seq, b.Event.Seq))
		})
		for _, p := range pending {
			if err := s.publish(ctx, p, now, &r); err != nil {
				s.log.LogAttrs(ctx, slog.LevelError, "sweep publish", slog.String("room", p.Event.Room),
					slog.Int64("seq", p.Event.Seq), slog.String("event_id", p.Event.EventID), slog.String("error", err.Error()))
			}
		}
		// A claimed event is newer than the grace now, so the next read
		// lists what this one did not reach; nothing new ends the sweep.
		if len(pending) == 0 || ctx.Err() != nil {
			return r, nil
		}
	}
}

func (s *Sweeper) publish(ctx context.Context, p domain.Pending, now time.Time, r *Result) error {
	won, err := s.store.Claim(ctx, p, now)
	if err != nil {
		r.Failed++
		return err
	}
	if !won {
		return nil
	}
	r.Claimed++
	if err := s.pub.Publish(ctx, p.Event); err != nil {
		r.Failed++
		return fmt.Errorf("publish: %w", err)
	}
	r.Published++
	if err := s.store.MarkPublished(ctx, p.Event.Room, p.Event.Seq); err != nil {
		// It is published; the next sweep publishes it again, and clients
		// drop the duplicate by its seq.
		return fmt.Errorf("mark published: %w", err)
	}
	return nil
}
