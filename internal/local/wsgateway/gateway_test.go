package wsgateway

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi/types"
	"github.com/coder/websocket"

	"github.com/pushgate/pushgate/internal/domain"
	"github.com/pushgate/pushgate/internal/local/mgmtserver"
	"github.com/pushgate/pushgate/internal/mgmtapi"
	"github.com/pushgate/pushgate/internal/testkit/testenv"
	"github.com/pushgate/pushgate/internal/wire"
)

const testStage = "test"

var idShape = regexp.MustCompile(`^[A-Za-z0-9_-]{15}=$`)

type responder func(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error)

// defaultRespond: "echo" answers with the body, "oneway" answers with a body
// the gateway must not send, $default reports what it got.
func defaultRespond(_ context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	switch req.RequestContext.RouteKey {
	case "echo":
		return events.APIGatewayProxyResponse{StatusCode: 200, Body: req.Body}, nil
	case "oneway":
		return events.APIGatewayProxyResponse{StatusCode: 200, Body: "never sent"}, nil
	case RouteDefault:
		return events.APIGatewayProxyResponse{StatusCode: 200, Body: fmt.Sprintf(`{"route":"$default","bytes":%d}`, len(req.Body))}, nil
	}
	return events.APIGatewayProxyResponse{StatusCode: 200}, nil
}

type harness struct {
	t      *testing.T
	g      *Gateway
	srv    *httptest.Server
	events chan events.APIGatewayWebsocketProxyRequest
	logs   *testenv.Buffer
}

// newHarness serves a gateway, with the Management API beside it as the
// local stack mounts it. Routes left nil get $connect, $disconnect,
// $default (two-way), echo (two-way) and oneway, all recorded and answered
// by respond.
func newHarness(t *testing.T, cfg Config, respond responder) *harness {
	t.Helper()
	h := &harness{t: t, events: make(chan events.APIGatewayWebsocketProxyRequest, 256), logs: &testenv.Buffer{}}
	if respond == nil {
		respond = defaultRespond
	}
	record := func(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		h.events <- req
		return respond(ctx, req)
	}
	if cfg.Routes == nil {
		cfg.Routes = map[string]Route{
			RouteConnect:    {Handler: record},
			RouteDisconnect: {Handler: record},
			RouteDefault:    {Handler: record, TwoWay: true},
			"echo":          {Handler: record, TwoWay: true},
			"oneway":        {Handler: record},
		}
	} else {
		for k, r := range cfg.Routes {
			if r.Handler == nil {
				r.Handler = record
				cfg.Routes[k] = r
			}
		}
	}
	cfg.Stage = testStage
	cfg.Log = slog.New(slog.NewJSONHandler(h.logs, nil))
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.g = g
	mux := http.NewServeMux()
	mux.Handle("/"+testStage+"/@connections/", mgmtserver.Handler(g))
	mux.Handle("/", g)
	h.srv = httptest.NewServer(mux)
	t.Cleanup(h.srv.Close)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return h
}

func (h *harness) url(query string) string {
	u := "ws" + strings.TrimPrefix(h.srv.URL, "http") + "/" + testStage
	if query != "" {
		u += "?" + query
	}
	return u
}

func (h *harness) dialErr(query string, header http.Header) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, h.url(query), &websocket.DialOptions{HTTPHeader: header})
	if c != nil {
		h.t.Cleanup(func() { _ = c.CloseNow() })
	}
	return c, resp, err
}

// dial connects and consumes the $connect event.
func (h *harness) dial(query string) (*websocket.Conn, events.APIGatewayWebsocketProxyRequest) {
	h.t.Helper()
	c, _, err := h.dialErr(query, http.Header{"User-Agent": {"wsgateway-test/1.0"}})
	if err != nil {
		h.t.Fatalf("dial: %v", err)
	}
	return c, h.next(RouteConnect)
}

// next returns the next event, which must be for route.
func (h *harness) next(route string) events.APIGatewayWebsocketProxyRequest {
	h.t.Helper()
	select {
	case e := <-h.events:
		if e.RequestContext.RouteKey != route {
			h.t.Fatalf("next event is for %q, want %q (body %q)", e.RequestContext.RouteKey, route, e.Body)
		}
		return e
	case <-time.After(5 * time.Second):
		h.t.Fatalf("no %s event", route)
	}
	panic("unreachable")
}

func (h *harness) noEvent(wait time.Duration) {
	h.t.Helper()
	select {
	case e := <-h.events:
		h.t.Fatalf("unexpected %s event", e.RequestContext.RouteKey)
	case <-time.After(wait):
	}
}

func send(t *testing.T, c *websocket.Conn, typ websocket.MessageType, data []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, typ, data); err != nil {
		t.Fatalf("client write: %v", err)
	}
}

func read(t *testing.T, c *websocket.Conn) (websocket.MessageType, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	typ, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("client read: %v", err)
	}
	return typ, string(b)
}

// expectClose reads until the connection ends and checks the close code the
// gateway sent.
func expectClose(t *testing.T, c *websocket.Conn, want websocket.StatusCode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		_, _, err := c.Read(ctx)
		if err == nil {
			continue
		}
		if got := websocket.CloseStatus(err); got != want {
			t.Fatalf("connection ended with %v (%v), want close code %d", got, err, want)
		}
		return
	}
}

