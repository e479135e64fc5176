package snslocal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushgate/pushgate/internal/backoff"
	"github.com/pushgate/pushgate/internal/domain"
	"github.com/pushgate/pushgate/internal/snspub"
)

// Direct is a Publisher without SNS: each event reaches deliver as the
// one-record events.SNSEvent a subscribed Lambda receives. Delivery is
// asynchronous, by a fixed number of workers, and retried twice on
// failure, as Lambda's asynchronous invocation is. Events wait in a
// bounded queue: a publisher that outpaces delivery waits for room, and
// fails after PublishWait, as a throttled SNS would.
type Direct struct {
	topic   string
	deliver func(context.Context, events.SNSEvent) error
	log     *slog.Logger
	queue   chan queued
	wg      sync.WaitGroup

	mu     sync.RWMutex
	closed bool
}

type queued struct {
	ctx     context.Context
	eventID string
	ev      events.SNSEvent
}

// Delivery limits of a Direct.
const (
	// Workers is how many deliveries run at once.
	Workers = 8
	// QueueLength is how many published events may wait for a worker.
	QueueLength = 1024
	// PublishWait is how long Publish waits for room in a full queue.
	PublishWait = 10 * time.Second
)

// ErrClosed is returned by Publish after Close.
var ErrClosed = errors.New("snslocal: publisher closed")

// NewDirect returns a Direct publisher for topicARN and starts its
// workers; Close stops them.
func NewDirect(topicARN string, deliver func(context.Context, events.SNSEvent) error, log *slog.Logger) *Direct {
	d := &Direct{topic: topicARN, deliver: deliver, log: log, queue: make(chan queued, QueueLength)}
	for range Workers {
		d.wg.Go(d.work)
	}
	return d
}

// Publish queues delivery of e.
func (d *Direct) Publish(ctx context.Context, e domain.Event) error {
	body, err := e.MarshalJSON()
	if err != nil {
		return fmt.Errorf("snslocal: encode event %s: %w", e.EventID, err)
	}
	ev := events.SNSEvent{Records: []events.SNSEventRecord{Record(d.topic, domain.NewID(), string(body), time.Now(), map[string]any{
		snspub.AttrRoom: map[string]any{"Type": "String", "Value": e.Room},
		snspub.AttrType: map[string]any{"Type": "String", "Value": e.Type},
	})}}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return ErrClosed
	}
	// The write's request must not cancel the delivery it caused.
	q := queued{ctx: context.WithoutCancel(ctx), eventID: e.EventID, ev: ev}
	select {
	case d.queue <- q:
		return nil
	default:
	}
	wait := time.NewTimer(PublishWait)
	defer wait.Stop()
	select {
	case d.queue <- q:
		return nil
	case <-wait.C:
		return fmt.Errorf("snslocal: event %s: %d deliveries already waiting", e.EventID, QueueLength)
	case <-ctx.Done():
		return fmt.Errorf("snslocal: event %s: %w", e.EventID, ctx.Err())
	}
}

func (d *Direct) work() {
	for q := range d.queue {
		const attempts = 3
		for i := 1; ; i++ {
			err := d.deliver(q.ctx, q.ev)
			if err == nil {
				break
			}
			if i == attempts {
				d.log.ErrorContext(q.ctx, "event delivery failed; dropped after retries", "eventId", q.eventID, "error", err.Error())
				break
			}
			_ = backoff.Sleep(q.ctx, backoff.FullJitter(i, 100*time.Millisecond, time.Second))
		}
	}
}

// Close refuses further events, delivers those queued and stops the
// workers.
func (d *Direct) Close() {
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		close(d.queue)
	}
	d.mu.Unlock()
	d.wg.Wait()
}

// Record builds the SNS record a subscribed Lambda receives.
func Record(topicARN, messageID, message string, ts time.Time, attrs map[string]any) events.SNSEventRecord {
	return events.SNSEventRecord{
		EventVersion:         "1.0",
		EventSource:          "aws:sns",
		EventSubscriptionArn: topicARN + ":" + messageID,
		SNS: events.SNSEntity{
			Type:              "Notification",
			MessageID:         messageID,
			TopicArn:          topicARN,
			Message:           message,
			Timestamp:         ts.UTC(),
			SignatureVersion:  "1",
			MessageAttributes: attrs,
		},
	}
}
