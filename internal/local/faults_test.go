package local_test

import (
	"context"
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
)

// throttledWait is how long a frame may take when the SDK's backoff under
// throttling and then an invocation's retries stand before it.
const throttledWait = 30 * time.Second

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
				f := c.NextWithin(throttledWait)
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
				if f := c.NextWithin(throttledWait); f["room"] != "f5" || f["seq"] != float64(1) {
					t.Fatalf("after the listing failed: %v, want the event", f)
				}
				if ddb.Faulted("dynamodb:Query") == 0 {
					t.Fatal("no listing failed")
				}
			})
		})
	}
}
