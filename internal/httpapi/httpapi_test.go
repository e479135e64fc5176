package httpapi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushgate/pushgate/internal/auth"
	"github.com/pushgate/pushgate/internal/domain"
	"github.com/pushgate/pushgate/internal/httpapi"
	"github.com/pushgate/pushgate/internal/local/memstore"
	"github.com/pushgate/pushgate/internal/wire"
)

// recordingStore wraps the in-memory store to count completed writes, see
// the limits asked for, and fail on demand.
type recordingStore struct {
	domain.ItemStore
	mu         sync.Mutex
	writes     int
	gets       int
	lastLimit  int
	lastCursor string
	getErr     error
	listErr    error
}

func (s *recordingStore) GetItem(ctx context.Context, room, id string) (domain.Item, error) {
	s.mu.Lock()
	s.gets++
	err := s.getErr
	s.mu.Unlock()
	if err != nil {
		return domain.Item{}, err
	}
	return s.ItemStore.GetItem(ctx, room, id)
}

func (s *recordingStore) ListItems(ctx context.Context, room, cursor string, limit int) (domain.ItemPage, error) {
	s.mu.Lock()
	s.lastLimit, s.lastCursor = limit, cursor
	err := s.listErr
	s.mu.Unlock()
	if err != nil {
		return domain.ItemPage{}, err
	}
	return s.ItemStore.ListItems(ctx, room, cursor, limit)
}

func (s *recordingStore) PutItem(ctx context.Context, it domain.Item, pre domain.Precondition, now domain.Change) (domain.Put, error) {
	out, err := s.ItemStore.PutItem(ctx, it, pre, now)
	if err == nil {
		s.mu.Lock()
		s.writes++
		s.mu.Unlock()
	}
	return out, err
}

func (s *recordingStore) DeleteItem(ctx context.Context, room, id string, pre domain.Precondition, now domain.Change) (domain.Deleted, error) {
	out, err := s.ItemStore.DeleteItem(ctx, room, id, pre, now)
	if err == nil {
		s.mu.Lock()
		s.writes++
		s.mu.Unlock()
	}
	return out, err
}

func (s *recordingStore) writeCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

type recordingPublisher struct {
	mu     sync.Mutex
	events []domain.Event
	err    error
}

func (p *recordingPublisher) Publish(_ context.Context, e domain.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	p.events = append(p.events, e)
	return nil
}

func (p *recordingPublisher) published() []domain.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.events)
}

func (p *recordingPublisher) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.err = err
}

// fixedNow is in a non-UTC zone with nanoseconds, so formatting is exercised.
var fixedNow = time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.FixedZone("CET", 3600))

type fixture struct {
	store  *recordingStore
	pub    *recordingPublisher
	logs   *bytes.Buffer
	reader *httpapi.Handler
	writer *httpapi.Handler
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{
		store: &recordingStore{ItemStore: memstore.NewItems()},
		pub:   &recordingPublisher{},
		logs:  &bytes.Buffer{},
	}
	log := slog.New(slog.NewJSONHandler(f.logs, nil))
	var n int
	var mu sync.Mutex
	ids := func() string {
		mu.Lock()
		defer mu.Unlock()
		n++
		return fmt.Sprintf("evt-%d", n)
	}
	clock := func() time.Time { return fixedNow }
	f.reader = httpapi.NewReader(f.store, auth.Gate{}, log, httpapi.WithClock(clock))
	// The clock is fixed in the past; the history must outlive it.
	f.writer = httpapi.NewWriter(f.store, f.pub, auth.Gate{}, log, httpapi.WithClock(clock), httpapi.WithEventIDs(ids), httpapi.WithHistoryTTL(100*365*24*time.Hour))
	return f
}

func (f *fixture) do(t *testing.T, h *httpapi.Handler, req events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	t.Helper()
	resp, err := h.Handle(context.Background(), req)
	if err != nil {
		t.Fatalf("Handle returned error %v; failures must be HTTP responses", err)
	}
	if got := resp.Headers["Content-Type"]; got != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", got)
	}
	if !json.Valid([]byte(resp.Body)) {
		t.Errorf("body is not JSON: %q", resp.Body)
	}
	return resp
}

// put stores body as room/id through the writer and fails the test unless
// it succeeds.
func (f *fixture) put(t *testing.T, room, id, body string) itemJSON {
	t.Helper()
	resp := f.do(t, f.writer, putRequest(room, id, body))
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		t.Fatalf("seed PUT %s/%s: status %d %s", room, id, resp.StatusCode, resp.Body)
	}
	return decodeItem(t, resp.Body)
}

func itemRequest(method, room, id string) events.APIGatewayV2HTTPRequest {
	return events.APIGatewayV2HTTPRequest{
		Version:        "2.0",
		RouteKey:       method + " " + httpapi.ItemPath,
		RawPath:        "/rooms/" + room + "/items/" + id,
		PathParameters: map[string]string{"room": room, "id": id},
		Headers:        map[string]string{},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:  method + " " + httpapi.ItemPath,
			Stage:     "$default",
			RequestID: "req-1",
			HTTP:      events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method},
		},
	}
}

func putRequest(room, id, body string) events.APIGatewayV2HTTPRequest {
	req := itemRequest(http.MethodPut, room, id)
	req.Headers["content-type"] = "application/json"
	req.Body = body
	return req
}

func listRequest(room string, query map[string]string) events.APIGatewayV2HTTPRequest {
	return events.APIGatewayV2HTTPRequest{
		Version:               "2.0",
		RouteKey:              "GET " + httpapi.ItemsPath,
		RawPath:               "/rooms/" + room + "/items",
		PathParameters:        map[string]string{"room": room},
		QueryStringParameters: query,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			Stage: "$default",
			HTTP:  events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: http.MethodGet},
		},
	}
}

