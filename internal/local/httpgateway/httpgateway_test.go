package httpgateway_test

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushgate/pushgate/internal/local/httpgateway"
)

// recorder is a handler that keeps the event it got.
type recorder struct {
	name string
	got  *events.APIGatewayV2HTTPRequest
	resp events.APIGatewayV2HTTPResponse
	err  error
}

func (r *recorder) handle(_ context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	r.got = &ev
	resp := r.resp
	if resp.StatusCode == 0 {
		resp = events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: `{"by":"` + r.name + `"}`}
	}
	return resp, r.err
}

func TestRouting(t *testing.T) {
	item, list, anyItem, proxy := &recorder{name: "item"}, &recorder{name: "list"}, &recorder{name: "any"}, &recorder{name: "proxy"}
	g, err := httpgateway.New(httpgateway.Config{Routes: []httpgateway.Route{
		{Method: "GET", Path: "/rooms/{room}/items/{id}", Handler: item.handle},
		{Method: "GET", Path: "/rooms/{room}/items", Handler: list.handle},
		{Method: "ANY", Path: "/rooms/{room}/items/{id}", Handler: anyItem.handle},
		{Method: "GET", Path: "/files/{path+}", Handler: proxy.handle},
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	defer srv.Close()
	tests := []struct {
		method, path string
		status       int
		by           *recorder
		routeKey     string
		params       map[string]string
	}{
		{"GET", "/rooms/r1/items/i1", 200, item, "GET /rooms/{room}/items/{id}", map[string]string{"room": "r1", "id": "i1"}},
		{"GET", "/rooms/r1/items", 200, list, "GET /rooms/{room}/items", map[string]string{"room": "r1"}},
		{"POST", "/rooms/r1/items/i1", 200, anyItem, "ANY /rooms/{room}/items/{id}", map[string]string{"room": "r1", "id": "i1"}},
		{"GET", "/rooms/a%20b/items/i1", 200, item, "GET /rooms/{room}/items/{id}", map[string]string{"room": "a b", "id": "i1"}},
		{"GET", "/files/a/b/c", 200, proxy, "GET /files/{path+}", map[string]string{"path": "a/b/c"}},
		{"GET", "/rooms/r1", 404, nil, "", nil},
		{"GET", "/rooms//items/x", 404, nil, "", nil},
		{"DELETE", "/rooms/r1/items", 404, nil, "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			for _, r := range []*recorder{item, list, anyItem, proxy} {
				r.got = nil
			}
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d %s", resp.StatusCode, body)
			}
			if tc.by == nil {
				if string(body) != `{"message":"Not Found"}` {
					t.Errorf("404 body %s", body)
				}
				return
			}
			ev := tc.by.got
			if ev == nil {
				t.Fatalf("%s not called (body %s)", tc.by.name, body)
			}
			if ev.RouteKey != tc.routeKey || ev.RequestContext.RouteKey != tc.routeKey {
				t.Errorf("route key %q", ev.RouteKey)
			}
			for k, v := range tc.params {
				if ev.PathParameters[k] != v {
					t.Errorf("param %s = %q, want %q", k, ev.PathParameters[k], v)
				}
			}
		})
	}
}

func TestEventShape(t *testing.T) {
	h := &recorder{name: "h", resp: events.APIGatewayV2HTTPResponse{
		StatusCode: 201, Headers: map[string]string{"ETag": `"1"`}, Body: base64.StdEncoding.EncodeToString([]byte(`{"ok":true}`)), IsBase64Encoded: true,
		Cookies: []string{"a=b"},
	}}
	g, _ := httpgateway.New(httpgateway.Config{APIID: "abc123", Routes: []httpgateway.Route{{Method: "PUT", Path: "/x/{id}", Handler: h.handle}}})
	srv := httptest.NewServer(g)
	defer srv.Close()

	tests := []struct {
		name, contentType, body string
		base64                  bool
	}{
		{"json", "application/json; charset=utf-8", `{"a": 1}`, false},
		{"binary", "application/octet-stream", "\x00\x01", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("PUT", srv.URL+"/x/1?b=2&b=3&c=4", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.contentType)
			req.Header.Set("X-Custom", "v")
			req.Header.Add("Cookie", "s=1; t=2")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 201 || string(body) != `{"ok":true}` || resp.Header.Get("Etag") != `"1"` || resp.Header.Get("Set-Cookie") != "a=b" {
				t.Errorf("response %d %s %v", resp.StatusCode, body, resp.Header)
			}
			ev := h.got
			if ev.Version != "2.0" || ev.RawPath != "/x/1" || ev.RawQueryString != "b=2&b=3&c=4" {
				t.Errorf("event %+v", ev)
			}
			if ev.QueryStringParameters["b"] != "2,3" || ev.QueryStringParameters["c"] != "4" {
				t.Errorf("query %v", ev.QueryStringParameters)
			}
			if ev.Headers["x-custom"] != "v" || ev.Headers["content-type"] != tc.contentType || ev.Headers["cookie"] != "" {
				t.Errorf("headers %v", ev.Headers)
			}
			if strings.Join(ev.Cookies, ";") != "s=1;t=2" {
				t.Errorf("cookies %v", ev.Cookies)
			}
			rc := ev.RequestContext
			if rc.APIID != "abc123" || rc.Stage != "$default" || rc.HTTP.Method != "PUT" || rc.HTTP.SourceIP != "127.0.0.1" ||
				rc.RequestID == "" || rc.TimeEpoch == 0 || rc.HTTP.Path != "/x/1" {
				t.Errorf("request context %+v", rc)
			}
			got := ev.Body
			if ev.IsBase64Encoded != tc.base64 {
				t.Fatalf("isBase64Encoded = %v", ev.IsBase64Encoded)
			}
			if tc.base64 {
				b, _ := base64.StdEncoding.DecodeString(got)
				got = string(b)
			}
			if got != tc.body {
				t.Errorf("body %q", got)
			}
		})
	}
}

