package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushgate/pushgate/internal/auth"
	"github.com/pushgate/pushgate/internal/httpapi"
	"github.com/pushgate/pushgate/internal/local/memstore"
)

func eventsRequest(room string, query map[string]string) events.APIGatewayV2HTTPRequest {
	req := listRequest(room, query)
	req.RouteKey = "GET " + httpapi.EventsPath
	req.RawPath = "/rooms/" + room + "/events"
	return req
}

type eventsJSON struct {
	Events []struct {
		Action  string          `json:"action"`
		EventID string          `json:"eventId"`
		Seq     int64           `json:"seq"`
		Type    string          `json:"type"`
		ID      string          `json:"id"`
		Version int64           `json:"version"`
		Data    json.RawMessage `json:"data"`
	} `json:"events"`
	Last int64  `json:"last"`
	Next string `json:"next"`
}

// TestEvents: the room's history after a seq, in order, as pushed, paged.
func TestEvents(t *testing.T) {
	f := newFixture(t)
	f.put(t, "r", "a", `{"n":1}`)
	f.put(t, "r", "b", `{"n": 2}`)
	f.do(t, f.writer, itemRequest(http.MethodDelete, "r", "a"))
	f.put(t, "other", "x", `{}`)

	tests := []struct {
		name   string
		query  map[string]string
		seqs   []int64
		next   string
		status int
	}{
		{"all", nil, []int64{1, 2, 3}, "", 200},
		{"after 1", map[string]string{"after": "1"}, []int64{2, 3}, "", 200},
		{"after 1, one a page", map[string]string{"after": "1", "limit": "1"}, []int64{2}, "2", 200},
		{"the next page", map[string]string{"after": "2", "limit": "1"}, []int64{3}, "", 200},
		{"nothing after the last", map[string]string{"after": "3"}, nil, "", 200},
		{"a negative after", map[string]string{"after": "-1"}, nil, "", 400},
		{"after that is no number", map[string]string{"after": "x"}, nil, "", 400},
		{"a bad limit", map[string]string{"limit": "0"}, nil, "", 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := f.do(t, f.reader, eventsRequest("r", tc.query))
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d %s, want %d", resp.StatusCode, resp.Body, tc.status)
			}
			if tc.status != 200 {
				return
			}
			var got eventsJSON
			if err := json.Unmarshal([]byte(resp.Body), &got); err != nil {
				t.Fatal(err)
			}
			var seqs []int64
			for _, e := range got.Events {
				if e.Action != "event" || e.EventID == "" {
					t.Errorf("event %+v is not as pushed", e)
				}
				seqs = append(seqs, e.Seq)
			}
			if len(seqs) != len(tc.seqs) || got.Last != 3 || got.Next != tc.next {
				t.Fatalf("seqs %v last %d next %q; want %v, 3, %q", seqs, got.Last, got.Next, tc.seqs, tc.next)
			}
			for i := range seqs {
				if seqs[i] != tc.seqs[i] {
					t.Fatalf("seqs %v, want %v", seqs, tc.seqs)
				}
			}
		})
	}
	// Data byte for byte, as it was written.
	resp := f.do(t, f.reader, eventsRequest("r", map[string]string{"after": "1", "limit": "1"}))
	if !strings.Contains(resp.Body, `"data":{"n": 2}`) {
		t.Errorf("data not byte for byte: %s", resp.Body)
	}
	// The writer serves no history.
	if resp := f.do(t, f.writer, eventsRequest("r", nil)); resp.StatusCode != 405 {
		t.Errorf("writer GET events: %d", resp.StatusCode)
	}
}

// TestEventsExpired: history older than its TTL is gone; the answer says
// so, with the room's last seq to follow from after a reload.
func TestEventsExpired(t *testing.T) {
	store := memstore.NewItems()
	old := time.Now().Add(-2 * time.Hour)
	w := httpapi.NewWriter(store, &recordingPublisher{}, auth.Gate{}, nil, httpapi.WithHistoryTTL(time.Hour), httpapi.WithClock(func() time.Time { return old }))
	r := httpapi.NewReader(store, auth.Gate{}, nil)
	f := newFixture(t)
	f.do(t, w, putRequest("r", "a", `{}`))
	f.do(t, w, putRequest("r", "a", `{}`))
	resp := f.do(t, r, eventsRequest("r", map[string]string{"after": "0"}))
	if resp.StatusCode != http.StatusGone || !strings.Contains(resp.Body, `"code":"history_expired"`) || !strings.Contains(resp.Body, `"last":2`) {
		t.Fatalf("status %d %s; want 410 history_expired with last 2", resp.StatusCode, resp.Body)
	}
	if resp := f.do(t, r, eventsRequest("r", map[string]string{"after": "2"})); resp.StatusCode != 200 {
		t.Fatalf("after the last: %d %s", resp.StatusCode, resp.Body)
	}
}
