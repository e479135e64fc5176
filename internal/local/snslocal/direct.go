package snslocal

import (
	"context"
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
// asynchronous and retried twice on failure, as Lambda's asynchronous
// invocation is.
type Direct struct {
	topic   string
	deliver func(context.Context, events.SNSEvent) error
	log     *slog.Logger
	wg      sync.WaitGroup
}

// NewDirect returns a Direct publisher for topicARN.
func NewDirect(topicARN string, deliver func(context.Context, events.SNSEvent) error, log *slog.Logger) *Direct {
	return &Direct{topic: topicARN, deliver: deliver, log: log}
}

// Publish schedules delivery of e.
func (d *Direct) Publish(ctx context.Context, e domain.Event) error {
	body, err := e.MarshalJSON()
	if err != nil {
		return fmt.Errorf("snspub: encode event %s: %w", e.EventID, err)
	}
	ev := events.SNSEvent{Records: []events.SNSEventRecord{Record(d.topic, domain.NewID(), string(body), time.Now(), map[string]any{
		snspub.AttrRoom: map[string]any{"Type": "String", "Value": e.Room},
		snspub.AttrType: map[string]any{"Type": "String", "Value": e.Type},
	})}}
	// The write's request must not cancel the delivery it caused.
	ctx = context.WithoutCancel(ctx)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		const attempts = 3
		for i := 1; ; i++ {
			err := d.deliver(ctx, ev)
			if err == nil {
				return
			}
			if i == attempts {
				d.log.ErrorContext(ctx, "event delivery failed; dropped after retries", "eventId", e.EventID, "error", err.Error())
				return
			}
			_ = backoff.Sleep(ctx, backoff.FullJitter(i, 100*time.Millisecond, time.Second))
		}
	}()
	return nil
}

// Wait blocks until every scheduled delivery has finished.
func (d *Direct) Wait() { d.wg.Wait() }

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