func TestHandlerErrorIsInternalServerError(t *testing.T) {
	h := &recorder{name: "h", err: errors.New("boom")}
	g, _ := httpgateway.New(httpgateway.Config{Routes: []httpgateway.Route{{Method: "GET", Path: "/", Handler: h.handle}}})
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 500 || rec.Body.String() != `{"message":"Internal Server Error"}` {
		t.Errorf("%d %s", rec.Code, rec.Body)
	}
}

func TestCORS(t *testing.T) {
	h := &recorder{name: "h"}
	g, _ := httpgateway.New(httpgateway.Config{
		Routes: []httpgateway.Route{{Method: "PUT", Path: "/x", Handler: h.handle}},
		CORS:   &httpgateway.CORS{AllowOrigins: []string{"*"}, AllowMethods: []string{"GET", "PUT"}, AllowHeaders: []string{"content-type"}, ExposeHeaders: []string{"etag"}, MaxAge: 60},
	})
	pre := httptest.NewRequest("OPTIONS", "/x", nil)
	pre.Header.Set("Origin", "http://example.test")
	pre.Header.Set("Access-Control-Request-Method", "PUT")
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, pre)
	if rec.Code != 204 || rec.Header().Get("Access-Control-Allow-Methods") != "GET,PUT" || rec.Header().Get("Access-Control-Allow-Origin") != "*" || h.got != nil {
		t.Errorf("preflight %d %v (handler called: %v)", rec.Code, rec.Header(), h.got != nil)
	}
	req := httptest.NewRequest("PUT", "/x", nil)
	req.Header.Set("Origin", "http://example.test")
	rec = httptest.NewRecorder()
	g.ServeHTTP(rec, req)
	if rec.Header().Get("Access-Control-Expose-Headers") != "etag" || rec.Header().Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("cors headers %v", rec.Header())
	}
}

// TestDefaultRouteAndLocal: the routes come first, then what only the
// local stack serves, then the $default route, then API Gateway's 404.
func TestDefaultRouteAndLocal(t *testing.T) {
	item, fallback := &recorder{name: "item"}, &recorder{name: "default"}
	local := func(r *http.Request) http.Handler {
		if r.Method != http.MethodGet || r.URL.Path != "/index.html" {
			return nil
		}
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "static") })
	}
	routes := []httpgateway.Route{
		{Method: "GET", Path: "/rooms/{room}/items/{id}", Handler: item.handle},
		{Method: "ANY", Path: httpgateway.DefaultRoute, Handler: fallback.handle},
	}
	g, err := httpgateway.New(httpgateway.Config{Routes: routes, Local: local})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		method, path string
		want         string
	}{
		{"GET", "/rooms/r/items/i", `{"by":"item"}`},
		{"GET", "/index.html", "static"},
		{"PUT", "/index.html", `{"by":"default"}`},
		{"GET", "/nope", `{"by":"default"}`},
		{"PUT", "/rooms//items/x", `{"by":"default"}`},
		{"PUT", "/rooms/r/items/a/b", `{"by":"default"}`},
	}
	for _, tc := range tests {
		fallback.got = nil
		rec := httptest.NewRecorder()
		g.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Body.String() != tc.want {
			t.Errorf("%s %s: %s, want %s", tc.method, tc.path, rec.Body, tc.want)
		}
		if tc.want == `{"by":"default"}` {
			if ev := fallback.got; ev == nil || ev.RouteKey != "$default" || ev.RawPath != tc.path || len(ev.PathParameters) != 0 {
				t.Errorf("%s %s: $default event %+v", tc.method, tc.path, ev)
			}
		}
	}
	if _, err := httpgateway.New(httpgateway.Config{Routes: append(routes, routes[1])}); err == nil {
		t.Error("two $default routes accepted")
	}
	// Without a $default route nothing local matches: API Gateway's own 404.
	g, _ = httpgateway.New(httpgateway.Config{Routes: routes[:1], Local: local})
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, httptest.NewRequest("PUT", "/rooms//items/x", nil))
	if rec.Code != http.StatusNotFound || rec.Body.String() != `{"message":"Not Found"}` || rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("no route: %d %s %v", rec.Code, rec.Body, rec.Header())
	}
}
