package wsapi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushgate/pushgate/internal/domain"
	"github.com/pushgate/pushgate/internal/fanout"
	"github.com/pushgate/pushgate/internal/local/memstore"
	"github.com/pushgate/pushgate/internal/local/mgmtserver"
	"github.com/pushgate/pushgate/internal/metrics"
	"github.com/pushgate/pushgate/internal/wsapi"
)

// failingStore fails every write, to check nothing is half-stored.
type failingStore struct{ *memstore.Connections }

func (failingStore) Put(context.Context, domain.Connection) error { return errors.New("dynamo down") }

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

type fixture struct {
	h     *wsapi.Handler
	conns *memstore.Connections
	rec   *mgmtserver.Recorder
	logs  *bytes.Buffer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	conns := memstore.NewConnections(memstore.WithPageSize(2))
	rec := mgmtserver.NewRecorder()
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil)).With("function", "ConnectionFunction")
	fan := fanout.New(rec, conns, fanout.Options{Workers: 4})
	h := wsapi.New(conns, fan, wsapi.Settings{TTL: 2*time.Hour + 10*time.Minute}, log).WithClock(func() time.Time { return t0 })
	return &fixture{h: h, conns: conns, rec: rec, logs: logs}
}

func wsEvent(route, id, body string, query map[string]string) events.APIGatewayWebsocketProxyRequest {
	eventType := "MESSAGE"
	switch route {
	case wsapi.RouteConnect:
		eventType = "CONNECT"
	case wsapi.RouteDisconnect:
		eventType = "DISCONNECT"
	}
	return events.APIGatewayWebsocketProxyRequest{
		QueryStringParameters: query,
		Body:                  body,
		RequestContext: events.APIGatewayWebsocketProxyRequestContext{
			RouteKey:     route,
			EventType:    eventType,
			ConnectionID: id,
			ConnectedAt:  t0.Add(-time.Minute).UnixMilli(),
			Stage:        "prod",
			Identity:     events.APIGatewayRequestIdentity{SourceIP: "203.0.113.9", UserAgent: "test-agent"},
		},
	}
}

// connect opens id in room, and in the recorder so posts reach it.
func (f *fixture) connect(t *testing.T, id, room string) {
	t.Helper()
	q := map[string]string{}
	if room != "" {
		q["room"] = room
	}
	resp, _ := f.h.Handle(context.Background(), wsEvent(wsapi.RouteConnect, id, "", q))
	if resp.StatusCode != 200 {
		t.Fatalf("connect %s: %d %s", id, resp.StatusCode, resp.Body)
	}
	f.rec.Open(id)
}

func (f *fixture) send(t *testing.T, id, body string) events.APIGatewayProxyResponse {
	t.Helper()
	resp, err := f.h.Handle(context.Background(), wsEvent(wsapi.RouteDefault, id, body, nil))
	if err != nil {
		t.Fatalf("handler returned an error: %v", err)
	}
	return resp
}

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("not JSON: %q", s)
	}
	return m
}

