// Package broadcast is the SNS-subscribed Lambda that pushes each published
// event to every connection in the event's room.
package broadcast

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushgate/pushgate/internal/domain"
	"github.com/pushgate/pushgate/internal/fanout"
	"github.com/pushgate/pushgate/internal/metrics"
	"github.com/pushgate/pushgate/internal/snspub"
	"github.com/pushgate/pushgate/internal/wire"
)

// Handler delivers SNS records to their rooms.
type Handler struct {
	conns domain.ConnectionStore
	fan   *fanout.Fanout
	log   *slog.Logger
}

// New returns a Handler listing recipients in conns and posting through fan.
func New(conns domain.ConnectionStore, fan *fanout.Fanout, log *slog.Logger) *Handler {
	return &Handler{conns: conns, fan: fan, log: log}
}

// Handle delivers every record. A record that is not a pushgate event is
// logged and skipped, since retrying cannot fix it. A record whose recipients
// could not be listed fails the invocation, so Lambda's asynchronous retries
// (and then the on-failure destination) keep it: a client may see an event
// twice — the eventId tells — but no room silently misses one.
func (h *Handler) Handle(ctx context.Context, ev events.SNSEvent) error {
	var errs []error
	for _, rec := range ev.Records {
		if err := h.record(ctx, rec); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (h *Handler) record(ctx context.Context, rec events.SNSEventRecord) error {
	start := time.Now()
	e, err := snspub.Decode(rec)
	if err != nil {
		h.log.ErrorContext(ctx, "broadcast skipped an undecodable record", "messageId", rec.SNS.MessageID, "error", err.Error())
		return nil
	}
	if !wire.ValidName(e.Room) {
		h.log.ErrorContext(ctx, "broadcast skipped a record with an invalid room", "messageId", rec.SNS.MessageID, "room", e.Room)
		return nil
	}
	res, err := h.fan.Deliver(ctx, wire.EventFrame(e), h.conns.Members(ctx, e.Room), "")
	elapsed := time.Since(start)
	posts := res.Delivered + res.Gone + res.Failed + res.Retried
	attrs := []any{
		"messageId", rec.SNS.MessageID, "eventId", e.EventID, "type", e.Type, "room", e.Room,
		"recipients", res.Recipients, "delivered", res.Delivered, "gone", res.Gone,
		"retried", res.Retried, "throttled", res.Throttled, "failed", res.Failed,
		"duration_ms", elapsed.Milliseconds(),
		"posts_per_second", float64(posts) / max(elapsed.Seconds(), 0.001),
		metrics.EMF(time.Now(),
			metrics.Metric{Name: "recipients", Unit: metrics.Count},
			metrics.Metric{Name: "delivered", Unit: metrics.Count},
			metrics.Metric{Name: "gone", Unit: metrics.Count},
			metrics.Metric{Name: "throttled", Unit: metrics.Count},
			metrics.Metric{Name: "failed", Unit: metrics.Count},
			metrics.Metric{Name: "duration_ms", Unit: metrics.Milliseconds},
			metrics.Metric{Name: "posts_per_second", Unit: metrics.PerSecond}),
	}
	if err != nil {
		h.log.ErrorContext(ctx, "broadcast could not list recipients", append(attrs, "error", err.Error())...)
		return fmt.Errorf("broadcast %s to room %s: %w", e.EventID, e.Room, err)
	}
	h.log.InfoContext(ctx, "broadcast", attrs...)
	return nil
}