type itemJSON struct {
	Room      string          `json:"room"`
	ID        string          `json:"id"`
	Version   int64           `json:"version"`
	UpdatedAt string          `json:"updatedAt"`
	Data      json.RawMessage `json:"data"`
}

func decodeItem(t *testing.T, body string) itemJSON {
	t.Helper()
	var it itemJSON
	if err := json.Unmarshal([]byte(body), &it); err != nil {
		t.Fatalf("decode item %q: %v", body, err)
	}
	return it
}

type errorJSON struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Item *itemJSON `json:"item"`
}

func decodeError(t *testing.T, body string) errorJSON {
	t.Helper()
	var e errorJSON
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("decode error %q: %v", body, err)
	}
	if e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("error body lacks code or message: %s", body)
	}
	return e
}

func TestRouting(t *testing.T) {
	withRoute := func(req events.APIGatewayV2HTTPRequest, key string) events.APIGatewayV2HTTPRequest {
		req.RouteKey = key
		req.RequestContext.RouteKey = key
		return req
	}
	viaDefault := func(method, stage, path string) events.APIGatewayV2HTTPRequest {
		return events.APIGatewayV2HTTPRequest{
			RouteKey: "$default",
			RawPath:  path,
			Headers:  map[string]string{"content-type": "application/json"},
			Body:     `{}`,
			RequestContext: events.APIGatewayV2HTTPRequestContext{
				Stage: stage,
				HTTP:  events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path},
			},
		}
	}
	long := strings.Repeat("x", wire.MaxNameLen)
	tests := []struct {
		name      string
		writer    bool
		req       events.APIGatewayV2HTTPRequest
		status    int
		code      string
		wantAllow *string
	}{
		{name: "reader GET item", req: itemRequest(http.MethodGet, "r1", "a"), status: 200},
		{name: "reader GET list", req: listRequest("r1", nil), status: 200},
		{name: "reader ANY item GET", req: withRoute(itemRequest(http.MethodGet, "r1", "a"), "ANY "+httpapi.ItemPath), status: 200},
		{name: "reader ANY list GET", req: withRoute(listRequest("r1", nil), "ANY "+httpapi.ItemsPath), status: 200},
		{name: "reader $default item", req: viaDefault(http.MethodGet, "$default", "/rooms/r1/items/a"), status: 200},
		{name: "reader $default list", req: viaDefault(http.MethodGet, "$default", "/rooms/r1/items"), status: 200},
		{name: "reader $default named stage", req: viaDefault(http.MethodGet, "prod", "/prod/rooms/r1/items/a"), status: 200},
		{name: "reader PUT is 405", req: putRequest("r1", "a", `{}`), status: 405, code: domain.CodeMethodNotAllowed, wantAllow: ptr("GET, PUT, DELETE")},
		{name: "reader DELETE is 405", req: itemRequest(http.MethodDelete, "r1", "a"), status: 405, code: domain.CodeMethodNotAllowed, wantAllow: ptr("GET, PUT, DELETE")},
		{name: "reader ANY POST is 405", req: withRoute(itemRequest(http.MethodPost, "r1", "a"), "ANY "+httpapi.ItemPath), status: 405, code: domain.CodeMethodNotAllowed, wantAllow: ptr("GET, PUT, DELETE")},
		{name: "reader $default list PUT is 405", req: viaDefault(http.MethodPut, "$default", "/rooms/r1/items"), status: 405, code: domain.CodeMethodNotAllowed, wantAllow: ptr("GET")},
		{name: "reader unknown route key", req: withRoute(itemRequest(http.MethodGet, "r1", "a"), "GET /other"), status: 404, code: domain.CodeNotFound},
		{name: "reader malformed route key", req: withRoute(itemRequest(http.MethodGet, "r1", "a"), "nonsense"), status: 404, code: domain.CodeNotFound},
		{name: "reader $default unknown path", req: viaDefault(http.MethodGet, "$default", "/rooms/r1"), status: 404, code: domain.CodeNotFound},
		{name: "reader $default too deep", req: viaDefault(http.MethodGet, "$default", "/rooms/r1/items/a/b"), status: 404, code: domain.CodeNotFound},
		{name: "reader $default empty room segment", req: viaDefault(http.MethodPut, "$default", "/rooms//items/x"), status: 404, code: domain.CodeNotFound},
		{name: "reader $default root", req: viaDefault(http.MethodGet, "$default", "/"), status: 404, code: domain.CodeNotFound},
		{name: "reader $default trailing slash", req: viaDefault(http.MethodGet, "$default", "/rooms/r1/items/"), status: 404, code: domain.CodeNotFound},
		{name: "dot id", req: itemRequest(http.MethodGet, "r1", "."), status: 400, code: domain.CodeInvalidID},
		{name: "dot-dot id", req: itemRequest(http.MethodGet, "r1", ".."), status: 400, code: domain.CodeInvalidID},
		{name: "dot room", req: itemRequest(http.MethodGet, ".", "a"), status: 400, code: domain.CodeInvalidRoom},
		{name: "list dot-dot room", req: listRequest("..", nil), status: 400, code: domain.CodeInvalidRoom},
		{name: "reader $default wrong segment", req: viaDefault(http.MethodGet, "$default", "/rooms/r1/things/a"), status: 404, code: domain.CodeNotFound},
		{name: "invalid room", req: itemRequest(http.MethodGet, "bad room", "a"), status: 400, code: domain.CodeInvalidRoom},
		{name: "missing room", req: itemRequest(http.MethodGet, "", "a"), status: 400, code: domain.CodeInvalidRoom},
		{name: "room too long", req: itemRequest(http.MethodGet, long+"x", "a"), status: 400, code: domain.CodeInvalidRoom},
		{name: "invalid id", req: itemRequest(http.MethodGet, "r1", "a/b"), status: 400, code: domain.CodeInvalidID},
		{name: "percent left in id", req: itemRequest(http.MethodGet, "r1", "a%3Ab"), status: 400, code: domain.CodeInvalidID},
		{name: "id too long", req: itemRequest(http.MethodGet, "r1", long+"x"), status: 400, code: domain.CodeInvalidID},
		{name: "list invalid room", req: listRequest("r!", nil), status: 400, code: domain.CodeInvalidRoom},
		{name: "longest names", req: itemRequest(http.MethodGet, long, long), status: 404, code: domain.CodeNotFound},

		{name: "writer PUT", writer: true, req: putRequest("r1", "b", `{}`), status: 201},
		{name: "writer ANY PUT", writer: true, req: withRoute(putRequest("r1", "b", `{}`), "ANY "+httpapi.ItemPath), status: 201},
		{name: "writer $default PUT", writer: true, req: viaDefault(http.MethodPut, "$default", "/rooms/r1/items/b"), status: 201},
		{name: "writer DELETE", writer: true, req: itemRequest(http.MethodDelete, "r1", "a"), status: 200},
		{name: "writer GET is 405", writer: true, req: itemRequest(http.MethodGet, "r1", "a"), status: 405, code: domain.CodeMethodNotAllowed, wantAllow: ptr("GET, PUT, DELETE")},
		{name: "writer PATCH is 405", writer: true, req: withRoute(itemRequest(http.MethodPatch, "r1", "a"), "ANY "+httpapi.ItemPath), status: 405, code: domain.CodeMethodNotAllowed, wantAllow: ptr("GET, PUT, DELETE")},
		{name: "writer list is 405", writer: true, req: listRequest("r1", nil), status: 405, code: domain.CodeMethodNotAllowed, wantAllow: ptr("GET")},
		{name: "writer unknown route", writer: true, req: withRoute(putRequest("r1", "a", `{}`), "PUT /rooms/{room}"), status: 404, code: domain.CodeNotFound},
		{name: "writer invalid id", writer: true, req: putRequest("r1", "", `{}`), status: 400, code: domain.CodeInvalidID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.put(t, "r1", "a", `{"seed":true}`)
			writes, published := f.store.writeCount(), len(f.pub.published())
			h := f.reader
			if tt.writer {
				h = f.writer
			}
			resp := f.do(t, h, tt.req)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tt.status, resp.Body)
			}
			if tt.code != "" {
				if got := decodeError(t, resp.Body).Error.Code; got != tt.code {
					t.Errorf("code = %q, want %q", got, tt.code)
				}
			}
			allow, hasAllow := resp.Headers["Allow"]
			switch {
			case tt.wantAllow == nil && hasAllow:
				t.Errorf("unexpected Allow %q", allow)
			case tt.wantAllow != nil && (!hasAllow || allow != *tt.wantAllow):
				t.Errorf("Allow = %q (present %v), want %q", allow, hasAllow, *tt.wantAllow)
			}
			if resp.StatusCode >= 400 {
				if got := f.store.writeCount(); got != writes {
					t.Errorf("a %d wrote to the store", resp.StatusCode)
				}
				if got := len(f.pub.published()); got != published {
					t.Errorf("a %d published", resp.StatusCode)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestPutRejects covers every way a PUT is refused: each leaves the store
// and the topic untouched.
func TestPutRejects(t *testing.T) {
	tooBig := `{"k":"` + strings.Repeat("x", httpapi.MaxItemBytes-7) + `"}`
	tests := []struct {
		name   string
		seed   bool
		edit   func(*events.APIGatewayV2HTTPRequest)
		status int
		code   string
	}{
		{name: "no content type", edit: delHeader("content-type"), status: 415, code: domain.CodeUnsupportedType},
		{name: "text/plain", edit: setHeader("content-type", "text/plain"), status: 415, code: domain.CodeUnsupportedType},
		{name: "json-patch", edit: setHeader("content-type", "application/json-patch+json"), status: 415, code: domain.CodeUnsupportedType},
		{name: "unparsable content type", edit: setHeader("content-type", "application/json; charset"), status: 415, code: domain.CodeUnsupportedType},
		{name: "latin1 charset", edit: setHeader("content-type", "application/json; charset=iso-8859-1"), status: 415, code: domain.CodeUnsupportedType},
		{name: "array", edit: setBody(`[1,2]`), status: 400, code: domain.CodeInvalidJSON},
		{name: "string", edit: setBody(`"x"`), status: 400, code: domain.CodeInvalidJSON},
		{name: "number", edit: setBody(`1`), status: 400, code: domain.CodeInvalidJSON},
		{name: "null", edit: setBody(`null`), status: 400, code: domain.CodeInvalidJSON},
		{name: "empty", edit: setBody(``), status: 400, code: domain.CodeInvalidJSON},
		{name: "whitespace only", edit: setBody(" \n"), status: 400, code: domain.CodeInvalidJSON},
		{name: "trailing garbage", edit: setBody(`{"a":1}x`), status: 400, code: domain.CodeInvalidJSON},
		{name: "two objects", edit: setBody(`{"a":1}{"b":2}`), status: 400, code: domain.CodeInvalidJSON},
		{name: "truncated", edit: setBody(`{"a":`), status: 400, code: domain.CodeInvalidJSON},
		{name: "invalid utf-8", edit: setBody("{\"a\":\"\xff\"}"), status: 400, code: domain.CodeInvalidJSON},
		{name: "non-JSON leading space", edit: setBody("\u00a0{}"), status: 400, code: domain.CodeInvalidJSON},
		{name: "bad base64", edit: func(r *events.APIGatewayV2HTTPRequest) { r.Body, r.IsBase64Encoded = "!!notbase64", true }, status: 400, code: domain.CodeBadRequest},
		{name: "base64 of an array", edit: base64Body(`[1]`), status: 400, code: domain.CodeInvalidJSON},
		{name: "one byte over the limit", edit: setBody(tooBig), status: 413, code: domain.CodeTooLarge},
		{name: "base64 over the limit", edit: base64Body(tooBig), status: 413, code: domain.CodeTooLarge},
		// Refused by its length before any decoding, so not reported as bad base64.
		{name: "huge base64", edit: func(r *events.APIGatewayV2HTTPRequest) {
			r.Body, r.IsBase64Encoded = strings.Repeat("!", base64.StdEncoding.EncodedLen(httpapi.MaxItemBytes)+1), true
		}, status: 413, code: domain.CodeTooLarge},
		{name: "if-match weak", seed: true, edit: setHeader("if-match", `W/"1"`), status: 400, code: domain.CodeBadRequest},
		{name: "if-match word", seed: true, edit: setHeader("if-match", `abc`), status: 400, code: domain.CodeBadRequest},
		{name: "if-match zero", seed: true, edit: setHeader("if-match", `0`), status: 400, code: domain.CodeBadRequest},
		{name: "if-match negative", seed: true, edit: setHeader("if-match", `"-1"`), status: 400, code: domain.CodeBadRequest},
		{name: "if-match plus", seed: true, edit: setHeader("if-match", `+1`), status: 400, code: domain.CodeBadRequest},
		{name: "if-match star", seed: true, edit: setHeader("if-match", `*`), status: 400, code: domain.CodeBadRequest},
		{name: "if-match list", seed: true, edit: setHeader("if-match", `"1", "2"`), status: 400, code: domain.CodeBadRequest},
		{name: "if-match empty", seed: true, edit: setHeader("if-match", ``), status: 400, code: domain.CodeBadRequest},
		{name: "if-match empty quotes", seed: true, edit: setHeader("if-match", `""`), status: 400, code: domain.CodeBadRequest},
		{name: "if-match overflow", seed: true, edit: setHeader("if-match", `99999999999999999999`), status: 400, code: domain.CodeBadRequest},
		{name: "if-none-match tag", seed: true, edit: setHeader("if-none-match", `"1"`), status: 400, code: domain.CodeBadRequest},
		{name: "both conditions", edit: func(r *events.APIGatewayV2HTTPRequest) {
			r.Headers["if-match"], r.Headers["if-none-match"] = "1", "*"
		}, status: 400, code: domain.CodeBadRequest},
		{name: "if-match mismatch bare", seed: true, edit: setHeader("if-match", `2`), status: 412, code: domain.CodePrecondition},
		{name: "if-match mismatch quoted", seed: true, edit: setHeader("if-match", `"2"`), status: 412, code: domain.CodePrecondition},
		{name: "if-match on missing item", edit: setHeader("if-match", `"1"`), status: 412, code: domain.CodePrecondition},
		{name: "if-none-match on existing", seed: true, edit: setHeader("if-none-match", `*`), status: 409, code: domain.CodeConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			const seedData = `{"seed":1}`
			if tt.seed {
				f.put(t, "r1", "a", seedData)
			}
			writes, published := f.store.writeCount(), len(f.pub.published())
			req := putRequest("r1", "a", `{"new":true}`)
			tt.edit(&req)
			resp := f.do(t, f.writer, req)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d; body %.200s", resp.StatusCode, tt.status, resp.Body)
			}
			if got := decodeError(t, resp.Body).Error.Code; got != tt.code {
				t.Errorf("code = %q, want %q", got, tt.code)
			}
			if _, ok := resp.Headers["ETag"]; ok {
				t.Errorf("an error carries an ETag")
			}
			if got := f.store.writeCount(); got != writes {
				t.Errorf("store written %d times", got-writes)
			}
			if got := len(f.pub.published()); got != published {
				t.Errorf("published %d events", got-published)
			}
			got := f.do(t, f.reader, itemRequest(http.MethodGet, "r1", "a"))
			switch {
			case tt.seed && (got.StatusCode != 200 || string(decodeItem(t, got.Body).Data) != seedData || got.Headers["ETag"] != `"1"`):
				t.Errorf("seeded item changed: %d %s", got.StatusCode, got.Body)
			case !tt.seed && got.StatusCode != 404:
				t.Errorf("item created: %d %s", got.StatusCode, got.Body)
			}
		})
	}
}