func disconnectCode(e events.APIGatewayWebsocketProxyRequest) (int64, string) {
	reason := "<nil>"
	if e.RequestContext.DisconnectReason != nil {
		reason = *e.RequestContext.DisconnectReason
	}
	return e.RequestContext.DisconnectStatusCode, reason
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestNewValidates(t *testing.T) {
	ok := Route{Handler: func(context.Context, events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
		return events.APIGatewayProxyResponse{}, nil
	}}
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{"default route only", Config{Stage: "prod", Routes: map[string]Route{RouteDefault: ok}}, false},
		{"custom route only", Config{Stage: "prod", Routes: map[string]Route{"ping": ok}}, false},
		{"braced expression", Config{Stage: "prod", RouteSelectionExpression: "${request.body.action}", Routes: map[string]Route{RouteDefault: ok}}, false},
		{"no routes", Config{Stage: "prod"}, true},
		{"route without handler", Config{Stage: "prod", Routes: map[string]Route{RouteDefault: {}}}, true},
		{"no stage", Config{Routes: map[string]Route{RouteDefault: ok}}, true},
		{"stage with slash", Config{Stage: "a/b", Routes: map[string]Route{RouteDefault: ok}}, true},
		{"header expression", Config{Stage: "prod", RouteSelectionExpression: "$request.header.x", Routes: map[string]Route{RouteDefault: ok}}, true},
		{"negative idle", Config{Stage: "prod", IdleTimeout: -1, Routes: map[string]Route{RouteDefault: ok}}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := New(tc.cfg)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err == nil && !regexp.MustCompile(`^[a-z0-9]{10}$`).MatchString(g.APIID()) {
				t.Errorf("generated api id %q", g.APIID())
			}
		})
	}
}

