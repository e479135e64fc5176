package httpapi_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushgate/pushgate/internal/auth"
	"github.com/pushgate/pushgate/internal/httpapi"
	"github.com/pushgate/pushgate/internal/local/memstore"
)

// FuzzHandle sends the read and write handlers requests of any method,
// path, route, headers and body, as API Gateway could hand them over, behind
// the authorizer with a grant for room "r" only. Every answer is a 2xx–4xx
// with a small JSON body of valid UTF-8 (the in-memory store never fails, so
// a 5xx is a bug), and nothing lands outside room "r".
func FuzzHandle(f *testing.F) {
	f.Add("PUT", "PUT /rooms/{room}/items/{id}", "r", "a", "application/json", "", "", `{"x":1}`, false)
	f.Add("PUT", "PUT /rooms/{room}/items/{id}", "r", "a", "application/json; charset=utf-8", `"1"`, "", `{"x":1}`, false)
	f.Add("PUT", "PUT /rooms/{room}/items/{id}", "r", "a", "application/json", "", "*", `eyJ4IjoxfQ==`, true)
	f.Add("DELETE", "DELETE /rooms/{room}/items/{id}", "r", "a", "", `W/"3"`, "", "", false)
	f.Add("GET", "GET /rooms/{room}/items", "r", "", "", "", "", "", false)
	f.Add("GET", "GET /rooms/{room}/items/{id}", "other", "a", "", "", "", "", false)
	f.Add("PUT", "$default", "r", "..", "text/plain", "1", "*", "\xff", false)
	f.Add("PATCH", "ANY /rooms/{room}/items/{id}", "r", "a b", "application/json", "x", "y", `[]`, false)
	store := memstore.NewItems()
	pub := &recordingPublisher{}
	gate := auth.Gate{Required: true}
	reader := httpapi.NewReader(store, gate, nil)
	writer := httpapi.NewWriter(store, pub, gate, nil)
	grant := auth.Principal{User: "fuzz", Join: []string{"r"}, Write: []string{"r"}, ExpiresAt: time.Now().Add(time.Hour)}.Context()
	f.Fuzz(func(t *testing.T, method, routeKey, room, id, contentType, ifMatch, ifNoneMatch, body string, b64 bool) {
		req := events.APIGatewayV2HTTPRequest{
			Version: "2.0", RouteKey: routeKey, RawPath: "/rooms/" + room + "/items/" + id,
			PathParameters:  map[string]string{"room": room, "id": id},
			Headers:         map[string]string{"content-type": contentType, "if-match": ifMatch, "if-none-match": ifNoneMatch},
			Body:            body,
			IsBase64Encoded: b64,
			RequestContext: events.APIGatewayV2HTTPRequestContext{
				RouteKey: routeKey, Stage: "$default",
				HTTP:       events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: "/rooms/" + room + "/items/" + id},
				Authorizer: &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{Lambda: grant},
			},
		}
		for _, h := range []*httpapi.Handler{reader, writer} {
			resp, err := h.Handle(context.Background(), req)
			if err != nil {
				t.Fatalf("Handle returned an error: %v", err)
			}
			if resp.StatusCode < 200 || resp.StatusCode > 499 {
				t.Fatalf("%s %s %q: status %d %s", method, routeKey, body, resp.StatusCode, resp.Body)
			}
			if resp.StatusCode >= 400 && (!json.Valid([]byte(resp.Body)) || len(resp.Body) > 2048) {
				t.Fatalf("error body %q", resp.Body)
			}
			if !utf8.ValidString(resp.Body) {
				t.Fatalf("body is not UTF-8: %q", resp.Body)
			}
			if resp.StatusCode < 300 && room != "r" {
				t.Fatalf("%s on room %q answered %d with a grant for room r only", method, room, resp.StatusCode)
			}
		}
		for _, e := range pub.published() {
			if e.Room != "r" || !json.Valid(e.Data) && len(e.Data) > 0 {
				t.Fatalf("published %+v", e)
			}
		}
		if _, err := store.GetItem(context.Background(), room, id); err == nil && room != "r" {
			t.Fatalf("stored an item in room %q", room)
		}
	})
}
