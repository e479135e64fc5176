package snslocal

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushgate/pushgate/internal/domain"
	"github.com/pushgate/pushgate/internal/local/asyncinvoke"
	"github.com/pushgate/pushgate/internal/snspub"
)

// Direct is a Publisher without SNS: each event reaches deliver as the
// one-record events.SNSEvent a subscribed Lambda receives, through
// Lambda's asynchronous invocation as asyncinvoke runs it (bounded queue
// and workers, two retries). A publisher that outpaces delivery waits for
// room in the queue, and fails after asyncinvoke.EnqueueWait, as a
// throttled SNS would.
type Direct struct {
	topic string
	queue *asyncinvoke.Queue[events.SNSEvent]
}

// Delivery limits of a Direct.
const (
	// Workers is how many deliveries run at once.
	Workers = asyncinvoke.Workers
	// QueueLength is how many published events may wait for a worker.
	QueueLength = asyncinvoke.QueueLength
)

// ErrClosed is returned by Publish after Close.
var ErrClosed = asyncinvoke.ErrClosed

// NewDirect returns a Direct publisher for topicARN to the function name,
// each delivery within timeout (none if 0), and starts its workers; Close
// stops them.
func NewDirect(topicARN, name string, deliver func(context.Context, events.SNSEvent) error, timeout time.Duration, log *slog.Logger) *Direct {
	return &Direct{topic: topicARN, queue: asyncinvoke.New(name, deliver, timeout, log)}
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
	if err := d.queue.Invoke(ctx, "event "+e.EventID, ev); err != nil {
		return fmt.Errorf("snslocal: %w", err)
	}
	return nil
}

// Close refuses further events, delivers those queued and stops the
// workers.
func (d *Direct) Close() { d.queue.Close() }

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