func TestConnect(t *testing.T) {
	tests := []struct {
		name       string
		noRoute    bool
		respond    responder
		wantStatus int
		wantBody   string
	}{
		{"accepted", false, nil, http.StatusSwitchingProtocols, ""},
		{"no $connect route accepts", true, nil, http.StatusSwitchingProtocols, ""},
		{"status 0 accepts", false, func(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
			if req.RequestContext.RouteKey == RouteConnect {
				return events.APIGatewayProxyResponse{}, nil
			}
			return defaultRespond(ctx, req)
		}, http.StatusSwitchingProtocols, ""},
		{"refused with status and body", false, func(context.Context, events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
			return events.APIGatewayProxyResponse{StatusCode: 400, Body: `{"action":"error","code":"invalid_room"}`}, nil
		}, http.StatusBadRequest, `{"action":"error","code":"invalid_room"}`},
		{"handler error is a 500", false, func(context.Context, events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
			return events.APIGatewayProxyResponse{}, errors.New("store down")
		}, http.StatusInternalServerError, `{"message":"Internal server error"}`},
		{"handler panic is a 500", false, func(context.Context, events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
			panic("boom")
		}, http.StatusInternalServerError, `{"message":"Internal server error"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{}
			if tc.noRoute {
				cfg.Routes = map[string]Route{RouteDisconnect: {}, RouteDefault: {TwoWay: true}}
			}
			h := newHarness(t, cfg, tc.respond)
			c, resp, err := h.dialErr("", nil)
			if resp == nil || resp.StatusCode != tc.wantStatus {
				t.Fatalf("dial: %v, response %+v; want status %d", err, resp, tc.wantStatus)
			}
			if tc.wantStatus != http.StatusSwitchingProtocols {
				body, _ := io.ReadAll(resp.Body)
				if strings.TrimSpace(string(body)) != tc.wantBody {
					t.Errorf("body = %q, want %q", body, tc.wantBody)
				}
				h.next(RouteConnect)
				if n := h.g.Connections(); n != 0 {
					t.Errorf("refused connection registered: %d connections", n)
				}
				h.noEvent(100 * time.Millisecond) // no $disconnect for a refused connection
				return
			}
			if !tc.noRoute {
				h.next(RouteConnect)
			}
			waitFor(t, "registration", func() bool { return h.g.Connections() == 1 })
			send(t, c, websocket.MessageText, []byte(`{"x":1}`))
			h.next(RouteDefault)
			if _, got := read(t, c); got != `{"route":"$default","bytes":7}` {
				t.Errorf("reply = %q", got)
			}
		})
	}
}

func TestNonUpgradeRequests(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	tests := []struct {
		path string
		want int
	}{
		{"/" + testStage, http.StatusUpgradeRequired},
		{"/other", http.StatusForbidden},
		{"/" + testStage + "/deeper", http.StatusForbidden},
	}
	for _, tc := range tests {
		resp, err := http.Get(h.srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET %s = %d, want %d", tc.path, resp.StatusCode, tc.want)
		}
	}
	h.noEvent(50 * time.Millisecond)
}

func TestEventFields(t *testing.T) {
	h := newHarness(t, Config{APIID: "local0api1"}, nil)
	start := time.Now()
	c, _, err := h.dialErr("room=demo&tag=a&tag=b", http.Header{"User-Agent": {"wsgateway-test/1.0"}, "X-Custom": {"one", "two"}})
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(h.srv.URL, "http://")
	checkCommon := func(e events.APIGatewayWebsocketProxyRequest, route, eventType string) {
		t.Helper()
		rc := e.RequestContext
		if rc.RouteKey != route || rc.EventType != eventType || rc.MessageDirection != "IN" {
			t.Errorf("route/eventType/direction = %q/%q/%q", rc.RouteKey, rc.EventType, rc.MessageDirection)
		}
		if rc.APIID != "local0api1" || rc.Stage != testStage || rc.DomainName != host {
			t.Errorf("apiId/stage/domainName = %q/%q/%q", rc.APIID, rc.Stage, rc.DomainName)
		}
		if !idShape.MatchString(rc.ConnectionID) || !idShape.MatchString(rc.RequestID) || rc.ExtendedRequestID != rc.RequestID {
			t.Errorf("ids: connection %q request %q extended %q", rc.ConnectionID, rc.RequestID, rc.ExtendedRequestID)
		}
		if rc.Identity.SourceIP != "127.0.0.1" || rc.Identity.UserAgent != "wsgateway-test/1.0" {
			t.Errorf("identity = %+v", rc.Identity)
		}
		at, err := time.Parse(requestTimeLayout, rc.RequestTime)
		if err != nil || !strings.HasSuffix(rc.RequestTime, " +0000") {
			t.Errorf("requestTime %q: %v", rc.RequestTime, err)
		}
		epoch := time.UnixMilli(rc.RequestTimeEpoch)
		if epoch.Before(start.Add(-time.Second)) || epoch.After(time.Now()) || epoch.Sub(at) < 0 || epoch.Sub(at) >= time.Second {
			t.Errorf("requestTimeEpoch %d vs requestTime %q", rc.RequestTimeEpoch, rc.RequestTime)
		}
		if e.IsBase64Encoded {
			t.Error("isBase64Encoded set on a text event")
		}
	}

	conn := h.next(RouteConnect)
	checkCommon(conn, RouteConnect, "CONNECT")
	rc := conn.RequestContext
	id := rc.ConnectionID
	if rc.MessageID != nil || rc.DisconnectReason != nil || rc.DisconnectStatusCode != 0 {
		t.Errorf("connect event has messageId %v, disconnect %d %v", rc.MessageID, rc.DisconnectStatusCode, rc.DisconnectReason)
	}
	if rc.ConnectedAt < start.UnixMilli() || rc.ConnectedAt > rc.RequestTimeEpoch {
		t.Errorf("connectedAt %d, requestTimeEpoch %d", rc.ConnectedAt, rc.RequestTimeEpoch)
	}
	if conn.QueryStringParameters["room"] != "demo" || conn.QueryStringParameters["tag"] != "b" ||
		fmt.Sprint(conn.MultiValueQueryStringParameters["tag"]) != "[a b]" {
		t.Errorf("query = %v / %v", conn.QueryStringParameters, conn.MultiValueQueryStringParameters)
	}
	if conn.Headers["Host"] != host || conn.Headers["User-Agent"] != "wsgateway-test/1.0" ||
		conn.Headers["X-Forwarded-For"] != "127.0.0.1" || conn.Headers["X-Custom"] != "two" ||
		fmt.Sprint(conn.MultiValueHeaders["X-Custom"]) != "[one two]" || conn.Headers["Sec-Websocket-Key"] == "" {
		t.Errorf("headers = %v", conn.Headers)
	}
	info, ok := h.g.Info(id)
	if !ok || info.ConnectedAt.UnixMilli() != rc.ConnectedAt {
		t.Errorf("info = %+v, %v", info, ok)
	}

	var messageIDs []any
	for _, body := range []string{`{"action":"echo","n":1}`, `{"action":"echo","n":2}`} {
		send(t, c, websocket.MessageText, []byte(body))
		msg := h.next("echo")
		read(t, c)
		checkCommon(msg, "echo", "MESSAGE")
		m := msg.RequestContext
		if m.ConnectionID != id || m.ConnectedAt != rc.ConnectedAt || msg.Body != body {
			t.Errorf("message event: id %q connectedAt %d body %q", m.ConnectionID, m.ConnectedAt, msg.Body)
		}
		if s, ok := m.MessageID.(string); !ok || !idShape.MatchString(s) {
			t.Errorf("messageId = %#v", m.MessageID)
		}
		if msg.Headers != nil || msg.QueryStringParameters != nil || m.DisconnectReason != nil {
			t.Errorf("message event carries headers %v, query %v or a disconnect reason", msg.Headers, msg.QueryStringParameters)
		}
		messageIDs = append(messageIDs, m.MessageID)
	}
	if messageIDs[0] == messageIDs[1] {
		t.Errorf("message ids repeat: %v", messageIDs)
	}

	if err := c.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatal(err)
	}
	disc := h.next(RouteDisconnect)
	checkCommon(disc, RouteDisconnect, "DISCONNECT")
	if code, reason := disconnectCode(disc); code != 1000 || reason != "bye" || disc.RequestContext.MessageID != nil ||
		disc.RequestContext.ConnectionID != id || disc.RequestContext.ConnectedAt != rc.ConnectedAt {
		t.Errorf("disconnect: code %d reason %q event %+v", code, reason, disc.RequestContext)
	}
	if disc.Headers["Host"] != host {
		t.Errorf("disconnect headers = %v", disc.Headers)
	}
	waitFor(t, "forgetting the connection", func() bool { return h.g.Connections() == 0 })
	if _, ok := h.g.Info(id); ok {
		t.Error("Info after disconnect")
	}
	if h.g.Send(context.Background(), id, []byte("x")) {
		t.Error("Send after disconnect")
	}

	// One JSON log line per route invocation.
	var routes []string
	for line := range strings.SplitSeq(strings.TrimSpace(h.logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] != "websocket route" {
			continue
		}
		if rec["connectionId"] != id || rec["status"] == nil || rec["duration_ms"] == nil {
			t.Errorf("log line %s", line)
		}
		if rec["route"] == RouteDisconnect && (rec["close_code"] != 1000.0 || rec["close_reason"] != "bye") {
			t.Errorf("disconnect log line %s", line)
		}
		routes = append(routes, rec["route"].(string))
	}
	if got := strings.Join(routes, " "); got != "$connect echo echo $disconnect" {
		t.Errorf("logged routes %q", got)
	}
}

func TestRouteSelection(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	c, _ := h.dial("")
	tests := []struct {
		name      string
		body      string
		wantRoute string
		wantReply string // "" for none
	}{
		{"custom two-way route", `{"action":"echo","x":[1,2]}`, "echo", `{"action":"echo","x":[1,2]}`},
		{"custom one-way route", `{"action":"oneway"}`, "oneway", ""},
		{"unknown action", `{"action":"nope"}`, RouteDefault, `{"route":"$default","bytes":17}`},
		{"action not a string", `{"action":5}`, RouteDefault, `{"route":"$default","bytes":12}`},
		{"action missing", `{"x":"echo"}`, RouteDefault, `{"route":"$default","bytes":12}`},
		{"reserved key", `{"action":"$connect"}`, RouteDefault, `{"route":"$default","bytes":21}`},
		{"not JSON", `echo`, RouteDefault, `{"route":"$default","bytes":4}`},
		{"JSON array", `["echo"]`, RouteDefault, `{"route":"$default","bytes":8}`},
		{"trailing garbage", `{"action":"echo"} x`, RouteDefault, `{"route":"$default","bytes":19}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			send(t, c, websocket.MessageText, []byte(tc.body))
			if e := h.next(tc.wantRoute); e.Body != tc.body {
				t.Errorf("event body %q", e.Body)
			}
			// A marker after the message proves a one-way route sent nothing:
			// the next frame must be the marker's reply.
			send(t, c, websocket.MessageText, []byte(`{"action":"echo","marker":true}`))
			h.next("echo")
			_, got := read(t, c)
			if tc.wantReply != "" {
				if got != tc.wantReply {
					t.Fatalf("reply = %q, want %q", got, tc.wantReply)
				}
				_, got = read(t, c)
			}
			if got != `{"action":"echo","marker":true}` {
				t.Fatalf("got %q where the marker's reply belongs", got)
			}
		})
	}
}