func setHeader(k, v string) func(*events.APIGatewayV2HTTPRequest) {
	return func(r *events.APIGatewayV2HTTPRequest) { r.Headers[k] = v }
}

func delHeader(k string) func(*events.APIGatewayV2HTTPRequest) {
	return func(r *events.APIGatewayV2HTTPRequest) { delete(r.Headers, k) }
}

func setBody(b string) func(*events.APIGatewayV2HTTPRequest) {
	return func(r *events.APIGatewayV2HTTPRequest) { r.Body = b }
}

func base64Body(b string) func(*events.APIGatewayV2HTTPRequest) {
	return func(r *events.APIGatewayV2HTTPRequest) {
		r.Body, r.IsBase64Encoded = base64.StdEncoding.EncodeToString([]byte(b)), true
	}
}

func TestPutAccepts(t *testing.T) {
	atLimit := `{"k":"` + strings.Repeat("x", httpapi.MaxItemBytes-8) + `"}`
	tests := []struct {
		name     string
		seed     bool
		edit     func(*events.APIGatewayV2HTTPRequest)
		status   int
		version  int64
		wantData string
	}{
		{name: "create", status: 201, version: 1, wantData: `{"new":true}`},
		{name: "replace", seed: true, status: 200, version: 2, wantData: `{"new":true}`},
		{name: "charset utf-8", edit: setHeader("content-type", "application/json; charset=utf-8"), status: 201, version: 1, wantData: `{"new":true}`},
		{name: "upper-case media type", edit: setHeader("content-type", "Application/JSON;Charset=UTF-8"), status: 201, version: 1, wantData: `{"new":true}`},
		{name: "mixed-case header name", edit: func(r *events.APIGatewayV2HTTPRequest) {
			delete(r.Headers, "content-type")
			r.Headers["Content-Type"] = "application/json"
		}, status: 201, version: 1, wantData: `{"new":true}`},
		{name: "base64", edit: base64Body(`{"b64": "é"}`), status: 201, version: 1, wantData: `{"b64": "é"}`},
		{name: "surrounding whitespace dropped", edit: setBody(" \r\n\t{ \"a\" : 1 }\n"), status: 201, version: 1, wantData: `{ "a" : 1 }`},
		{name: "exactly at the limit", edit: setBody(atLimit), status: 201, version: 1, wantData: atLimit},
		{name: "base64 at the limit", edit: base64Body(atLimit), status: 201, version: 1, wantData: atLimit},
		{name: "if-match bare", seed: true, edit: setHeader("if-match", `1`), status: 200, version: 2, wantData: `{"new":true}`},
		{name: "if-match quoted", seed: true, edit: setHeader("if-match", `"1"`), status: 200, version: 2, wantData: `{"new":true}`},
		{name: "if-match padded", seed: true, edit: setHeader("if-match", ` "1" `), status: 200, version: 2, wantData: `{"new":true}`},
		{name: "if-none-match creates", edit: setHeader("if-none-match", `*`), status: 201, version: 1, wantData: `{"new":true}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if tt.seed {
				f.put(t, "r1", "a", `{"seed":1}`)
			}
			req := putRequest("r1", "a", `{"new":true}`)
			if tt.edit != nil {
				tt.edit(&req)
			}
			resp := f.do(t, f.writer, req)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d; body %.200s", resp.StatusCode, tt.status, resp.Body)
			}
			if got, want := resp.Headers["ETag"], fmt.Sprintf(`"%d"`, tt.version); got != want {
				t.Errorf("ETag = %s, want %s", got, want)
			}
			it := decodeItem(t, resp.Body)
			want := itemJSON{Room: "r1", ID: "a", Version: tt.version, UpdatedAt: "2026-03-04T04:06:07.123456789Z", Data: json.RawMessage(tt.wantData)}
			if it.Room != want.Room || it.ID != want.ID || it.Version != want.Version || it.UpdatedAt != want.UpdatedAt || string(it.Data) != tt.wantData {
				t.Errorf("item = %+.200v, want %+.200v", it, want)
			}
			evs := f.pub.published()
			if len(evs) == 0 || string(evs[len(evs)-1].Data) != tt.wantData || evs[len(evs)-1].Version != tt.version {
				t.Errorf("the put was not published with its data and version")
			}
			got := f.do(t, f.reader, itemRequest(http.MethodGet, "r1", "a"))
			if string(decodeItem(t, got.Body).Data) != tt.wantData {
				t.Errorf("stored data differs")
			}
		})
	}
}

func TestPutAfterDeleteIsCreated(t *testing.T) {
	f := newFixture(t)
	f.put(t, "r1", "a", `{"v":1}`)
	if resp := f.do(t, f.writer, itemRequest(http.MethodDelete, "r1", "a")); resp.StatusCode != 200 {
		t.Fatalf("DELETE: %d %s", resp.StatusCode, resp.Body)
	}
	resp := f.do(t, f.writer, putRequest("r1", "a", `{"v":3}`))
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("PUT over a tombstone: status %d, want 201", resp.StatusCode)
	}
	if it := decodeItem(t, resp.Body); it.Version != 3 || resp.Headers["ETag"] != `"3"` {
		t.Errorf("version %d, ETag %s; want 3 continuing the sequence", it.Version, resp.Headers["ETag"])
	}
}

// TestPutDoesNotReadFirst: the store's answer tells a create from a
// replace, so the handler reads nothing of its own before a PUT (the store
// reads what its transaction needs), and a PUT works while GETs fail.
func TestPutDoesNotReadFirst(t *testing.T) {
	f := newFixture(t)
	f.store.getErr = errors.New("reads are failing")
	if resp := f.do(t, f.writer, putRequest("r1", "a", `{}`)); resp.StatusCode != 201 {
		t.Fatalf("create: status %d %s", resp.StatusCode, resp.Body)
	}
	if resp := f.do(t, f.writer, putRequest("r1", "a", `{}`)); resp.StatusCode != 200 {
		t.Fatalf("replace: status %d %s", resp.StatusCode, resp.Body)
	}
}

func TestPublishedEvents(t *testing.T) {
	f := newFixture(t)
	data := `{"z": 1, "a": "<b>&amp;</b>", "n": 1.50e+3, "u": "\u00e9é", "nested": {"x": [1, 2 ,3]}}`
	put := f.do(t, f.writer, putRequest("room.1", "item:1", data))
	del := f.do(t, f.writer, itemRequest(http.MethodDelete, "room.1", "item:1"))
	again := f.do(t, f.writer, itemRequest(http.MethodDelete, "room.1", "item:1"))
	for _, r := range []events.APIGatewayV2HTTPResponse{put, del, again} {
		if r.StatusCode >= 300 {
			t.Fatalf("status %d %s", r.StatusCode, r.Body)
		}
	}
	stamp := fixedNow.UTC()
	want := []domain.Event{
		{EventID: "evt-1", Type: domain.EventItemPut, Room: "room.1", ID: "item:1", Version: 1, Data: json.RawMessage(data), Time: stamp},
		{EventID: "evt-2", Seq: 2, Type: domain.EventItemDeleted, Room: "room.1", ID: "item:1", Version: 2, Time: stamp},
		// The repeated delete publishes the event the delete recorded.
		{EventID: "evt-2", Seq: 2, Type: domain.EventItemDeleted, Room: "room.1", ID: "item:1", Version: 2, Time: stamp},
	}
	want[0].Seq = 1
	got := f.pub.published()
	if len(got) != len(want) {
		t.Fatalf("published %d events, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.EventID != w.EventID || g.Seq != w.Seq || g.Type != w.Type || g.Room != w.Room || g.ID != w.ID ||
			g.Version != w.Version || !bytes.Equal(g.Data, w.Data) || !g.Time.Equal(w.Time) {
			t.Errorf("event %d = %+v, want %+v", i, g, w)
		}
	}
	if !bytes.Equal(decodeItem(t, put.Body).Data, []byte(data)) {
		t.Errorf("PUT response data not byte for byte: %s", put.Body)
	}
	if strings.Contains(del.Body, `"data"`) || strings.Contains(again.Body, `"data"`) {
		t.Errorf("DELETE response carries data: %s", del.Body)
	}
}

func TestDelete(t *testing.T) {
	tests := []struct {
		name    string
		seed    bool
		deleted bool // the seeded item is already deleted
		header  [2]string
		status  int
		code    string
		version int64
	}{
		{name: "existing", seed: true, status: 200, version: 2},
		{name: "if-match bare", seed: true, header: [2]string{"if-match", "1"}, status: 200, version: 2},
		{name: "if-match quoted", seed: true, header: [2]string{"if-match", `"1"`}, status: 200, version: 2},
		{name: "repeated", seed: true, deleted: true, status: 200, version: 2},
		{name: "never existed", status: 404, code: domain.CodeNotFound},
		{name: "if-match mismatch", seed: true, header: [2]string{"if-match", `"7"`}, status: 412, code: domain.CodePrecondition},
		{name: "if-match malformed", seed: true, header: [2]string{"if-match", `v1`}, status: 400, code: domain.CodeBadRequest},
		{name: "if-none-match", seed: true, header: [2]string{"if-none-match", `*`}, status: 400, code: domain.CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if tt.seed {
				f.put(t, "r1", "a", `{"seed":1}`)
			}
			if tt.deleted {
				f.do(t, f.writer, itemRequest(http.MethodDelete, "r1", "a"))
			}
			writes, published := f.store.writeCount(), len(f.pub.published())
			req := itemRequest(http.MethodDelete, "r1", "a")
			if tt.header[0] != "" {
				req.Headers[tt.header[0]] = tt.header[1]
			}
			f.logs.Reset()
			resp := f.do(t, f.writer, req)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tt.status, resp.Body)
			}
			evs := f.pub.published()
			if tt.code != "" {
				if got := decodeError(t, resp.Body).Error.Code; got != tt.code {
					t.Errorf("code = %q, want %q", got, tt.code)
				}
				if f.store.writeCount() != writes || len(evs) != published {
					t.Errorf("a %d wrote or published", resp.StatusCode)
				}
				return
			}
			it := decodeItem(t, resp.Body)
			if it.Version != tt.version || it.Room != "r1" || it.ID != "a" || it.Data != nil || resp.Headers["ETag"] != fmt.Sprintf(`"%d"`, tt.version) {
				t.Errorf("response %s ETag %s, want version %d without data", resp.Body, resp.Headers["ETag"], tt.version)
			}
			if len(evs) != published+1 || evs[len(evs)-1].Type != domain.EventItemDeleted || evs[len(evs)-1].Version != tt.version {
				t.Errorf("deleted event not published once: %+v", evs[published:])
			}
			if got := f.do(t, f.reader, itemRequest(http.MethodGet, "r1", "a")); got.StatusCode != 404 {
				t.Errorf("GET after DELETE: %d", got.StatusCode)
			}
			if tt.deleted && !strings.Contains(f.logs.String(), `"repeated":true`) {
				t.Errorf("repeated delete not logged as such: %s", f.logs)
			}
		})
	}
}

func TestPublishFailureLeavesTheEventOnTheOutbox(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	pending := func() []int64 {
		t.Helper()
		ps, err := f.store.Unpublished(ctx, fixedNow.Add(time.Second), 10)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []int64
		for _, p := range ps {
			seqs = append(seqs, p.Event.Seq)
		}
		return seqs
	}
	data := `{"a": "<x>"}`
	f.put(t, "r1", "a", data)
	if got := pending(); len(got) != 0 {
		t.Fatalf("a published event stayed on the outbox: %v", got)
	}

	f.pub.fail(errors.New("sns: AuthorizationError on arn:aws:sns:secret"))
	resp := f.do(t, f.writer, putRequest("r1", "a", data))
	if resp.StatusCode != http.StatusOK || decodeItem(t, resp.Body).Version != 2 || resp.Headers["ETag"] != `"2"` {
		t.Fatalf("PUT with failing publish: %d %s, want 200 version 2: the write is done", resp.StatusCode, resp.Body)
	}
	if strings.Contains(resp.Body, "secret") || strings.Contains(resp.Body, "AuthorizationError") {
		t.Errorf("publish error leaked: %s", resp.Body)
	}
	logs := f.logs.String()
	if !strings.Contains(logs, "AuthorizationError") || !strings.Contains(logs, `"level":"ERROR"`) || !strings.Contains(logs, `"outbox":true`) {
		t.Errorf("publish failure not logged as an error left on the outbox: %s", logs)
	}
	resp = f.do(t, f.writer, itemRequest(http.MethodDelete, "r1", "a"))
	if resp.StatusCode != http.StatusOK || decodeItem(t, resp.Body).Version != 3 {
		t.Fatalf("DELETE with failing publish: %d %s", resp.StatusCode, resp.Body)
	}
	if got := pending(); !slices.Equal(got, []int64{2, 3}) {
		t.Errorf("outbox holds seqs %v, want [2 3]", got)
	}
	if got := f.do(t, f.reader, itemRequest(http.MethodGet, "r1", "a")); got.StatusCode != 404 {
		t.Errorf("delete not kept after failed publish: %d", got.StatusCode)
	}

	// A repeated delete publishes the recorded event again, and so takes
	// it off the outbox.
	f.pub.fail(nil)
	resp = f.do(t, f.writer, itemRequest(http.MethodDelete, "r1", "a"))
	if resp.StatusCode != 200 || decodeItem(t, resp.Body).Version != 3 {
		t.Fatalf("repeated DELETE: %d %s; want 200 version 3", resp.StatusCode, resp.Body)
	}
	evs := f.pub.published()
	if len(evs) != 2 || evs[1].Type != domain.EventItemDeleted || evs[1].Seq != 3 {
		t.Errorf("repeated DELETE published %+v", evs)
	}
	if got := pending(); !slices.Equal(got, []int64{2}) {
		t.Errorf("outbox holds seqs %v, want [2]", got)
	}
}

func TestGet(t *testing.T) {
	f := newFixture(t)
	data := "{\"html\": \"<a href='x'>&</a>\",\n  \"big\": 12345678901234567890, \"esc\": \"\\u2028\"}"
	f.put(t, "r1", "a", data)
	f.put(t, "r1", "a", data)

	resp := f.do(t, f.reader, itemRequest(http.MethodGet, "r1", "a"))
	if resp.StatusCode != 200 || resp.Headers["ETag"] != `"2"` {
		t.Fatalf("GET: %d ETag %s", resp.StatusCode, resp.Headers["ETag"])
	}
	it := decodeItem(t, resp.Body)
	if it.Room != "r1" || it.ID != "a" || it.Version != 2 || it.UpdatedAt != "2026-03-04T04:06:07.123456789Z" || string(it.Data) != data {
		t.Errorf("GET body %s", resp.Body)
	}

	for _, tt := range []struct {
		name, room, id string
	}{{"missing id", "r1", "b"}, {"missing room", "r2", "a"}} {
		t.Run(tt.name, func(t *testing.T) {
			resp := f.do(t, f.reader, itemRequest(http.MethodGet, tt.room, tt.id))
			if resp.StatusCode != 404 || decodeError(t, resp.Body).Error.Code != domain.CodeNotFound {
				t.Errorf("GET %s/%s: %d %s", tt.room, tt.id, resp.StatusCode, resp.Body)
			}
			if _, ok := resp.Headers["ETag"]; ok {
				t.Errorf("404 with ETag")
			}
		})
	}
}

func TestStoreFailureIsOpaque(t *testing.T) {
	tests := []struct {
		name       string
		req        events.APIGatewayV2HTTPRequest
		breakStore func(*recordingStore)
	}{
		{"get", itemRequest(http.MethodGet, "r1", "a"), func(s *recordingStore) { s.getErr = errors.New("dynamodb secret-table: boom") }},
		{"list", listRequest("r1", nil), func(s *recordingStore) { s.listErr = errors.New("dynamodb secret-table: boom") }},
		{"wrapped 503 domain error", itemRequest(http.MethodGet, "r1", "a"), func(s *recordingStore) {
			s.getErr = fmt.Errorf("get: %w", &domain.Error{Status: 503, Code: "unavailable", Message: "secret-table throttled"})
		}},
		{"a throttled store", itemRequest(http.MethodGet, "r1", "a"), func(s *recordingStore) {
			s.getErr = fmt.Errorf("dynamo: secret-table: %w: ProvisionedThroughputExceededException", domain.ErrUnavailable)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			tt.breakStore(f.store)
			resp := f.do(t, f.reader, tt.req)
			if resp.StatusCode < 500 {
				t.Fatalf("status %d, want 5xx", resp.StatusCode)
			}
			if resp.StatusCode == http.StatusServiceUnavailable && resp.Headers["Retry-After"] != "1" {
				t.Errorf("503 without Retry-After: %v", resp.Headers)
			}
			decodeError(t, resp.Body)
			if strings.Contains(resp.Body, "secret") {
				t.Errorf("internal detail leaked: %s", resp.Body)
			}
			logs := f.logs.String()
			if !strings.Contains(logs, "secret-table") || !strings.Contains(logs, `"level":"ERROR"`) {
				t.Errorf("cause not logged: %s", logs)
			}
		})
	}
}

func TestList(t *testing.T) {
	f := newFixture(t)
	ids := []string{"e", "a", "c", "b", "d"}
	for _, id := range ids {
		f.put(t, "r1", id, fmt.Sprintf(`{"id": "%s", "tag": "<%s>"}`, id, id))
	}
	f.put(t, "r2", "other", `{}`)
	f.do(t, f.writer, itemRequest(http.MethodDelete, "r1", "c"))

	type page struct {
		Items []itemJSON `json:"items"`
		Next  *string    `json:"next"`
	}
	var seen []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		q := map[string]string{"limit": "2"}
		if cursor != "" {
			q["cursor"] = cursor
		}
		resp := f.do(t, f.reader, listRequest("r1", q))
		if resp.StatusCode != 200 {
			t.Fatalf("list: %d %s", resp.StatusCode, resp.Body)
		}
		var p page
		if err := json.Unmarshal([]byte(resp.Body), &p); err != nil {
			t.Fatal(err)
		}
		if len(p.Items) > 2 {
			t.Errorf("page of %d items, limit 2", len(p.Items))
		}
		for _, it := range p.Items {
			seen = append(seen, it.ID)
			if want := fmt.Sprintf(`{"id": "%s", "tag": "<%s>"}`, it.ID, it.ID); string(it.Data) != want || it.Room != "r1" || it.Version != 1 {
				t.Errorf("listed item %+v, want data %s", it, want)
			}
		}
		if p.Next == nil {
			break
		}
		if *p.Next == "" {
			t.Errorf("empty next present; it should be omitted")
			break
		}
		cursor = *p.Next
	}
	if want := []string{"a", "b", "d", "e"}; !slices.Equal(seen, want) {
		t.Errorf("listed %v, want %v", seen, want)
	}

	resp := f.do(t, f.reader, listRequest("empty", nil))
	if resp.StatusCode != 200 || resp.Body != `{"items":[],"last":0}` {
		t.Errorf("empty room: %d %s", resp.StatusCode, resp.Body)
	}

	limits := []struct {
		query  map[string]string
		status int
		limit  int // asked of the store; -1: the store is not asked
	}{
		{nil, 200, domain.DefaultListLimit},
		{map[string]string{"limit": "1"}, 200, 1},
		{map[string]string{"limit": "1000"}, 200, 1000},
		{map[string]string{"limit": "0"}, 400, -1},
		{map[string]string{"limit": "1001"}, 400, -1},
		{map[string]string{"limit": "-1"}, 400, -1},
		{map[string]string{"limit": "ten"}, 400, -1},
		{map[string]string{"limit": ""}, 400, -1},
		{map[string]string{"limit": "2,3"}, 400, -1},
		{map[string]string{"cursor": "%%%not-a-cursor"}, 400, domain.DefaultListLimit},
	}
	for _, tt := range limits {
		t.Run(fmt.Sprint(tt.query), func(t *testing.T) {
			f.store.lastLimit = -1
			resp := f.do(t, f.reader, listRequest("r1", tt.query))
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, resp.Body)
			}
			if tt.status == 400 {
				if code := decodeError(t, resp.Body).Error.Code; code != domain.CodeBadRequest {
					t.Errorf("code %q", code)
				}
			}
			if f.store.lastLimit != tt.limit {
				t.Errorf("store asked for %d items, want %d", f.store.lastLimit, tt.limit)
			}
		})
	}

	t.Run("raw query only", func(t *testing.T) {
		req := listRequest("r1", nil)
		req.RawQueryString = "limit=3&cursor=" + cursor
		if resp := f.do(t, f.reader, req); resp.StatusCode != 200 || f.store.lastLimit != 3 || f.store.lastCursor != cursor {
			t.Errorf("raw query: %d limit %d cursor %q", resp.StatusCode, f.store.lastLimit, f.store.lastCursor)
		}
	})
}

// TestMaxItemBytesFitsOneMessage pushes the largest item with the longest
// names, version and timestamp through the writer and checks the frame the
// broadcaster would send fits API Gateway's WebSocket message limit.
func TestMaxItemBytesFitsOneMessage(t *testing.T) {
	long := strings.Repeat("n", wire.MaxNameLen)
	data := `{"k":"` + strings.Repeat("x", httpapi.MaxItemBytes-8) + `"}`
	if len(data) != httpapi.MaxItemBytes {
		t.Fatalf("test data is %d bytes", len(data))
	}
	pub := &recordingPublisher{}
	h := httpapi.NewWriter(memstore.NewItems(), pub, auth.Gate{}, nil)
	resp, err := h.Handle(context.Background(), putRequest(long, long, data))
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("PUT at the limit: %d %v", resp.StatusCode, err)
	}
	ev := pub.published()[0]
	// Worst cases the handler's own event cannot reach in a test.
	ev.Type = domain.EventItemDeleted
	ev.Version = math.MaxInt64
	ev.Time = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("", -(23*3600+59*60)))
	frame := wire.EventFrame(ev)
	if len(frame) > wire.MaxMessageBytes {
		t.Errorf("frame is %d bytes, over the %d byte message limit", len(frame), wire.MaxMessageBytes)
	}
	if !json.Valid(frame) {
		t.Errorf("frame is not JSON")
	}
}

func TestNewID(t *testing.T) {
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 1000 {
		id := domain.NewID()
		if !uuid.MatchString(id) {
			t.Fatalf("%q is not a version 4 UUID", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
	}
}

func TestDefaultEventIDsAreRandom(t *testing.T) {
	pub := &recordingPublisher{}
	h := httpapi.NewWriter(memstore.NewItems(), pub, auth.Gate{}, nil)
	for range 2 {
		if resp, _ := h.Handle(context.Background(), putRequest("r", "a", `{}`)); resp.StatusCode >= 300 {
			t.Fatalf("PUT: %d %s", resp.StatusCode, resp.Body)
		}
	}
	evs := pub.published()
	if len(evs) != 2 || evs[0].EventID == evs[1].EventID || len(evs[0].EventID) != 36 {
		t.Errorf("event ids %q", []string{evs[0].EventID, evs[1].EventID})
	}
}

// TestSummaryLog checks the one line each invocation logs, and that the
// request's body never reaches the log.
func TestSummaryLog(t *testing.T) {
	f := newFixture(t)
	f.do(t, f.writer, putRequest("r1", "a", `{"secret":"s3cr3t-body"}`))
	f.do(t, f.writer, putRequest("r1", "a", `{"secret":"s3cr3t-body"}`))
	f.do(t, f.reader, itemRequest(http.MethodGet, "r1", "missing"))
	f.do(t, f.reader, itemRequest(http.MethodGet, "bad room", "a"))

	lines := strings.Split(strings.TrimSpace(f.logs.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d log lines for 4 invocations:\n%s", len(lines), f.logs)
	}
	if strings.Contains(f.logs.String(), "s3cr3t-body") {
		t.Errorf("request body logged")
	}
	want := []map[string]any{
		{"level": "INFO", "msg": "request", "route": httpapi.ItemPath, "method": "PUT", "room": "r1", "id": "a", "status": 201.0, "version": 1.0, "request_id": "req-1"},
		{"level": "INFO", "route": httpapi.ItemPath, "method": "PUT", "status": 200.0, "version": 2.0},
		{"level": "INFO", "route": httpapi.ItemPath, "method": "GET", "id": "missing", "status": 404.0, "version": 0.0},
		{"level": "INFO", "room": "bad room", "status": 400.0},
	}
	for i, line := range lines {
		var got map[string]any
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if _, ok := got["duration_ms"].(float64); !ok {
			t.Errorf("line %d lacks duration_ms: %s", i, line)
		}
		for k, v := range want[i] {
			if got[k] != v {
				t.Errorf("line %d: %s = %v, want %v", i, k, got[k], v)
			}
		}
	}
}
