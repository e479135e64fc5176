package wsapi_test

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushgate/pushgate/internal/auth"
	"github.com/pushgate/pushgate/internal/domain"
	"github.com/pushgate/pushgate/internal/fanout"
	"github.com/pushgate/pushgate/internal/local/memstore"
	"github.com/pushgate/pushgate/internal/local/mgmtserver"
	"github.com/pushgate/pushgate/internal/wsapi"
)

// authFixture is a Handler behind the authorizer: every event carries the
// context of its connection's token, as API Gateway puts it there.
type authFixture struct {
	*fixture
	grants map[string]map[string]any
}

func newAuthFixture(t *testing.T, limit domain.RateLimit) *authFixture {
	t.Helper()
	conns := memstore.NewConnections()
	rec := mgmtserver.NewRecorder()
	logs := &bytes.Buffer{}
	fan := fanout.New(rec, conns, fanout.Options{Workers: 4})
	set := wsapi.Settings{TTL: time.Hour, Gate: auth.Gate{Required: true}, RelayLimit: limit}
	h := wsapi.New(conns, fan, set, slog.New(slog.NewJSONHandler(logs, nil))).WithClock(func() time.Time { return t0 })
	return &authFixture{fixture: &fixture{h: h, conns: conns, rec: rec, logs: logs}, grants: map[string]map[string]any{}}
}

func (f *authFixture) event(route, id, body string, query map[string]string) events.APIGatewayWebsocketProxyRequest {
	ev := wsEvent(route, id, body, query)
	if g, ok := f.grants[id]; ok {
		// A REST-style authorizer context: values as strings.
		m := map[string]any{"principalId": g["user"]}
		for k, v := range g {
			if n, ok := v.(int64); ok {
				v = strconv.FormatInt(n, 10)
			}
			m[k] = v
		}
		ev.RequestContext.Authorizer = m
	}
	return ev
}

// open connects id as user with the join and write patterns; it reports
// the $connect status.
func (f *authFixture) open(t *testing.T, id, room, join, write string) int {
	t.Helper()
	f.grants[id] = auth.Principal{User: "user-" + id, Join: strings.Fields(join), Write: strings.Fields(write), ExpiresAt: t0.Add(time.Hour)}.Context()
	resp, _ := f.h.Handle(context.Background(), f.event(wsapi.RouteConnect, id, "", map[string]string{"room": room}))
	if resp.StatusCode == 200 {
		f.rec.Open(id)
	}
	return resp.StatusCode
}

func (f *authFixture) say(t *testing.T, id, body string) string {
	t.Helper()
	resp, err := f.h.Handle(context.Background(), f.event(wsapi.RouteDefault, id, body, nil))
	if err != nil {
		t.Fatal(err)
	}
	return resp.Body
}

func TestConnectChecksJoinGrants(t *testing.T) {
	tests := []struct {
		name, room, join string
		want             int
	}{
		{"exact grant", "A", "A", 200},
		{"prefix grant", "game-1", "game-*", 200},
		{"every room", "anything", "*", 200},
		{"room B with a grant for A", "B", "A", 403},
		{"no join grant at all", "A", "", 403},
		{"the default room needs its grant too", "", "A", 403},
		{"prefix is not a suffix", "xgame-1", "game-*", 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newAuthFixture(t, domain.RateLimit{})
			if got := f.open(t, "c1", tc.room, tc.join, ""); got != tc.want {
				t.Fatalf("$connect = %d, want %d", got, tc.want)
			}
			_, err := f.conns.Get(context.Background(), "c1")
			if stored := err == nil; stored != (tc.want == 200) {
				t.Fatalf("stored = %v after $connect %d", stored, tc.want)
			}
		})
	}
}

func TestConnectWithoutAuthorizerContextIsRefused(t *testing.T) {
	f := newAuthFixture(t, domain.RateLimit{})
	resp, _ := f.h.Handle(context.Background(), wsEvent(wsapi.RouteConnect, "c1", "", nil))
	if resp.StatusCode != 401 || !strings.Contains(resp.Body, `"unauthorized"`) {
		t.Fatalf("$connect without a context = %d %s, want 401 unauthorized", resp.StatusCode, resp.Body)
	}
	if _, err := f.conns.Get(context.Background(), "c1"); err == nil {
		t.Fatal("stored a connection nobody vouched for")
	}
}