func TestConnectStoresConnection(t *testing.T) {
	f := newFixture(t)
	f.connect(t, "c1", "")
	f.connect(t, "c2", "game")
	c, err := f.conns.Get(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	want := domain.Connection{
		ID: "c1", ConnectedAt: t0.Add(-time.Minute), LastSeenAt: t0, SourceIP: "203.0.113.9",
		UserAgent: "test-agent", Rooms: []string{"lobby"}, ExpiresAt: t0.Add(-time.Minute + 2*time.Hour + 10*time.Minute),
	}
	if !c.ConnectedAt.Equal(want.ConnectedAt) || !c.ExpiresAt.Equal(want.ExpiresAt) || c.SourceIP != want.SourceIP ||
		c.UserAgent != want.UserAgent || !slices.Equal(c.Rooms, want.Rooms) {
		t.Errorf("stored %+v\nwant   %+v", c, want)
	}
	c2, _ := f.conns.Get(context.Background(), "c2")
	if !slices.Equal(c2.Rooms, []string{"game"}) {
		t.Errorf("c2 rooms = %v", c2.Rooms)
	}
}

// TestReplayedConnectIsIdempotent: a $connect replayed for an id that
// already has a record leaves it in exactly the room it asks for.
func TestReplayedConnectIsIdempotent(t *testing.T) {
	f := newFixture(t)
	f.connect(t, "c1", "a")
	f.send(t, "c1", `{"action":"subscribe","room":"b"}`)
	f.connect(t, "c2", "a")
	f.connect(t, "c1", "c")
	c, _ := f.conns.Get(context.Background(), "c1")
	if !slices.Equal(c.Rooms, []string{"c"}) {
		t.Errorf("rooms after the replay = %v, want [c]", c.Rooms)
	}
	f.send(t, "c2", `{"action":"update","target":"*","number":1}`)
	if got := f.rec.Frames("c1"); len(got) != 0 {
		t.Errorf("a relay to room a still reached c1: %s", got)
	}
}

func TestConnectRejects(t *testing.T) {
	tests := []struct {
		name   string
		h      func(f *fixture) *wsapi.Handler
		room   string
		status int
		code   string
	}{
		{"invalid room", nil, "no spaces", 400, domain.CodeInvalidRoom},
		{"store failure", func(f *fixture) *wsapi.Handler {
			return wsapi.New(failingStore{f.conns}, nil, wsapi.Settings{TTL: time.Hour}, slog.New(slog.NewJSONHandler(f.logs, nil)))
		}, "ok", 500, domain.CodeInternal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			h := f.h
			if tc.h != nil {
				h = tc.h(f)
			}
			resp, _ := h.Handle(context.Background(), wsEvent(wsapi.RouteConnect, "c1", "", map[string]string{"room": tc.room}))
			if resp.StatusCode != tc.status || decode(t, resp.Body)["code"] != tc.code {
				t.Errorf("got %d %s", resp.StatusCode, resp.Body)
			}
			if strings.Contains(resp.Body, "dynamo down") {
				t.Error("internal error detail leaked to the client")
			}
			if tc.status >= 500 && !strings.Contains(f.logs.String(), "dynamo down") {
				t.Errorf("the store failure was not logged: %s", f.logs.String())
			}
			if _, err := f.conns.Get(context.Background(), "c1"); !errors.Is(err, domain.ErrNotFound) {
				t.Errorf("connection stored after a rejected connect: %v", err)
			}
		})
	}
}

func TestDisconnectRemovesConnectionAndMemberships(t *testing.T) {
	f := newFixture(t)
	f.connect(t, "c1", "a")
	f.send(t, "c1", `{"action":"subscribe","room":"b"}`)
	resp, _ := f.h.Handle(context.Background(), wsEvent(wsapi.RouteDisconnect, "c1", "", nil))
	if resp.StatusCode != 200 {
		t.Fatalf("disconnect: %d", resp.StatusCode)
	}
	if _, err := f.conns.Get(context.Background(), "c1"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("connection still stored: %v", err)
	}
	for _, room := range []string{"a", "b"} {
		for page, err := range f.conns.Members(context.Background(), room) {
			if err != nil || len(page) > 0 {
				t.Errorf("room %s still lists %v (%v)", room, page, err)
			}
		}
	}
}