func TestNestedSelectionAndNoDefault(t *testing.T) {
	h := newHarness(t, Config{
		RouteSelectionExpression: "${request.body.meta.kind}",
		Routes:                   map[string]Route{"echo": {TwoWay: true}},
	}, nil)
	c, _, err := h.dialErr("", nil)
	if err != nil {
		t.Fatal(err)
	}
	send(t, c, websocket.MessageText, []byte(`{"meta":{"kind":"echo"}}`))
	h.next("echo")
	if _, got := read(t, c); got != `{"meta":{"kind":"echo"}}` {
		t.Errorf("reply = %q", got)
	}
	// No route matches and there is no $default: API Gateway's own error.
	send(t, c, websocket.MessageText, []byte(`{"action":"echo"}`))
	_, got := read(t, c)
	var frame struct{ Message, ConnectionID, RequestID string }
	if err := json.Unmarshal([]byte(got), &frame); err != nil || frame.Message != "Forbidden" ||
		!idShape.MatchString(frame.ConnectionID) || !idShape.MatchString(frame.RequestID) {
		t.Errorf("forbidden frame %q", got)
	}
	if !strings.HasPrefix(got, `{"message": "Forbidden", "connectionId":"`) {
		t.Errorf("frame %q is not shaped like API Gateway's", got)
	}
	h.noEvent(50 * time.Millisecond)
}

