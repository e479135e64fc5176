package broadcast_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushgate/pushgate/internal/broadcast"
	"github.com/pushgate/pushgate/internal/domain"
	"github.com/pushgate/pushgate/internal/fanout"
	"github.com/pushgate/pushgate/internal/local/memstore"
	"github.com/pushgate/pushgate/internal/local/mgmtserver"
	"github.com/pushgate/pushgate/internal/snspub"
)

const topic = "arn:aws:sns:us-east-1:123456789012:pushgate-PushTopic"

// published is the record SNS delivers for e, attributes and all.
func published(t *testing.T, e domain.Event, messageID string) events.SNSEventRecord {
	t.Helper()
	r := record(t, e)
	r.SNS.MessageID, r.SNS.TopicArn = messageID, topic
	r.SNS.MessageAttributes = map[string]any{
		snspub.AttrRoom: map[string]any{"Type": "String", "Value": e.Room},
		snspub.AttrType: map[string]any{"Type": "String", "Value": e.Type},
	}
	return r
}

// TestHostileRecords: records SNS never made for our topic, or made and
// replayed, reach no socket; the broadcaster says why in its log and does
// not fail (a retry could not fix them).
func TestHostileRecords(t *testing.T) {
	event := domain.Event{EventID: "e1", Type: domain.EventItemPut, Room: "demo", ID: "note", Version: 1,
		Data: json.RawMessage(`{"x":1}`), Time: time.Unix(1700000000, 0).UTC()}
	tests := []struct {
		name string
		// records are handled in order; the last is the hostile one.
		records func(t *testing.T) []events.SNSEventRecord
		log     string
	}{
		{"a replayed record", func(t *testing.T) []events.SNSEventRecord {
			return []events.SNSEventRecord{published(t, event, "m1"), published(t, event, "m1")}
		}, "replayed"},
		{"a record of another topic", func(t *testing.T) []events.SNSEventRecord {
			r := published(t, event, "m1")
			r.SNS.TopicArn = "arn:aws:sns:us-east-1:999999999999:attacker"
			return []events.SNSEventRecord{r}
		}, "another topic"},
		{"a record of no topic", func(t *testing.T) []events.SNSEventRecord {
			r := published(t, event, "m1")
			r.SNS.TopicArn = ""
			return []events.SNSEventRecord{r}
		}, "another topic"},
		{"a room attribute that is not the event's", func(t *testing.T) []events.SNSEventRecord {
			r := published(t, event, "m1")
			r.SNS.MessageAttributes[snspub.AttrRoom] = map[string]any{"Type": "String", "Value": "other"}
			return []events.SNSEventRecord{r}
		}, "does not match"},
		{"an unknown event type", func(t *testing.T) []events.SNSEventRecord {
			e := event
			e.Type = "item.exploded"
			return []events.SNSEventRecord{published(t, e, "m1")}
		}, "unknown event type"},
		{"an invalid room", func(t *testing.T) []events.SNSEventRecord {
			e := event
			e.Room = "../demo"
			return []events.SNSEventRecord{published(t, e, "m1")}
		}, "not a valid name"},
		{"an invalid id", func(t *testing.T) []events.SNSEventRecord {
			e := event
			e.ID = "a b"
			return []events.SNSEventRecord{published(t, e, "m1")}
		}, "not a valid name"},
		{"a message that is not JSON", func(t *testing.T) []events.SNSEventRecord {
			r := published(t, event, "m1")
			r.SNS.Message = "{not json"
			return []events.SNSEventRecord{r}
		}, "undecodable"},
		{"data that is not JSON", func(t *testing.T) []events.SNSEventRecord {
			r := published(t, event, "m1")
			r.SNS.Message = strings.Replace(r.SNS.Message, `"data":{"x":1}`, `"data":{x}`, 1)
			return []events.SNSEventRecord{r}
		}, "undecodable"},
		{"an event too large to push", func(t *testing.T) []events.SNSEventRecord {
			e := event
			e.Data = json.RawMessage(`"` + strings.Repeat("a", 140<<10) + `"`)
			return []events.SNSEventRecord{published(t, e, "m1")}
		}, "too large"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			conns := memstore.NewConnections()
			rec := mgmtserver.NewRecorder()
			if err := conns.Put(ctx, domain.Connection{ID: "c1", Rooms: []string{"demo"}, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			rec.Open("c1")
			var logs bytes.Buffer
			h := broadcast.New(conns, fanout.New(rec, conns, fanout.Options{}), broadcast.Settings{Topic: topic, Receipts: conns}, slog.New(slog.NewJSONHandler(&logs, nil)))
			records := tc.records(t)
			for _, r := range records {
				if err := h.Handle(ctx, events.SNSEvent{Records: []events.SNSEventRecord{r}}); err != nil {
					t.Fatalf("Handle failed: %v; a retry cannot fix a hostile record", err)
				}
			}
			// Only the good first record of a replay is delivered.
			want := len(records) - 1
			if got := len(rec.Frames("c1")); got != want {
				t.Fatalf("c1 got %d frames, want %d", got, want)
			}
			if !strings.Contains(logs.String(), tc.log) {
				t.Errorf("log lacks %q:\n%s", tc.log, logs.String())
			}
		})
	}
}

// TestRedeliveryAfterAFailedDeliveryIsNotDropped: a receipt is written only
// once the room was listed, so Lambda's retry of a failed record delivers.
func TestRedeliveryAfterAFailedDeliveryIsNotDropped(t *testing.T) {
	ctx := context.Background()
	conns := memstore.NewConnections(memstore.WithPageSize(1))
	rec := mgmtserver.NewRecorder()
	for _, id := range []string{"a", "b"} {
		_ = conns.Put(ctx, domain.Connection{ID: id, Rooms: []string{"demo"}, ExpiresAt: time.Now().Add(time.Hour)})
		rec.Open(id)
	}
	e := domain.Event{EventID: "e1", Type: domain.EventItemPut, Room: "demo", ID: "n", Version: 1, Time: time.Now()}
	r := published(t, e, "m1")
	broken := broadcast.New(brokenListing{conns}, fanout.New(rec, conns, fanout.Options{}), broadcast.Settings{Topic: topic, Receipts: conns}, slog.New(slog.DiscardHandler))
	if err := broken.Handle(ctx, events.SNSEvent{Records: []events.SNSEventRecord{r}}); err == nil {
		t.Fatal("a failed listing did not fail the invocation")
	}
	h := broadcast.New(conns, fanout.New(rec, conns, fanout.Options{}), broadcast.Settings{Topic: topic, Receipts: conns}, slog.New(slog.DiscardHandler))
	if err := h.Handle(ctx, events.SNSEvent{Records: []events.SNSEventRecord{r}}); err != nil {
		t.Fatal(err)
	}
	if len(rec.Frames("b")) == 0 {
		t.Fatal("the retry was dropped as a replay")
	}
}
