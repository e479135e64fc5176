// Package broadcast is the SNS-subscribed Lambda that pushes each published
// event to every connection in the event's room.
package broadcast

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushgate/pushgate/internal/domain"
	"github.com/pushgate/pushgate/internal/fanout"
	"github.com/pushgate/pushgate/internal/metrics"
	"github.com/pushgate/pushgate/internal/snspub"
	"github.com/pushgate/pushgate/internal/wire"
)

// Settings say which records the broadcaster takes.
type Settings struct {
	// Topic is the ARN of the topic whose records are delivered; a
	// record of any other is refused.
	Topic string
	// Receipts remember delivered messages, so a replayed record is
	// dropped; nil keeps none.
	Receipts domain.Receipts
}

// ReceiptTTL is how long a delivered message's receipt is kept: longer than
// SNS and Lambda retry (Lambda gives up on an event after the template's
// MaximumEventAgeInSeconds, an hour).
const ReceiptTTL = 24 * time.Hour

// Handler delivers SNS records to their rooms.
type Handler struct {
	conns domain.ConnectionStore
	fan   *fanout.Fanout
	set   Settings
	log   *slog.Logger
}

// New returns a Handler listing recipients in conns and posting through fan.
func New(conns domain.ConnectionStore, fan *fanout.Fanout, set Settings, log *slog.Logger) *Handler {
	return &Handler{conns: conns, fan: fan, set: set, log: log}
}

// Invocation is what the broadcaster receives: the SNS event of a
// published write, or a share of a big room's delivery that another
// invocation handed to it.
type Invocation struct {
	Records []events.SNSEventRecord `json:"Records,omitempty"`
	Share   *fanout.Share           `json:"pushgateShare,omitempty"`
}

// Invoke handles either kind of Invocation; the Lambda's main passes it to
// lambda.Start.
func (h *Handler) Invoke(ctx context.Context, payload json.RawMessage) error {
	var inv Invocation
	if err := json.Unmarshal(payload, &inv); err != nil {
		// Retrying cannot fix it: log, do not fail.
		h.log.ErrorContext(ctx, "broadcast skipped an undecodable invocation", "error", err.Error(), "bytes", len(payload))
		return nil
	}
	if inv.Share != nil {
		return h.HandleShare(ctx, *inv.Share)
	}
	return h.Handle(ctx, events.SNSEvent{Records: inv.Records})
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
	id := rec.SNS.MessageID
	if h.set.Topic != "" && rec.SNS.TopicArn != h.set.Topic {
		h.log.ErrorContext(ctx, "broadcast refused a record of another topic", "messageId", wire.Echo(id), "topic", wire.Echo(rec.SNS.TopicArn))
		return nil
	}
	e, err := snspub.Decode(rec)
	if err != nil {
		h.log.ErrorContext(ctx, "broadcast skipped an undecodable record", "messageId", wire.Echo(id), "error", err.Error())
		return nil
	}
	frame := wire.EventFrame(e)
	if len(frame) > wire.MaxMessageBytes {
		h.log.ErrorContext(ctx, "broadcast skipped an event too large to push", "messageId", wire.Echo(id), "bytes", len(frame))
		return nil
	}
	if h.set.Receipts != nil && id != "" {
		// Asked before, marked after: a delivery cut short (a timeout, a
		// crash) is retried in full. Unknown is not a reason to drop it.
		if done, err := h.set.Receipts.Delivered(ctx, id); err != nil {
			h.log.WarnContext(ctx, "broadcast could not read the receipts; delivering", "messageId", id, "error", err.Error())
		} else if done {
			h.log.InfoContext(ctx, "broadcast dropped a replayed record", "messageId", id, "eventId", e.EventID, "room", e.Room, "replayed", 1)
			return nil
		}
	}
	res, err := h.fan.Deliver(ctx, fanout.Delivery{Frame: frame, Recipients: h.conns.Members(ctx, e.Room), Origin: e.EventID})
	attrs := append([]any{"messageId", rec.SNS.MessageID, "eventId", e.EventID, "type", e.Type, "room", e.Room},
		summary(res, time.Since(start), true)...)
	if err != nil {
		h.log.ErrorContext(ctx, "broadcast could not list recipients", append(attrs, "error", err.Error())...)
		return fmt.Errorf("broadcast %s to room %s: %w", e.EventID, e.Room, err)
	}
	if h.set.Receipts != nil && id != "" {
		if err := h.set.Receipts.MarkDelivered(ctx, id, time.Now().Add(ReceiptTTL)); err != nil {
			// Delivered all the same; a replay would be delivered again.
			attrs = append(attrs, "receipt_error", err.Error())
		}
	}
	h.log.InfoContext(ctx, "broadcast", attrs...)
	return nil
}

