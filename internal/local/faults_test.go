package local_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pushgate/pushgate/internal/domain"
	"github.com/pushgate/pushgate/internal/local"
	"github.com/pushgate/pushgate/internal/testkit/faultproxy"
	"github.com/pushgate/pushgate/internal/testkit/localtest"
	"github.com/pushgate/pushgate/internal/testkit/testenv"
	"github.com/pushgate/pushgate/internal/testkit/wsclient"
)

// answer is an HTTP response as a test reads it.
type answer struct {
	status     int
	code       string
	version    int64
	retryAfter string
	body       string
}

func call(t *testing.T, s *local.Stack, method, path, body string) answer {
	t.Helper()
	req, _ := http.NewRequest(method, s.HTTPURL()+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(localtest.Authorize(t, s, req))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var parsed struct {
		Version int64 `json:"version"`
		Error   struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &parsed); err != nil {
		t.Fatalf("%s %s answered %d with no JSON: %q", method, path, resp.StatusCode, b)
	}
	return answer{resp.StatusCode, parsed.Error.Code, parsed.Version, resp.Header.Get("Retry-After"), string(b)}
}

// receive waits for the next frame as long as the SDK's backoff under
// throttling and then an invocation's retries may take.
func receive(t *testing.T, c *wsclient.Client) map[string]any {
	t.Helper()
	fr, err := c.Receive(30 * time.Second)
	if err != nil {
		t.Fatalf("no frame: %v", err)
	}
	var f map[string]any
	if err := json.Unmarshal(fr.Data, &f); err != nil {
		t.Fatalf("frame %q: %v", fr.Data, err)
	}
	return f
}

// TestDynamoDBFaultsInEachHandler: DynamoDB (moto, behind a proxy that
// answers with AWS's throttling and 5xx errors once the SDK's retries are
// spent) fails under each handler. Each gets its documented answer —
// 503 unavailable with Retry-After, an unavailable error frame, a refused
// connect, a retried broadcast — and nothing is half-written: once
// DynamoDB is back, the store is as if the failed request never came.
func TestDynamoDBFaultsInEachHandler(t *testing.T) {
	for _, fault := range []struct {
		name string
		f    *faultproxy.Fault
	}{{"throttled", faultproxy.Throttled}, {"5xx", faultproxy.DynamoDown}} {
		t.Run(fault.name, func(t *testing.T) {
			// Each on a moto and a stack of its own; the SDK's backoff
			// under throttling is most of the time.
			t.Parallel()
			ep := testenv.StartMoto(t)
			ddb := faultproxy.Start(t, ep)
			s, _ := start(t, mode{"moto", func(t testing.TB, o *local.Options) { o.DynamoDBEndpoint, o.SNSEndpoint = ddb.URL, ep }}, nil)
			every := func(string) *faultproxy.Fault { return fault.f }
			unavailable := func(t *testing.T, a answer) {
				t.Helper()
				if a.status != http.StatusServiceUnavailable || a.code != domain.CodeUnavailable || a.retryAfter != "1" {
					t.Fatalf("answer %d %s (Retry-After %q), want 503 unavailable, Retry-After 1", a.status, a.body, a.retryAfter)
				}
			}

			t.Run("PUT whose transaction fails", func(t *testing.T) {
				ddb.Fail("dynamodb:TransactWriteItems", fault.f)
				unavailable(t, call(t, s, http.MethodPut, "/rooms/f1/items/a", `{"n":1}`))
				ddb.SetRule(nil)
				if a := call(t, s, http.MethodGet, "/rooms/f1/items/a", ""); a.status != http.StatusNotFound {
					t.Fatalf("GET after the failed PUT = %d %s, want 404", a.status, a.body)
				}
				if a := call(t, s, http.MethodGet, "/rooms/f1/events?after=0", ""); !strings.Contains(a.body, `"last":0`) {
					t.Fatalf("history after the failed PUT = %s, want no seq taken", a.body)
				}
				if a := call(t, s, http.MethodPut, "/rooms/f1/items/a", `{"n":1}`); a.status != http.StatusCreated || a.version != 1 {
					t.Fatalf("PUT once DynamoDB is back = %d %s, want 201 version 1", a.status, a.body)
				}
			})
			t.Run("PUT whose read fails", func(t *testing.T) {
				ddb.Fail("dynamodb:GetItem", fault.f)
				unavailable(t, call(t, s, http.MethodPut, "/rooms/f1/items/b", `{}`))
				ddb.SetRule(nil)
				if a := call(t, s, http.MethodGet, "/rooms/f1/items/b", ""); a.status != http.StatusNotFound {
					t.Fatalf("GET = %d, want 404", a.status)
				}
			})
			t.Run("DELETE whose transaction fails", func(t *testing.T) {
				ddb.Fail("dynamodb:TransactWriteItems", fault.f)
				unavailable(t, call(t, s, http.MethodDelete, "/rooms/f1/items/a", ""))
				ddb.SetRule(nil)
				if a := call(t, s, http.MethodGet, "/rooms/f1/items/a", ""); a.status != http.StatusOK || a.version != 1 {
					t.Fatalf("GET after the failed DELETE = %d %s, want version 1 still live", a.status, a.body)
				}
			})
			t.Run("GET and list", func(t *testing.T) {
				ddb.SetRule(every)
				unavailable(t, call(t, s, http.MethodGet, "/rooms/f1/items/a", ""))
				unavailable(t, call(t, s, http.MethodGet, "/rooms/f1/items", ""))
				unavailable(t, call(t, s, http.MethodGet, "/rooms/f1/events?after=0", ""))
				ddb.SetRule(nil)
			})
			t.Run("$connect", func(t *testing.T) {
				before := len(s.ConnectionIDs())
				ddb.SetRule(every)
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				defer cancel()
				_, resp, err := websocket.Dial(ctx, localtest.WebSocketURL(t, s, "room=f2"), nil)
				ddb.SetRule(nil)
				if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
					t.Fatalf("connect while DynamoDB fails: %v %v, want refused with 503", resp, err)
				}
				if got := len(s.ConnectionIDs()); got != before {
					t.Errorf("%d sockets open after a refused connect, want %d", got, before)
				}
			})
			t.Run("subscribe", func(t *testing.T) {
				c := dial(t, s, "f3")
				ddb.SetRule(every)
				c.Send(`{"action":"subscribe","room":"f4"}`)
				f := receive(t, c)
				ddb.SetRule(nil)
				if f["action"] != "error" || f["code"] != domain.CodeUnavailable {
					t.Fatalf("subscribe while DynamoDB fails answered %v, want an unavailable error frame", f)
				}
				call(t, s, http.MethodPut, "/rooms/f4/items/x", `{}`)
				c.Quiet() // not joined
				call(t, s, http.MethodPut, "/rooms/f3/items/x", `{}`)
				if f := c.Next(); f["room"] != "f3" {
					t.Fatalf("the socket no longer works: %v", f)
				}
			})
			t.Run("broadcast whose listing fails, then recovers", func(t *testing.T) {
				c := dial(t, s, "f5")
				// Enough failures to spend the SDK's retries of a first
				// delivery; the invocation's retry gets through.
				var left atomic.Int32
				left.Store(6)
				ddb.SetRule(func(op string) *faultproxy.Fault {
					if op == "dynamodb:Query" && left.Add(-1) >= 0 {
						return fault.f
					}
					return nil
				})
				defer ddb.SetRule(nil)
				if a := call(t, s, http.MethodPut, "/rooms/f5/items/x", `{"n":5}`); a.status != http.StatusCreated {
					t.Fatalf("PUT = %d %s", a.status, a.body)
				}
				if f := receive(t, c); f["room"] != "f5" || f["seq"] != float64(1) {
					t.Fatalf("after the listing failed: %v, want the event", f)
				}
				if ddb.Faulted("dynamodb:Query") == 0 {
					t.Fatal("no listing failed")
				}
			})
		})
	}
}
