package httpapi_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushgate/pushgate/internal/auth"
	"github.com/pushgate/pushgate/internal/httpapi"
	"github.com/pushgate/pushgate/internal/local/memstore"
)

// withAuthorizer gives req the context an HTTP API Lambda authorizer left.
func withAuthorizer(req events.APIGatewayV2HTTPRequest, lambda map[string]any) events.APIGatewayV2HTTPRequest {
	if lambda != nil {
		req.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{Lambda: lambda}
	}
	return req
}

func grants(user, join, write string, exp time.Time) map[string]any {
	return auth.Principal{User: user, Join: strings.Fields(join), Write: strings.Fields(write), ExpiresAt: exp}.Context()
}

// TestAuthorizedWrites: behind the authorizer, each write needs a grant
// for its room; refused ones store and publish nothing.
func TestAuthorizedRequests(t *testing.T) {
	later := fixedNow.Add(time.Hour)
	tests := []struct {
		name       string
		reader     bool
		req        events.APIGatewayV2HTTPRequest
		lambda     map[string]any
		wantStatus int
		wantCode   string
	}{
		{"PUT with a write grant", false, putRequest("demo", "a", `{"x":1}`), grants("u", "", "demo", later), http.StatusCreated, ""},
		{"PUT with a prefix grant", false, putRequest("game-7", "a", `{}`), grants("u", "", "game-*", later), http.StatusCreated, ""},
		{"PUT with every room", false, putRequest("any", "a", `{}`), grants("u", "", "*", later), http.StatusCreated, ""},
		{"PUT with no context", false, putRequest("demo", "a", `{}`), nil, http.StatusUnauthorized, "unauthorized"},
		{"PUT with a context naming nobody", false, putRequest("demo", "a", `{}`), map[string]any{"write": "demo"}, http.StatusUnauthorized, "unauthorized"},
		{"PUT with an unreadable expiry", false, putRequest("demo", "a", `{}`), map[string]any{"user": "u", "write": "demo", "exp": "soon"}, http.StatusUnauthorized, "unauthorized"},
		{"PUT after the token expired (cached verdict)", false, putRequest("demo", "a", `{}`), grants("u", "", "demo", fixedNow.Add(-time.Second)), http.StatusUnauthorized, "unauthorized"},
		{"PUT to room B with a grant for room A", false, putRequest("B", "a", `{}`), grants("u", "B", "A", later), http.StatusForbidden, "forbidden"},
		{"PUT with a join grant only", false, putRequest("demo", "a", `{}`), grants("u", "demo", "", later), http.StatusForbidden, "forbidden"},
		{"PUT outside the prefix", false, putRequest("gamex", "a", `{}`), grants("u", "", "game-*", later), http.StatusForbidden, "forbidden"},
		{"DELETE to room B with a grant for room A", false, itemRequest(http.MethodDelete, "B", "a"), grants("u", "", "A", later), http.StatusForbidden, "forbidden"},
		{"DELETE with no context", false, itemRequest(http.MethodDelete, "demo", "a"), nil, http.StatusUnauthorized, "unauthorized"},
		{"GET with a join grant", true, itemRequest(http.MethodGet, "demo", "a"), grants("u", "demo", "", later), http.StatusNotFound, "not_found"},
		{"GET of room B with a grant for room A", true, itemRequest(http.MethodGet, "B", "a"), grants("u", "A", "B", later), http.StatusForbidden, "forbidden"},
		{"list of room B with a grant for room A", true, listRequest("B", nil), grants("u", "A", "", later), http.StatusForbidden, "forbidden"},
		{"list with no context", true, listRequest("demo", nil), nil, http.StatusUnauthorized, "unauthorized"},
		{"list with a string exp, as a REST context has it", true, listRequest("demo", nil), map[string]any{"user": "u", "join": "demo", "exp": "4102444800"}, http.StatusOK, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			gate := auth.Gate{Required: true}
			h := httpapi.NewWriter(f.store, f.pub, gate, slog.New(slog.NewJSONHandler(&bytes.Buffer{}, nil)), httpapi.WithClock(func() time.Time { return fixedNow }))
			if tc.reader {
				h = httpapi.NewReader(f.store, gate, nil, httpapi.WithClock(func() time.Time { return fixedNow }))
			}
			resp := f.do(t, h, withAuthorizer(tc.req, tc.lambda))
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d %s, want %d", resp.StatusCode, resp.Body, tc.wantStatus)
			}
			if tc.wantCode != "" && !strings.Contains(resp.Body, `"code":"`+tc.wantCode+`"`) {
				t.Errorf("body %s, want code %s", resp.Body, tc.wantCode)
			}
			if tc.wantStatus >= 400 {
				if f.store.writes != 0 || len(f.pub.published()) != 0 {
					t.Errorf("refused request wrote %d items and published %d events", f.store.writes, len(f.pub.published()))
				}
			}
		})
	}
}

// TestOpenGateIsAnonymous: with auth off (or public reads) a request
// without an authorizer context is served.
func TestOpenGateIsAnonymous(t *testing.T) {
	h := httpapi.NewWriter(memstore.NewItems(), &recordingPublisher{}, auth.Gate{}, nil)
	f := newFixture(t)
	if resp := f.do(t, h, putRequest("demo", "a", `{}`)); resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d %s, want 201", resp.StatusCode, resp.Body)
	}
}
