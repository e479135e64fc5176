package hostile_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pushgate/pushgate/internal/auth"
	"github.com/pushgate/pushgate/internal/domain"
	"github.com/pushgate/pushgate/internal/local"
	"github.com/pushgate/pushgate/internal/testkit/localtest"
	"github.com/pushgate/pushgate/internal/testkit/testenv"
	"github.com/pushgate/pushgate/internal/testkit/wsclient"
	"github.com/pushgate/pushgate/internal/wire"
)

// suiteKey is the signing key of the auth suite's stack, so the suite can
// mint every kind of token, good and broken.
var suiteKey = []byte("the hostile auth suite's 32 byte")

// minted is a token of the stack's key for user, with the grants given and
// whatever edit breaks.
func minted(t *testing.T, join, write string, edit func(*auth.Token)) string {
	t.Helper()
	tok := auth.Token{Issuer: "pushgate", Audience: "pushgate", User: "mallory", Join: strings.Fields(join), Write: strings.Fields(write), TTL: time.Hour}
	if edit != nil {
		edit(&tok)
	}
	s, err := auth.Mint(suiteKey, tok)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// broken tokens, each refused by the authorizer (401 on the socket).
func brokenTokens(t *testing.T, room string) []struct{ name, token string } {
	good := minted(t, room, room, nil)
	parts := strings.Split(good, ".")
	widened, _ := json.Marshal(map[string]any{"iss": "pushgate", "aud": "pushgate", "sub": "mallory", "exp": time.Now().Add(time.Hour).Unix(), "join": []string{"*"}, "write": []string{"*"}})
	forged, _ := auth.Mint([]byte("mallory's own key, 32 bytes long"), auth.Token{Issuer: "pushgate", Audience: "pushgate", User: "mallory", Join: []string{"*"}, Write: []string{"*"}, TTL: time.Hour})
	return []struct{ name, token string }{
		{"expired", minted(t, room, room, func(k *auth.Token) { k.Now = time.Now().Add(-2 * time.Hour) })},
		{"not yet valid", minted(t, room, room, func(k *auth.Token) { k.Now = time.Now().Add(time.Hour) })},
		{"forged with another key", forged},
		{"widened grants under the old signature", parts[0] + "." + base64.RawURLEncoding.EncodeToString(widened) + "." + parts[2]},
		{"wrong issuer", minted(t, room, room, func(k *auth.Token) { k.Issuer = "https://evil.example" })},
		{"wrong audience", minted(t, room, room, func(k *auth.Token) { k.Audience = "another-app" })},
		{"alg none", "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + "."},
		{"no signature", parts[0] + "." + parts[1] + "."},
		{"garbage", "definitely-not-a-jwt"},
		{"oversized", strings.Repeat("A", auth.MaxTokenBytes+1)},
	}
}

func dialStatus(t *testing.T, u string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, u, nil)
	if err == nil {
		c.CloseNow()
		return http.StatusSwitchingProtocols
	}
	if resp == nil {
		t.Fatalf("dial %.120s: %v", u, err)
	}
	return resp.StatusCode
}

// TestHostileAuth: missing, broken and misused tokens at every door —
// $connect, the socket's messages, the HTTP API and the SNS path — each
// gets the documented answer, and nothing is joined, relayed or stored.
func TestHostileAuth(t *testing.T) {
	// A relay limit tight enough that the flood below overruns it however
	// slowly the machine relays: a burst of 10, then 2 a second.
	s, logs := localtest.Start(t, func(o *local.Options) {
		o.SigningKey = suiteKey
		o.Parameters = map[string]string{"RelayBurstLimit": "10", "RelayRateLimit": "2"}
	})
	ws := s.WebSocketURL()
	cases := 0
	authorizerCalls := func() int { return strings.Count(logs.String(), `"msg":"authorizer"`) }

	// A room A member who may write A, and a bystander in room B.
	a := wsclient.Dial(t, ws+"?room=A&token="+minted(t, "A B", "A", nil))
	aID := whoami(t, a)
	inA := wsclient.Dial(t, ws+"?room=A&token="+minted(t, "A", "", nil))
	inB := wsclient.Dial(t, ws+"?room=B&token="+minted(t, "B", "B", nil))
	inBID := whoami(t, inB)
	quiet := func(t *testing.T) {
		t.Helper()
		inA.Quiet()
		inB.Quiet()
	}

	t.Run("connect", func(t *testing.T) {
		for _, tc := range []struct{ name, query string }{
			{"no token", "room=A"},
			{"an empty token", "room=A&token="},
			{"the token in a header is not looked at", "room=A"},
		} {
			cases++
			t.Run(tc.name, func(t *testing.T) {
				before := authorizerCalls()
				req := ws + "?" + tc.query
				if got := dialStatus(t, req); got != http.StatusUnauthorized {
					t.Fatalf("status %d, want 401", got)
				}
				if authorizerCalls() != before {
					t.Fatal("the authorizer was called; API Gateway answers 401 without calling it")
				}
			})
		}
		for _, tc := range brokenTokens(t, "A") {
			cases++
			t.Run(tc.name, func(t *testing.T) {
				if got := dialStatus(t, ws+"?room=A&token="+url.QueryEscape(tc.token)); got != http.StatusUnauthorized {
					t.Fatalf("status %d, want 401", got)
				}
			})
		}
		for _, tc := range []struct{ name, room, join string }{
			{"a token for room A on room B", "B", "A"},
			{"a token that joins nothing", "A", ""},
			{"the default room without its grant", "", "A"},
			{"a prefix grant is no suffix grant", "xgame-1", "game-*"},
		} {
			cases++
			t.Run(tc.name, func(t *testing.T) {
				q := "token=" + minted(t, tc.join, "", nil)
				if tc.room != "" {
					q += "&room=" + tc.room
				}
				if got := dialStatus(t, ws+"?"+q); got != http.StatusForbidden {
					t.Fatalf("status %d, want 403", got)
				}
			})
		}
		if n := len(s.ConnectionIDs()); n != 3 {
			t.Fatalf("%d sockets open, want the 3 of the setup", n)
		}
	})

	t.Run("messages", func(t *testing.T) {
		refused := func(t *testing.T, body, code string) {
			t.Helper()
			a.Send(body)
			if f := a.Next(); f["action"] != wire.ActionError || f["code"] != code {
				t.Fatalf("reply %v, want %s", f, code)
			}
			quiet(t)
		}
		cases++
		t.Run("subscribe to a room without a join grant", func(t *testing.T) {
			refused(t, `{"action":"subscribe","room":"C"}`, domain.CodeForbidden)
		})
		// a may join B but not write it.
		a.Send(`{"action":"subscribe","room":"B"}`)
		a.Next()
		cases++
		t.Run("targeted relay to a connection in a room one may not write", func(t *testing.T) {
			refused(t, `{"action":"update","target":"`+inBID+`","data":1}`, domain.CodeForbidden)
		})
		cases++
		t.Run("relay * reaches the writable room only", func(t *testing.T) {
			a.Send(`{"action":"update","target":"*","data":1}`)
			if f := inA.Next(); f["from"] != aID {
				t.Fatalf("room A's member got %v", f)
			}
			quiet(t)
		})
		a.Send(`{"action":"unsubscribe","room":"A"}`)
		a.Next()
		cases++
		t.Run("relay * from rooms none of which one may write", func(t *testing.T) {
			refused(t, `{"action":"update","target":"*","data":1}`, domain.CodeForbidden)
		})
		a.Send(`{"action":"subscribe","room":"A"}`)
		a.Next()
		a.Send(`{"action":"unsubscribe","room":"B"}`)
		a.Next()
		c, _ := s.Connections().Get(context.Background(), aID)
		if strings.Join(c.Rooms, ",") != "A" {
			t.Fatalf("a is in %q, want A only", c.Rooms)
		}
		cases++
		t.Run("relays past the connection's rate limit", func(t *testing.T) {
			flood := wsclient.Dial(t, ws+"?room=F&token="+minted(t, "F", "F", nil))
			listener := wsclient.Dial(t, ws+"?room=F&token="+minted(t, "F", "", nil))
			limited := 0
			for range 60 {
				flood.Send(`{"action":"update","target":"*","data":1}`)
			}
			flood.Send(`{"action":"ping"}`)
			for {
				f := flood.Next()
				if f["action"] == wire.ActionPong {
					break
				}
				if f["code"] == domain.CodeRateLimited {
					limited++
				}
			}
			got := 0
			for {
				if _, err := listener.Receive(300 * time.Millisecond); err != nil {
					break
				}
				got++
			}
			// A burst of 10 and 2 a second: of 60 sent at once, 10 and a
			// few more pass.
			if limited == 0 || got+limited != 60 || got < 10 || got > 20 {
				t.Fatalf("%d relayed, %d rate_limited of 60; want the burst through and the rest refused", got, limited)
			}
		})
	})

	httpDo := func(t *testing.T, method, path, authorization string, body string) (int, string) {
		t.Helper()
		h := map[string]string{"Content-Type": "application/json"}
		if authorization != "" {
			h["Authorization"] = authorization
		}
		resp, b := do(t, method, s.HTTPURL()+path, h, []byte(body))
		return resp.StatusCode, string(b)
	}
	nothingStored := func(t *testing.T, room string) {
		t.Helper()
		page, err := s.Items().ListItems(context.Background(), room, "", domain.MaxListLimit)
		if err != nil || len(page.Items) != 0 {
			t.Fatalf("room %s holds %d items (%v)", room, len(page.Items), err)
		}
	}

	t.Run("http", func(t *testing.T) {
		for _, tc := range []struct {
			name, method, path, authorization string
			status                            int
			body                              string
		}{
			{"PUT without Authorization", "PUT", "/rooms/A/items/x", "", 401, `{"message":"Unauthorized"}`},
			{"PUT with Basic credentials", "PUT", "/rooms/A/items/x", "Basic bWFsbG9yeTpwYXNz", 403, `{"message":"Forbidden"}`},
			{"PUT with Bearer and no token", "PUT", "/rooms/A/items/x", "Bearer", 403, `{"message":"Forbidden"}`},
			{"PUT with the token in the query string", "PUT", "/rooms/A/items/x?token=" + minted(t, "A", "A", nil), "", 401, `{"message":"Unauthorized"}`},
			{"GET without Authorization (reads are authenticated)", "GET", "/rooms/A/items", "", 401, `{"message":"Unauthorized"}`},
		} {
			cases++
			t.Run(tc.name, func(t *testing.T) {
				status, body := httpDo(t, tc.method, tc.path, tc.authorization, `{}`)
				if status != tc.status || body != tc.body {
					t.Fatalf("%d %s, want %d %s", status, body, tc.status, tc.body)
				}
				nothingStored(t, "A")
			})
		}
		for _, tc := range brokenTokens(t, "A") {
			cases++
			t.Run("PUT with a token "+tc.name, func(t *testing.T) {
				status, body := httpDo(t, "PUT", "/rooms/A/items/x", "Bearer "+tc.token, `{}`)
				if status != http.StatusForbidden || body != `{"message":"Forbidden"}` {
					t.Fatalf("%d %s, want 403 Forbidden", status, body)
				}
				nothingStored(t, "A")
			})
		}
		// A grant for room A, used on room B.
		tokenA := "Bearer " + minted(t, "A", "A", nil)
		writerB := "Bearer " + minted(t, "B", "B", nil)
		if status, body := httpDo(t, "PUT", "/rooms/B/items/keep", writerB, `{"v":1}`); status != http.StatusCreated {
			t.Fatalf("seed room B: %d %s", status, body)
		}
		inB.Next()
		for _, tc := range []struct{ name, method, path, authorization string }{
			{"PUT to room B with a token for room A", "PUT", "/rooms/B/items/x", tokenA},
			{"DELETE in room B with a token for room A", "DELETE", "/rooms/B/items/keep", tokenA},
			{"GET in room B with a token for room A", "GET", "/rooms/B/items/keep", tokenA},
			{"list room B with a token for room A", "GET", "/rooms/B/items", tokenA},
			{"PUT with a join grant only", "PUT", "/rooms/A/items/x", "Bearer " + minted(t, "A", "", nil)},
		} {
			cases++
			t.Run(tc.name, func(t *testing.T) {
				status, body := httpDo(t, tc.method, tc.path, tc.authorization, `{}`)
				var e struct{ Error struct{ Code string } }
				if status != http.StatusForbidden || json.Unmarshal([]byte(body), &e) != nil || e.Error.Code != domain.CodeForbidden {
					t.Fatalf("%d %s, want 403 forbidden", status, body)
				}
				it, err := s.Items().GetItem(context.Background(), "B", "keep")
				if err != nil || it.Version != 1 {
					t.Fatalf("room B's item after the case: %+v, %v", it, err)
				}
				nothingStored(t, "A")
				quiet(t)
			})
		}
	})

	t.Run("sns", func(t *testing.T) {
		// A record as SNS delivers it to the broadcaster, and variants.
		event := func(room string) domain.Event {
			return domain.Event{EventID: testenv.Unique(t, "ev"), Type: domain.EventItemPut, Room: room, ID: "n", Version: 1,
				Data: json.RawMessage(`{"forged":true}`), Time: time.Now().UTC()}
		}
		snsEvent := func(e domain.Event, topic, messageID string) []byte {
			body, _ := e.MarshalJSON()
			raw, _ := json.Marshal(map[string]any{"Records": []any{map[string]any{
				"EventSource": "aws:sns", "EventVersion": "1.0", "EventSubscriptionArn": topic + ":sub",
				"Sns": map[string]any{"Type": "Notification", "MessageId": messageID, "TopicArn": topic, "Message": string(body),
					"Timestamp": time.Now().UTC().Format(time.RFC3339), "MessageAttributes": map[string]any{
						"room": map[string]any{"Type": "String", "Value": e.Room}, "type": map[string]any{"Type": "String", "Value": e.Type}}},
			}}})
			return raw
		}
		topic := "arn:aws:sns:us-east-1:000000000000:pushgate-local-PushTopic"
		// The genuine one is delivered once; its replay is dropped.
		genuine := snsEvent(event("B"), topic, "replayed-message")
		if _, err := s.Invoke(context.Background(), "BroadcastFunction", genuine); err != nil {
			t.Fatal(err)
		}
		if f := inB.Next(); f["action"] != wire.ActionEvent {
			t.Fatalf("the genuine record: %v", f)
		}
		for _, tc := range []struct {
			name string
			raw  []byte
		}{
			{"a replayed record", genuine},
			{"a record of another topic", snsEvent(event("B"), "arn:aws:sns:us-east-1:999999999999:attacker", "m-other")},
			{"a record for a room that is no name", snsEvent(event("../B"), topic, "m-badroom")},
			{"a record that is no SNS event", []byte(`{"Records":[{"Sns":{"Message":"x"}}]}`)},
		} {
			cases++
			t.Run(tc.name, func(t *testing.T) {
				if _, err := s.Invoke(context.Background(), "BroadcastFunction", tc.raw); err != nil {
					t.Fatalf("invoke: %v", err)
				}
				quiet(t)
			})
		}
	})

	if cases < 40 {
		t.Errorf("%d auth cases; the suite promises at least 40", cases)
	}
	t.Logf("%d hostile auth cases", cases)
}