func TestHandlerFailureSendsInternalServerError(t *testing.T) {
	tests := []struct {
		name    string
		respond responder
	}{
		{"error", func(_ context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
			if req.RequestContext.RouteKey == "oneway" {
				return events.APIGatewayProxyResponse{}, errors.New("relay failed")
			}
			return defaultRespond(context.Background(), req)
		}},
		{"panic", func(_ context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
			if req.RequestContext.RouteKey == "oneway" {
				panic("nil map")
			}
			return defaultRespond(context.Background(), req)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{}, tc.respond)
			c, conn := h.dial("")
			// Even a one-way route's failure reaches the client.
			send(t, c, websocket.MessageText, []byte(`{"action":"oneway"}`))
			e := h.next("oneway")
			_, got := read(t, c)
			want := fmt.Sprintf(`{"message": "Internal server error", "connectionId":"%s", "requestId":"%s"}`,
				conn.RequestContext.ConnectionID, e.RequestContext.RequestID)
			if got != want {
				t.Errorf("frame = %s\nwant    %s", got, want)
			}
			// The connection survives.
			send(t, c, websocket.MessageText, []byte(`{"action":"echo"}`))
			h.next("echo")
			if _, got := read(t, c); got != `{"action":"echo"}` {
				t.Errorf("reply after failure = %q", got)
			}
		})
	}
}

// TestBinaryFrameCloses1003: API Gateway rejects a client's binary frame
// and disconnects it with 1003; the handler never sees the message.
func TestBinaryFrameCloses1003(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	c, _ := h.dial("")
	send(t, c, websocket.MessageBinary, []byte(`{"action":"update","target":"*","data":"`+"\xff\xfe"+`"}`))
	expectClose(t, c, websocket.StatusUnsupportedData)
	e := h.next(RouteDisconnect)
	if code, reason := disconnectCode(e); code != 1003 || reason != "Binary frames are not supported" {
		t.Errorf("$disconnect %d %q", code, reason)
	}
}

// TestPostOfInvalidUTF8IsBinary: data that is not UTF-8 never goes out in a
// text frame, which a browser would fail the connection over.
func TestPostOfInvalidUTF8IsBinary(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	c, conn := h.dial("")
	id := conn.RequestContext.ConnectionID
	for _, data := range [][]byte{[]byte("\xff\xfe"), []byte(`{"ok":"caf\u00e9 ☃"}`)} {
		if !h.g.Send(context.Background(), id, data) {
			t.Fatal("send failed")
		}
		typ, got := read(t, c)
		want := websocket.MessageText
		if !utf8.Valid(data) {
			want = websocket.MessageBinary
		}
		if typ != want || got != string(data) {
			t.Errorf("sent %q: got %v %q, want %v", data, typ, got, want)
		}
	}
}

// TestClientThatDoesNotReadIsClosed: posts to a client that reads nothing
// return at once while its queue fills; then it is closed with 1013 and
// every further post is 410. Nothing waits for the client.
func TestClientThatDoesNotReadIsClosed(t *testing.T) {
	h := newHarness(t, Config{SendQueueBytes: 256 << 10}, nil)
	_, conn := h.dial("") // never read
	id := conn.RequestContext.ConnectionID
	data := []byte(`{"pad":"` + strings.Repeat("x", 32<<10) + `"}`)
	const bound = 2000 // 64 MB: far past any socket buffer
	refusedAt, slowest := -1, time.Duration(0)
	for i := range bound {
		start := time.Now()
		ok := h.g.Send(context.Background(), id, data)
		slowest = max(slowest, time.Since(start))
		if !ok {
			refusedAt = i
			break
		}
		// Paced like posts over HTTP, so the queue overflows because the
		// client reads nothing, not because a burst outran the writer.
		time.Sleep(time.Millisecond)
	}
	if refusedAt < 0 {
		t.Fatalf("%d posts of %d bytes to a client that reads nothing were all accepted", bound, len(data))
	}
	if slowest > time.Second {
		t.Errorf("a post took %v: posts must not wait for the client", slowest)
	}
	if h.g.Send(context.Background(), id, []byte(`{}`)) {
		t.Error("a post after the overflow was accepted")
	}
	if code, reason := disconnectCode(h.next(RouteDisconnect)); code != 1013 || reason != "Client is not reading" {
		t.Errorf("$disconnect %d %q", code, reason)
	}
	t.Logf("refused after %d posts (%d bytes)", refusedAt, refusedAt*len(data))
}

// TestQueuedPostsArriveBeforeADelete: DeleteConnection closes after what
// was posted before it has been written.
func TestQueuedPostsArriveBeforeADelete(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	c, conn := h.dial("")
	c.SetReadLimit(wire.MaxMessageBytes)
	id := conn.RequestContext.ConnectionID
	for i := range 20 {
		if !h.g.Send(context.Background(), id, fmt.Appendf(nil, `{"i":%d,"pad":"%s"}`, i, strings.Repeat("p", 40000))) {
			t.Fatalf("send %d failed", i)
		}
	}
	if !h.g.Close(id) {
		t.Fatal("close failed")
	}
	for i := range 20 {
		_, got := read(t, c)
		if !strings.HasPrefix(got, fmt.Sprintf(`{"i":%d,`, i)) {
			t.Fatalf("message %d: %.20q", i, got)
		}
	}
	expectClose(t, c, websocket.StatusNormalClosure)
}

// writeFrames sends one message as frames of the given sizes (each Write on
// a coder/websocket message writer is one frame).
func writeFrames(c *websocket.Conn, sizes ...int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	w, err := c.Writer(ctx, websocket.MessageText)
	if err != nil {
		return err
	}
	for _, n := range sizes {
		if _, err := w.Write(bytes.Repeat([]byte("a"), n)); err != nil {
			return err
		}
	}
	return w.Close()
}

