package testenv

import (
	"context"
	"slices"
	"sync"

	"github.com/aws/aws-lambda-go/events"
)

// SNSInbox stands in for an SNS-subscribed Lambda handler: it keeps every
// event it is given, safe for concurrent deliveries, and answers Err.
type SNSInbox struct {
	Err    error
	mu     sync.Mutex
	events []events.SNSEvent
}

// Deliver is the handler.
func (i *SNSInbox) Deliver(_ context.Context, ev events.SNSEvent) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.events = append(i.events, ev)
	return i.Err
}

// Events returns what was delivered so far.
func (i *SNSInbox) Events() []events.SNSEvent {
	i.mu.Lock()
	defer i.mu.Unlock()
	return slices.Clone(i.events)
}
