package snslocal

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// notification is the JSON body SNS POSTs to an HTTP(S) subscription.
type notification struct {
	Type              string                     `json:"Type"`
	MessageID         string                     `json:"MessageId"`
	TopicArn          string                     `json:"TopicArn"`
	Subject           string                     `json:"Subject"`
	Message           string                     `json:"Message"`
	Timestamp         time.Time                  `json:"Timestamp"`
	SignatureVersion  string                     `json:"SignatureVersion"`
	Signature         string                     `json:"Signature"`
	SigningCertURL    string                     `json:"SigningCertURL"`
	UnsubscribeURL    string                     `json:"UnsubscribeURL"`
	SubscribeURL      string                     `json:"SubscribeURL"`
	MessageAttributes map[string]json.RawMessage `json:"MessageAttributes"`
}

// MaxNotificationBytes bounds a notification body: SNS messages are at most
// 256 KB, plus the envelope.
const MaxNotificationBytes = 512 * 1024

// Receiver is an HTTP subscription endpoint: each notification is handed to
// deliver as a one-record events.SNSEvent, as Lambda would receive it. A
// failing deliver answers 500 so SNS retries the delivery.
func Receiver(subscriptionARN string, deliver func(context.Context, events.SNSEvent) error, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, MaxNotificationBytes))
		if err != nil {
			http.Error(w, "could not read body", http.StatusBadRequest)
			return
		}
		var n notification
		if err := json.Unmarshal(body, &n); err != nil {
			http.Error(w, "not an SNS message", http.StatusBadRequest)
			return
		}
		switch n.Type {
		case "Notification":
		case "SubscriptionConfirmation", "UnsubscribeConfirmation":
			// moto confirms HTTP subscriptions itself; against real SNS the
			// endpoint would have to visit SubscribeURL, which local use
			// never needs.
			log.Info("sns subscription message", "type", n.Type, "topic", n.TopicArn)
			w.WriteHeader(http.StatusOK)
			return
		default:
			http.Error(w, "unknown SNS message type", http.StatusBadRequest)
			return
		}
		rec := Record(n.TopicArn, n.MessageID, n.Message, n.Timestamp, attributes(n.MessageAttributes))
		rec.EventSubscriptionArn = subscriptionARN
		rec.SNS.Subject = n.Subject
		rec.SNS.SignatureVersion = n.SignatureVersion
		rec.SNS.Signature = n.Signature
		rec.SNS.SigningCertURL = n.SigningCertURL
		rec.SNS.UnsubscribeURL = n.UnsubscribeURL
		ev := events.SNSEvent{Records: []events.SNSEventRecord{rec}}
		if err := deliver(r.Context(), ev); err != nil {
			log.Error("sns notification delivery failed", "messageId", n.MessageID, "error", err.Error())
			http.Error(w, "delivery failed", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}

// attributes converts HTTP-notification attributes ({"Type","Value"}) into
// the Lambda event's shape, which is the same JSON.
func attributes(in map[string]json.RawMessage) map[string]any {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]any, len(in))
	for k, v := range in {
		var m map[string]any
		if json.Unmarshal(v, &m) == nil {
			out[k] = m
		}
	}
	return out
}