func TestSizeLimits(t *testing.T) {
	const frame, message = wire.MaxFrameBytes, wire.MaxMessageBytes
	tests := []struct {
		name      string
		frames    []int
		wantClose bool
	}{
		{"one frame at the frame limit", []int{frame}, false},
		{"fragmented message at the message limit", []int{frame, frame, frame, frame}, false},
		{"one frame over the frame limit", []int{frame + 1}, true},
		{"big frame inside a fragmented message", []int{1000, frame + 1, 1000}, true},
		{"fragmented message over the message limit", []int{frame, frame, frame, frame, 1}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{}, nil)
			c, _ := h.dial("")
			total := 0
			for _, n := range tc.frames {
				total += n
			}
			// The gateway may close before the client has written it all.
			writeErr := writeFrames(c, tc.frames...)
			if !tc.wantClose {
				if writeErr != nil {
					t.Fatal(writeErr)
				}
				if e := h.next(RouteDefault); len(e.Body) != total || total > message {
					t.Fatalf("event body has %d bytes, want %d", len(e.Body), total)
				}
				if _, got := read(t, c); got != fmt.Sprintf(`{"route":"$default","bytes":%d}`, total) {
					t.Errorf("reply %q", got)
				}
				return
			}
			expectClose(t, c, websocket.StatusMessageTooBig)
			if code, reason := disconnectCode(h.next(RouteDisconnect)); code != 1009 || reason != "Message too big" {
				t.Errorf("$disconnect %d %q", code, reason)
			}
		})
	}
}

func TestIdleTimeout(t *testing.T) {
	const idle = 200 * time.Millisecond
	tests := []struct {
		name     string
		activity func(t *testing.T, h *harness, c *websocket.Conn, id string, stop <-chan struct{})
		minOpen  time.Duration
	}{
		{"silent client", nil, idle},
		{"client messages keep it open", func(t *testing.T, h *harness, c *websocket.Conn, _ string, stop <-chan struct{}) {
			for {
				select {
				case <-stop:
					return
				case <-time.After(idle / 4):
					_ = c.Write(context.Background(), websocket.MessageText, []byte(`{"action":"oneway"}`))
				}
			}
		}, 500 * time.Millisecond},
		{"messages to the client keep it open", func(t *testing.T, h *harness, _ *websocket.Conn, id string, stop <-chan struct{}) {
			for {
				select {
				case <-stop:
					return
				case <-time.After(idle / 4):
					h.g.Send(context.Background(), id, []byte(`{"keepalive":true}`))
				}
			}
		}, 500 * time.Millisecond},
		{"pings do not", func(t *testing.T, _ *harness, c *websocket.Conn, _ string, stop <-chan struct{}) {
			for {
				select {
				case <-stop:
					return
				case <-time.After(idle / 4):
					ctx, cancel := context.WithTimeout(context.Background(), idle)
					_ = c.Ping(ctx)
					cancel()
				}
			}
		}, idle},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{IdleTimeout: idle}, func(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
				return events.APIGatewayProxyResponse{StatusCode: 200}, nil
			})
			c, conn := h.dial("")
			start := time.Now()
			stop := make(chan struct{})
			var wg sync.WaitGroup
			if tc.activity != nil {
				wg.Go(func() { tc.activity(t, h, c, conn.RequestContext.ConnectionID, stop) })
				time.AfterFunc(tc.minOpen, func() { close(stop) })
			}
			expectClose(t, c, websocket.StatusGoingAway)
			open := time.Since(start)
			wg.Wait()
			if open < tc.minOpen || open > tc.minOpen+idle+time.Second {
				t.Errorf("closed after %v; want about %v + %v", open, tc.minOpen, idle)
			}
			for {
				e := <-h.events
				if e.RequestContext.RouteKey != RouteDisconnect {
					continue // the activity's messages
				}
				if code, reason := disconnectCode(e); code != 1001 || reason != "Going away" {
					t.Errorf("$disconnect %d %q", code, reason)
				}
				break
			}
		})
	}
}

func TestMaxLifetime(t *testing.T) {
	const lifetime = 300 * time.Millisecond
	h := newHarness(t, Config{MaxLifetime: lifetime}, nil)
	c, _ := h.dial("")
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// An active connection is cut all the same.
	for {
		if err := c.Write(ctx, websocket.MessageText, []byte(`{"action":"echo"}`)); err != nil {
			break
		}
		_, _, err := c.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) != websocket.StatusGoingAway {
				t.Fatalf("connection ended with %v", err)
			}
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if open := time.Since(start); open < lifetime || open > lifetime+time.Second {
		t.Errorf("closed after %v, want about %v", open, lifetime)
	}
	for {
		if e := <-h.events; e.RequestContext.RouteKey == RouteDisconnect {
			if code, _ := disconnectCode(e); code != 1001 {
				t.Errorf("$disconnect code %d", code)
			}
			break
		}
	}
}