// HandleShare posts a share of a delivery. Its recipients were listed
// already, so nothing is worth retrying: it fails only when the share is
// malformed.
func (h *Handler) HandleShare(ctx context.Context, s fanout.Share) error {
	start := time.Now()
	if len(s.Frame) == 0 || !utf8.Valid(s.Frame) {
		h.log.ErrorContext(ctx, "broadcast skipped a share without a valid frame", "origin", s.Origin, "ids", len(s.IDs))
		return nil
	}
	res, err := h.fan.DeliverShare(ctx, s)
	attrs := append([]any{"origin", s.Origin, "depth", s.Depth, "rate", s.Rate}, summary(res, time.Since(start), false)...)
	if err != nil {
		h.log.ErrorContext(ctx, "broadcast share failed", append(attrs, "error", err.Error())...)
		return nil
	}
	h.log.InfoContext(ctx, "broadcast share", attrs...)
	return nil
}

// summary is the log attributes, CloudWatch metrics included, of one
// delivery: counts, duration and posts per second. Only the invocation
// that listed the room counts recipients, so the metrics of its shares
// add up to the delivery's.
func summary(res fanout.Result, elapsed time.Duration, listed bool) []any {
	posts := res.Delivered + res.Gone + res.Failed + res.Retried
	attrs := append(res.LogAttrs(),
		"duration_ms", elapsed.Milliseconds(),
		"posts_per_second", float64(posts)/max(elapsed.Seconds(), 0.001))
	var ms []metrics.Metric
	if listed {
		ms = append(ms, metrics.Metric{Name: "recipients", Unit: metrics.Count})
	}
	ms = append(ms,
		metrics.Metric{Name: "delivered", Unit: metrics.Count},
		metrics.Metric{Name: "gone", Unit: metrics.Count},
		metrics.Metric{Name: "throttled", Unit: metrics.Count},
		metrics.Metric{Name: "failed", Unit: metrics.Count},
		metrics.Metric{Name: "shared", Unit: metrics.Count},
		metrics.Metric{Name: "duration_ms", Unit: metrics.Milliseconds},
		metrics.Metric{Name: "posts_per_second", Unit: metrics.PerSecond})
	return append(attrs, metrics.EMF(time.Now(), ms...))
}

// Invoker starts a function asynchronously with a JSON payload (Lambda's
// Invoke with InvocationType Event).
type Invoker interface {
	Invoke(ctx context.Context, payload []byte) error
}

// Shares returns the fan-out Dispatcher that hands each share to the
// broadcaster through inv, as an Invocation.
func Shares(inv Invoker) fanout.Dispatcher { return shareDispatcher{inv} }

type shareDispatcher struct{ inv Invoker }

func (d shareDispatcher) Dispatch(ctx context.Context, s fanout.Share) error {
	payload, err := json.Marshal(Invocation{Share: &s})
	if err != nil {
		return fmt.Errorf("broadcast: encode share: %w", err)
	}
	return d.inv.Invoke(ctx, payload)
}