func TestMessages(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		b64    bool
		action string
		code   string
		check  func(t *testing.T, f *fixture, frame map[string]any)
	}{
		{name: "ping", body: `{"action":"ping"}`, action: "pong", check: func(t *testing.T, f *fixture, m map[string]any) {
			if m["time"] != float64(t0.UnixMilli()) {
				t.Errorf("pong time = %v", m["time"])
			}
			c, _ := f.conns.Get(context.Background(), "c1")
			if !c.LastSeenAt.Equal(t0) {
				t.Errorf("last seen not refreshed: %v", c.LastSeenAt)
			}
		}},
		{name: "subscribe", body: `{"action":"subscribe","room":"news"}`, action: "ack", check: func(t *testing.T, f *fixture, m map[string]any) {
			c, _ := f.conns.Get(context.Background(), "c1")
			if m["of"] != "subscribe" || m["room"] != "news" || !slices.Contains(c.Rooms, "news") {
				t.Errorf("ack %v, rooms %v", m, c.Rooms)
			}
		}},
		{name: "unsubscribe", body: `{"action":"unsubscribe","room":"lobby"}`, action: "ack", check: func(t *testing.T, f *fixture, m map[string]any) {
			c, _ := f.conns.Get(context.Background(), "c1")
			if slices.Contains(c.Rooms, "lobby") {
				t.Errorf("still in lobby: %v", c.Rooms)
			}
		}},
		{name: "whoami", body: `{"action":"whoami"}`, action: "whoami", check: func(t *testing.T, f *fixture, m map[string]any) {
			if m["connectionId"] != "c1" || !slices.Equal(toStrings(m["rooms"]), []string{"lobby"}) {
				t.Errorf("whoami %v", m)
			}
		}},
		{name: "invalid UTF-8 relay", body: "{\"action\":\"update\",\"target\":\"*\",\"data\":\"\xff\xfe\"}", action: "error", code: domain.CodeInvalidJSON},
		{name: "invalid UTF-8 ping", body: "{\"action\":\"ping\",\"x\":\"\xff\"}", action: "error", code: domain.CodeInvalidJSON},
		{name: "invalid UTF-8 in a base64 frame", body: base64.StdEncoding.EncodeToString([]byte("{\"action\":\"update\",\"target\":\"*\",\"data\":\"\xff\"}")), b64: true, action: "error", code: domain.CodeInvalidJSON},
		{name: "long unknown target is echoed short", body: `{"action":"update","target":"` + strings.Repeat("<", 30000) + `"}`, action: "error", code: domain.CodeUnknownTarget,
			check: func(t *testing.T, f *fixture, m map[string]any) {
				if msg := m["message"].(string); len(msg) > 100 {
					t.Errorf("message is %d bytes", len(msg))
				}
			}},
		{name: "binary ping", body: base64.StdEncoding.EncodeToString([]byte(`{"action":"ping"}`)), b64: true, action: "pong"},
		{name: "bad base64", body: "%%%", b64: true, action: "error", code: domain.CodeInvalidJSON},
		{name: "not json", body: `hello`, action: "error", code: domain.CodeInvalidJSON},
		{name: "no action", body: `{"room":"x"}`, action: "error", code: domain.CodeBadRequest},
		{name: "unknown action", body: `{"action":"dance"}`, action: "error", code: domain.CodeUnknownAction},
		{name: "wrong type", body: `{"action":"subscribe","room":5}`, action: "error", code: domain.CodeBadRequest},
		{name: "bad room", body: `{"action":"subscribe","room":"a b"}`, action: "error", code: domain.CodeInvalidRoom},
		{name: "too large", body: `{"action":"update","target":"*","data":"` + strings.Repeat("x", 128*1024) + `"}`, action: "error", code: domain.CodeTooLarge},
		{name: "unknown target", body: `{"action":"update","target":"nobody","number":1}`, action: "error", code: domain.CodeUnknownTarget},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.connect(t, "c1", "")
			f.connect(t, "c2", "")
			ev := wsEvent(wsapi.RouteDefault, "c1", tc.body, nil)
			ev.IsBase64Encoded = tc.b64
			resp, err := f.h.Handle(context.Background(), ev)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("status %d, err %v", resp.StatusCode, err)
			}
			m := decode(t, resp.Body)
			if m["action"] != tc.action {
				t.Fatalf("reply %s, want action %s", resp.Body, tc.action)
			}
			if tc.code != "" && (m["code"] != tc.code || m["message"] == "") {
				t.Errorf("reply %s, want code %s", resp.Body, tc.code)
			}
			if strings.Contains(resp.Body, "requestContext") || strings.Contains(resp.Body, "203.0.113.9") {
				t.Error("reply echoes the event")
			}
			if tc.action == "error" && len(f.rec.Received()) > 0 {
				t.Errorf("an invalid frame was relayed to %v", f.rec.Received())
			}
			if tc.check != nil {
				tc.check(t, f, m)
			}
		})
	}
}

func toStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func TestMessageFromPrunedConnectionAsksToReconnect(t *testing.T) {
	f := newFixture(t)
	for _, body := range []string{`{"action":"ping"}`, `{"action":"whoami"}`, `{"action":"subscribe","room":"r"}`, `{"action":"update","target":"*"}`} {
		m := decode(t, f.send(t, "ghost", body).Body)
		if m["action"] != "error" || m["code"] != domain.CodeNotFound || !strings.Contains(m["message"].(string), "reconnect") {
			t.Errorf("%s: reply %v", body, m)
		}
	}
}