func TestClientClose(t *testing.T) {
	tests := []struct {
		name       string
		close      func(c *websocket.Conn) error
		wantCode   int64
		wantReason string
	}{
		{"normal", func(c *websocket.Conn) error { return c.Close(websocket.StatusNormalClosure, "") }, 1000, "Connection Closed Normally"},
		{"normal with reason", func(c *websocket.Conn) error { return c.Close(websocket.StatusNormalClosure, "tab closed") }, 1000, "tab closed"},
		{"going away", func(c *websocket.Conn) error { return c.Close(websocket.StatusGoingAway, "") }, 1001, "Going away"},
		{"application code", func(c *websocket.Conn) error { return c.Close(4000, "") }, 4000, "Client-side close frame status set to 4000"},
		{"no status", func(c *websocket.Conn) error { return c.Close(websocket.StatusNoStatusRcvd, "") }, 1005, "Client-side close frame status not set"},
		{"dropped without close frame", func(c *websocket.Conn) error { return c.CloseNow() }, 1006, "Connection closed abnormally"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{}, nil)
			c, conn := h.dial("")
			id := conn.RequestContext.ConnectionID
			if err := tc.close(c); err != nil {
				t.Logf("client close: %v", err) // a 1005 close gets no matching echo
			}
			if code, reason := disconnectCode(h.next(RouteDisconnect)); code != tc.wantCode || reason != tc.wantReason {
				t.Errorf("$disconnect %d %q, want %d %q", code, reason, tc.wantCode, tc.wantReason)
			}
			waitFor(t, "forgetting the connection", func() bool { return h.g.Connections() == 0 })
			if h.g.Send(context.Background(), id, []byte("{}")) || h.g.Close(id) {
				t.Error("Send or Close succeeded on a closed connection")
			}
			h.noEvent(50 * time.Millisecond) // exactly one $disconnect
		})
	}
}

func TestManagementAPI(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	c, conn := h.dial("")
	c.SetReadLimit(wire.MaxMessageBytes)
	id := conn.RequestContext.ConnectionID
	endpoint := h.srv.URL + "/" + testStage
	cfg := aws.Config{
		Region: "us-east-1",
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, nil
		}),
	}
	poster, err := mgmtapi.New(cfg, endpoint, 2)
	if err != nil {
		t.Fatal(err)
	}
	api := apigatewaymanagementapi.NewFromConfig(cfg, func(o *apigatewaymanagementapi.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// POST reaches the client as a text message, large ones too.
	big := `{"data":"` + strings.Repeat("x", 100*1024) + `"}`
	for _, data := range []string{`{"action":"event","n":1}`, big} {
		if err := poster.Post(ctx, id, []byte(data)); err != nil {
			t.Fatalf("post: %v", err)
		}
		if typ, got := read(t, c); typ != websocket.MessageText || got != data {
			t.Errorf("client got %v %d bytes, want text %d bytes", typ, len(got), len(data))
		}
	}

	// GET describes the connection; lastActiveAt follows client messages.
	before := time.Now()
	send(t, c, websocket.MessageText, []byte(`{"action":"oneway"}`))
	h.next("oneway")
	got, err := api.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(id)})
	if err != nil {
		t.Fatalf("get connection: %v", err)
	}
	if got.ConnectedAt == nil || got.ConnectedAt.UnixMilli() != conn.RequestContext.ConnectedAt {
		t.Errorf("connectedAt %v, want %d", got.ConnectedAt, conn.RequestContext.ConnectedAt)
	}
	if got.LastActiveAt == nil || got.LastActiveAt.Before(before) {
		t.Errorf("lastActiveAt %v, want after %v", got.LastActiveAt, before)
	}
	if got.Identity == nil || aws.ToString(got.Identity.SourceIp) != "127.0.0.1" || aws.ToString(got.Identity.UserAgent) != "wsgateway-test/1.0" {
		t.Errorf("identity %+v", got.Identity)
	}

	// DELETE closes the socket like DeleteConnection: 1000, then $disconnect.
	if err := poster.Delete(ctx, id); err != nil {
		t.Fatalf("delete: %v", err)
	}
	expectClose(t, c, websocket.StatusNormalClosure)
	if code, reason := disconnectCode(h.next(RouteDisconnect)); code != 1000 || reason != "Connection Closed Normally" {
		t.Errorf("$disconnect %d %q", code, reason)
	}

	// Afterwards the connection is gone.
	var pe *domain.PostError
	if err := poster.Post(ctx, id, []byte(`{}`)); !errors.As(err, &pe) || !pe.Gone() {
		t.Errorf("post after delete: %v, want gone", err)
	}
	var gone *types.GoneException
	if _, err := api.GetConnection(ctx, &apigatewaymanagementapi.GetConnectionInput{ConnectionId: aws.String(id)}); !errors.As(err, &gone) {
		t.Errorf("get after delete: %v, want GoneException", err)
	}
}

