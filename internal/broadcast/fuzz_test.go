package broadcast_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/pushgate/pushgate/internal/broadcast"
	"github.com/pushgate/pushgate/internal/domain"
	"github.com/pushgate/pushgate/internal/fanout"
	"github.com/pushgate/pushgate/internal/local/memstore"
	"github.com/pushgate/pushgate/internal/local/mgmtserver"
)

// FuzzInvoke hands the broadcaster any payload, as a Lambda invocation
// could carry (an SNS event, a share, neither). It never fails the
// invocation (the store works, so a retry could not do better), and
// whatever reaches the room's socket is valid UTF-8 JSON within API
// Gateway's frame limit.
func FuzzInvoke(f *testing.F) {
	e := domain.Event{EventID: "e1", Type: domain.EventItemPut, Room: "demo", ID: "n", Version: 1, Data: json.RawMessage(`{"x":1}`), Time: time.Unix(1, 0).UTC()}
	body, _ := e.MarshalJSON()
	good, _ := json.Marshal(map[string]any{"Records": []any{map[string]any{"EventSource": "aws:sns", "Sns": map[string]any{
		"MessageId": "m1", "TopicArn": topic, "Message": string(body),
		"MessageAttributes": map[string]any{"room": map[string]any{"Type": "String", "Value": "demo"}}}}}})
	for _, s := range []string{
		string(good), `{}`, `null`, `[]`, `{"Records":[{"Sns":{"Message":"{}"}}]}`,
		`{"pushgateShare":{"frame":"eyJhIjoxfQ==","ids":["c1"],"origin":"o","depth":1,"rate":10}}`,
		`{"pushgateShare":{"frame":"/w==","ids":["c1"]}}`, `{"Records":null,"pushgateShare":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		ctx := context.Background()
		conns := memstore.NewConnections()
		rec := mgmtserver.NewRecorder()
		_ = conns.Put(ctx, domain.Connection{ID: "c1", Rooms: []string{"demo"}, ExpiresAt: time.Now().Add(time.Hour)})
		rec.Open("c1")
		h := broadcast.New(conns, fanout.New(rec, conns, fanout.Options{Workers: 2, Attempts: 1}), broadcast.Settings{Topic: topic, Receipts: conns}, slog.New(slog.DiscardHandler))
		if err := h.Invoke(ctx, payload); err != nil {
			t.Fatalf("Invoke(%q) failed: %v", payload, err)
		}
		for _, fr := range rec.Frames("c1") {
			if !utf8.Valid(fr) || len(fr) > 128<<10 {
				t.Fatalf("pushed %q", fr)
			}
		}
	})
}