func TestRelay(t *testing.T) {
	f := newFixture(t)
	// a and b share room r1; c shares r2 with a; d is elsewhere; gone is
	// stored but its socket is closed.
	f.connect(t, "a", "r1")
	f.send(t, "a", `{"action":"subscribe","room":"r2"}`)
	f.connect(t, "b", "r1")
	f.connect(t, "c", "r2")
	f.send(t, "c", `{"action":"subscribe","room":"r1"}`) // in both rooms: must get one copy
	f.connect(t, "d", "r3")
	f.connect(t, "gone", "r1")
	f.rec.Close("gone")

	body := `{"action":"update","target":"*","number":7,"data":{"type":"move", "data":{"id":"p1","x":1.50}}}`
	resp := f.send(t, "a", body)
	if resp.StatusCode != 200 || resp.Body != "" {
		t.Fatalf("relay answered %d %q; the game protocol expects no reply", resp.StatusCode, resp.Body)
	}
	want := `{"from":"a","action":"update","number":7,"data":{"type":"move", "data":{"id":"p1","x":1.50}}}`
	for _, id := range []string{"b", "c"} {
		got := f.rec.Frames(id)
		if len(got) != 1 || string(got[0]) != want {
			t.Errorf("%s got %q, want one %s", id, got, want)
		}
	}
	for _, id := range []string{"a", "d"} {
		if n := len(f.rec.Frames(id)); n != 0 {
			t.Errorf("%s got %d frames", id, n)
		}
	}
	if _, err := f.conns.Get(context.Background(), "gone"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("gone connection not pruned: %v", err)
	}
	if !strings.Contains(f.logs.String(), `"recipients":3`) || !strings.Contains(f.logs.String(), `"gone":1`) {
		t.Errorf("summary line lacks counts: %s", f.logs.String())
	}

	// Directed: to a connection sharing a room, and refused otherwise.
	f.send(t, "a", `{"action":"delete","target":"b","number":8}`)
	if got := f.rec.Frames("b"); len(got) != 2 || string(got[1]) != `{"from":"a","action":"delete","number":8}` {
		t.Errorf("b got %q", got)
	}
	m := decode(t, f.send(t, "a", `{"action":"update","target":"d","number":9}`).Body)
	if m["code"] != domain.CodeUnknownTarget || len(f.rec.Frames("d")) != 0 {
		t.Errorf("relay to a stranger: reply %v, d got %d", m, len(f.rec.Frames("d")))
	}
}

func TestLogsOneSummaryLinePerInvocation(t *testing.T) {
	f := newFixture(t)
	f.connect(t, "c1", "")
	f.logs.Reset()
	f.send(t, "c1", `{"action":"ping"}`)
	lines := strings.Split(strings.TrimSpace(f.logs.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d log lines: %s", len(lines), f.logs.String())
	}
	m := decode(t, lines[0])
	for _, k := range []string{"route", "connectionId", "status", "duration_ms", "action"} {
		if _, ok := m[k]; !ok {
			t.Errorf("log line lacks %s: %s", k, lines[0])
		}
	}
}

// TestSummaryLinesCarryMetrics: connects, disconnects, relays and errors
// are counted as CloudWatch metrics on the summary line; other lines
// declare none.
func TestSummaryLinesCarryMetrics(t *testing.T) {
	f := newFixture(t)
	steps := []struct {
		do   func()
		want []string
	}{
		{func() { f.connect(t, "c1", "r") }, []string{"connects"}},
		{func() { f.connect(t, "c2", "r") }, []string{"connects"}},
		{func() { f.send(t, "c1", `{"action":"update","target":"*"}`) }, []string{"relays"}},
		{func() { f.send(t, "c1", `{"action":"dance"}`) }, []string{"errors"}},
		{func() { f.send(t, "c1", `{"action":"update","target":"nobody"}`) }, []string{"relays", "errors"}},
		{func() { f.send(t, "c1", `{"action":"ping"}`) }, nil},
		{func() {
			_, _ = f.h.Handle(context.Background(), wsEvent(wsapi.RouteDisconnect, "c2", "", nil))
		}, []string{"disconnects"}},
	}
	for i, st := range steps {
		f.logs.Reset()
		st.do()
		line := bytes.TrimSpace(f.logs.Bytes())
		names, err := metrics.Check(line)
		if st.want == nil {
			if err == nil {
				t.Errorf("step %d declares metrics %v: %s", i, names, line)
			}
			continue
		}
		if err != nil || !slices.Equal(names, st.want) {
			t.Errorf("step %d: metrics %v (%v), want %v: %s", i, names, err, st.want, line)
		}
	}
}

func TestRelayThatWouldExceedTheLimitIsRefused(t *testing.T) {
	f := newFixture(t)
	sender := "WcK2dcPZoAMCFwQ=" // AWS-length ids make the relay longer than the message
	f.connect(t, sender, "r")
	f.connect(t, "b", "r")
	body := `{"action":"update","target":"*","data":"` + strings.Repeat("x", 131025) + `"}`
	if len(body) > 128*1024 {
		t.Fatalf("test message is %d bytes, over the limit itself", len(body))
	}
	m := decode(t, f.send(t, sender, body).Body)
	if m["code"] != domain.CodeTooLarge || len(f.rec.Frames("b")) != 0 {
		t.Errorf("reply %v, b got %d frames", m["code"], len(f.rec.Frames("b")))
	}
}