func TestConnectStoresTheIdentity(t *testing.T) {
	f := newAuthFixture(t, domain.RateLimit{})
	f.open(t, "c1", "A", "A game-*", "A")
	c, err := f.conns.Get(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	if c.Identity != "user-c1" || strings.Join(c.JoinGrants, " ") != "A game-*" || strings.Join(c.WriteGrants, " ") != "A" {
		t.Fatalf("stored %q join %q write %q", c.Identity, c.JoinGrants, c.WriteGrants)
	}
	if got := f.say(t, "c1", `{"action":"whoami"}`); !strings.Contains(got, `"user":"user-c1"`) {
		t.Fatalf("whoami = %s", got)
	}
}

// TestRoomAuthorization: subscribe and both relays check the grants, and a
// refusal joins, relays and posts nothing.
func TestRoomAuthorization(t *testing.T) {
	f := newAuthFixture(t, domain.RateLimit{})
	// w may write A; r only reads A and B; s shares B with r.
	f.open(t, "w", "A", "A", "A")
	f.open(t, "r", "A", "A B", "")
	f.open(t, "s", "B", "B", "B")
	if got := f.say(t, "r", `{"action":"subscribe","room":"B"}`); !strings.Contains(got, `"ack"`) {
		t.Fatalf("subscribe with a grant: %s", got)
	}
	tests := []struct {
		name, from, body, code string
	}{
		{"subscribe to B with a grant for A", "w", `{"action":"subscribe","room":"B"}`, domain.CodeForbidden},
		{"subscribe by prefix it lacks", "w", `{"action":"subscribe","room":"A2"}`, domain.CodeForbidden},
		{"relay * without a write grant", "r", `{"action":"update","target":"*","data":1}`, domain.CodeForbidden},
		{"targeted relay without a write grant", "r", `{"action":"update","target":"w","data":1}`, domain.CodeForbidden},
		{"targeted relay to a room it may not write", "r", `{"action":"delete","target":"s","data":1}`, domain.CodeForbidden},
		{"targeted relay to a stranger", "w", `{"action":"update","target":"s","data":1}`, domain.CodeUnknownTarget},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := f.say(t, tc.from, tc.body); !strings.Contains(got, `"code":"`+tc.code+`"`) {
				t.Fatalf("%s: reply %s, want %s", tc.body, got, tc.code)
			}
			for _, id := range []string{"w", "r", "s"} {
				if n := len(f.rec.Frames(id)); n != 0 {
					t.Fatalf("%s received %d frames after a refusal", id, n)
				}
			}
		})
	}
	c, _ := f.conns.Get(context.Background(), "w")
	if strings.Join(c.Rooms, " ") != "A" {
		t.Fatalf("w is in %q after a refused subscribe", c.Rooms)
	}
	// Allowed: w relays to A, where r listens; s (in B only) hears nothing.
	f.say(t, "w", `{"action":"update","target":"*","data":1}`)
	if len(f.rec.Frames("r")) != 1 || len(f.rec.Frames("s")) != 0 {
		t.Fatalf("relay * to A: r got %d, s got %d", len(f.rec.Frames("r")), len(f.rec.Frames("s")))
	}
}

// TestRelayReachesOnlyWritableRooms: a sender in two rooms that may write
// one of them relays into that one only.
func TestRelayReachesOnlyWritableRooms(t *testing.T) {
	f := newAuthFixture(t, domain.RateLimit{})
	f.open(t, "x", "A", "A B", "A")
	f.say(t, "x", `{"action":"subscribe","room":"B"}`)
	f.open(t, "inA", "A", "A", "")
	f.open(t, "inB", "B", "B", "")
	f.say(t, "x", `{"action":"update","target":"*","data":1}`)
	if len(f.rec.Frames("inA")) != 1 || len(f.rec.Frames("inB")) != 0 {
		t.Fatalf("inA got %d, inB got %d; want 1 and 0", len(f.rec.Frames("inA")), len(f.rec.Frames("inB")))
	}
	if got := f.say(t, "x", `{"action":"update","target":"inB","data":1}`); !strings.Contains(got, domain.CodeForbidden) || len(f.rec.Frames("inB")) != 0 {
		t.Fatalf("targeted relay into B: %s, inB got %d", got, len(f.rec.Frames("inB")))
	}
}

func TestRelayRateLimit(t *testing.T) {
	f := newAuthFixture(t, domain.RateLimit{Rate: 1, Burst: 3})
	f.open(t, "a", "A", "A", "A")
	f.open(t, "b", "A", "A", "")
	for i := range 3 {
		if got := f.say(t, "a", `{"action":"update","target":"*","data":1}`); got != "" {
			t.Fatalf("relay %d within the burst: %s", i, got)
		}
	}
	got := f.say(t, "a", `{"action":"update","target":"*","data":1}`)
	if !strings.Contains(got, `"code":"rate_limited"`) {
		t.Fatalf("fourth relay at once: %s, want rate_limited", got)
	}
	if n := len(f.rec.Frames("b")); n != 3 {
		t.Fatalf("b got %d frames, want the 3 within the burst", n)
	}
	// The socket stays usable: a ping still answers.
	if got := f.say(t, "a", `{"action":"ping"}`); !strings.Contains(got, "pong") {
		t.Fatalf("ping after the limit: %s", got)
	}
	if c, err := f.conns.Get(context.Background(), "a"); err != nil || len(c.Rooms) != 1 {
		t.Fatalf("connection after the limit: %+v, %v", c, err)
	}
}

func TestDisconnectNeedsNoGrant(t *testing.T) {
	f := newAuthFixture(t, domain.RateLimit{})
	f.open(t, "a", "A", "A", "")
	delete(f.grants, "a")
	f.h.Handle(context.Background(), f.event(wsapi.RouteDisconnect, "a", "", nil))
	if _, err := f.conns.Get(context.Background(), "a"); err == nil {
		t.Fatal("$disconnect left the record")
	}
}
