// Package snspub publishes pushgate events to an SNS topic and decodes the
// SNS records a subscribed Lambda receives.
package snspub

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/pushgate/pushgate/internal/domain"
	"github.com/pushgate/pushgate/internal/wire"
)

// API is the part of the SNS client the Publisher uses.
type API interface {
	Publish(ctx context.Context, in *sns.PublishInput, opts ...func(*sns.Options)) (*sns.PublishOutput, error)
}

// Publisher publishes events to one topic.
type Publisher struct {
	api   API
	topic string
}

// New returns a Publisher for topicARN.
func New(api API, topicARN string) *Publisher {
	return &Publisher{api: api, topic: topicARN}
}

// Attribute names set on every published message, so subscriptions can
// filter by room without reading the body.
const (
	AttrRoom = "room"
	AttrType = "type"
)

// Publish sends e as the message body, with its room and type also as
// message attributes.
func (p *Publisher) Publish(ctx context.Context, e domain.Event) error {
	body, err := e.MarshalJSON() // not json.Marshal, which re-escapes data
	if err != nil {
		return fmt.Errorf("snspub: encode event %s: %w", e.EventID, err)
	}
	_, err = p.api.Publish(ctx, &sns.PublishInput{
		TopicArn: aws.String(p.topic),
		Message:  aws.String(string(body)),
		MessageAttributes: map[string]types.MessageAttributeValue{
			AttrRoom: {DataType: aws.String("String"), StringValue: aws.String(e.Room)},
			AttrType: {DataType: aws.String("String"), StringValue: aws.String(e.Type)},
		},
	})
	if err != nil {
		return fmt.Errorf("snspub: publish event %s to %s: %w", e.EventID, p.topic, err)
	}
	return nil
}

// Decode reads the pushgate event carried by an SNS record.
func Decode(r events.SNSEventRecord) (domain.Event, error) {
	var e domain.Event
	if err := json.Unmarshal([]byte(r.SNS.Message), &e); err != nil {
		return e, fmt.Errorf("snspub: message %s is not an event: %w", r.SNS.MessageID, err)
	}
	if e.Room == "" || e.Type == "" {
		return e, fmt.Errorf("snspub: message %s lacks room or type", r.SNS.MessageID)
	}
	if e.Type != domain.EventItemPut && e.Type != domain.EventItemDeleted {
		return e, fmt.Errorf("snspub: message %s: unknown event type %s", r.SNS.MessageID, wire.Echo(e.Type))
	}
	if !wire.ValidName(e.Room) || !wire.ValidName(e.ID) {
		return e, fmt.Errorf("snspub: message %s: room %s or id %s is not a valid name", r.SNS.MessageID, wire.Echo(e.Room), wire.Echo(e.ID))
	}
	// Publish sets both attributes from the event; a record whose
	// attributes say otherwise was not made by Publish.
	for name, want := range map[string]string{AttrRoom: e.Room, AttrType: e.Type} {
		attr, ok := r.SNS.MessageAttributes[name].(map[string]any)
		if !ok {
			continue
		}
		if v, _ := attr["Value"].(string); v != want {
			return e, fmt.Errorf("snspub: message %s: attribute %s %s does not match the event's %q", r.SNS.MessageID, name, wire.Echo(v), want)
		}
	}
	return e, nil
}