func TestConcurrentSends(t *testing.T) {
	// 3 MB posted at once, faster than any client reads: a queue that
	// holds it all, since this is about interleaving, not slow clients.
	h := newHarness(t, Config{SendQueueBytes: 8 << 20}, nil)
	c, conn := h.dial("")
	c.SetReadLimit(wire.MaxMessageBytes)
	id := conn.RequestContext.ConnectionID
	const senders, each = 8, 20
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(h.logs.String())
		}
	})
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := range each {
				// Some over one frame, so fragmented messages interleave
				// with whole ones.
				data := fmt.Sprintf(`{"s":%d,"i":%d,"pad":"%s"}`, s, i, strings.Repeat("p", (i%3)*20000))
				if !h.g.Send(context.Background(), id, []byte(data)) {
					t.Errorf("send %d/%d failed", s, i)
				}
			}
		})
	}
	seen := map[string]bool{}
	for range senders * each {
		_, got := read(t, c)
		var m struct{ S, I int }
		if err := json.Unmarshal([]byte(got), &m); err != nil {
			t.Fatalf("garbled message %.80q: %v", got, err)
		}
		seen[fmt.Sprint(m.S, m.I)] = true
	}
	wg.Wait()
	if len(seen) != senders*each {
		t.Errorf("%d distinct messages, want %d", len(seen), senders*each)
	}
}

func TestShutdown(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	var clients []*websocket.Conn
	for range 3 {
		c, _ := h.dial("")
		clients = append(clients, c)
	}
	waitFor(t, "registration", func() bool { return h.g.Connections() == 3 })
	closed := make(chan websocket.StatusCode, len(clients))
	for _, c := range clients {
		go func() {
			_, _, err := c.Read(context.Background())
			closed <- websocket.CloseStatus(err)
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.g.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// Shutdown returns only after every $disconnect has run.
	if n := h.g.Connections(); n != 0 {
		t.Errorf("%d connections after shutdown", n)
	}
	if len(h.events) != len(clients) {
		t.Fatalf("%d events queued after shutdown, want %d $disconnect", len(h.events), len(clients))
	}
	for range clients {
		if code, reason := disconnectCode(h.next(RouteDisconnect)); code != 1001 || reason != "Going away" {
			t.Errorf("$disconnect %d %q", code, reason)
		}
		if code := <-closed; code != websocket.StatusGoingAway {
			t.Errorf("client saw close code %v", code)
		}
	}
	if _, resp, err := h.dialErr("", nil); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("dial after shutdown: %v", err)
	}
}

// frame encodes a client frame header (masked, as clients must) and payload.
func frame(op byte, fin bool, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	var h []byte
	switch n := len(payload); {
	case n < 126:
		h = []byte{b0, 0x80 | byte(n)}
	case n <= 0xffff:
		h = []byte{b0, 0x80 | 126, 0, 0}
		binary.BigEndian.PutUint16(h[2:], uint16(n))
	default:
		h = make([]byte, 10)
		h[0], h[1] = b0, 0x80|127
		binary.BigEndian.PutUint64(h[2:], uint64(n))
	}
	h = append(h, 1, 2, 3, 4) // mask key; the watcher never unmasks
	return append(h, payload...)
}

func TestFrameWatcherStopsAtFrameBoundaries(t *testing.T) {
	frames := [][]byte{
		frame(1, false, bytes.Repeat([]byte("a"), 10)),   // 7-bit length
		frame(0, false, bytes.Repeat([]byte("b"), 300)),  // 16-bit length
		frame(9, true, nil),                              // a ping between fragments
		frame(0, true, bytes.Repeat([]byte("c"), 70000)), // 64-bit length, over the limit
		frame(2, true, bytes.Repeat([]byte("d"), 40000)), // also over; only the first counts
	}
	stream := bytes.Join(frames, nil)
	w := newFrameWatcher(nil, bytes.NewReader(stream), wire.MaxFrameBytes)
	var got []byte
	ends := map[int]bool{}
	at := 0
	for i, f := range frames {
		at += len(f)
		ends[at] = true
		_ = i
	}
	p := make([]byte, 100000)
	flaggedAt := -1
	for {
		n, err := w.Read(p)
		got = append(got, p[:n]...)
		if n > 0 && !ends[len(got)] {
			// A read may end inside a frame (p or the source ran short),
			// but never past the frame's end: the next end must be ahead.
			next := 0
			for e := range ends {
				if e > len(got)-n && (next == 0 || e < next) {
					next = e
				}
			}
			if len(got) > next {
				t.Fatalf("a read crossed the frame end at %d", next)
			}
		}
		if flaggedAt < 0 && w.oversized() != 0 {
			flaggedAt = len(got)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, stream) {
		t.Fatal("the watcher changed the stream")
	}
	if w.oversized() != 70000 {
		t.Errorf("oversized = %d, want 70000", w.oversized())
	}
	firstEnd := len(frames[0]) + len(frames[1]) + len(frames[2])
	if flaggedAt <= firstEnd || flaggedAt > firstEnd+len(frames[3]) {
		t.Errorf("flagged after %d bytes; the big frame spans %d-%d", flaggedAt, firstEnd, firstEnd+len(frames[3]))
	}
}

func TestIDShape(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := newID()
		if !idShape.MatchString(id) || seen[id] {
			t.Fatalf("id %q: bad shape or repeated", id)
		}
		if u := url.PathEscape(id); strings.Contains(u, "/") {
			t.Fatalf("id %q has a slash", id)
		}
		seen[id] = true
	}
}
