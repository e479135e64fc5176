// Package httpapi serves the items REST API (rooms/{room}/items/{id}) to API
// Gateway HTTP API Lambdas: a read-only handler and a write handler that
// stores each change and publishes it as one event.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushgate/pushgate/internal/auth"
	"github.com/pushgate/pushgate/internal/domain"
	"github.com/pushgate/pushgate/internal/wire"
)

// MaxItemBytes bounds a PUT body. The pushed event frame is the item's data
// plus fixed fields (room and id of at most 128 bytes each, event id, type,
// version, time) well under 2 KiB, so every stored item reaches clients in
// one API Gateway WebSocket message (wire.MaxMessageBytes).
const MaxItemBytes = 128*1024 - 2*1024

// Route paths, as they appear in API Gateway route keys.
const (
	ItemPath   = "/rooms/{room}/items/{id}"
	ItemsPath  = "/rooms/{room}/items"
	EventsPath = "/rooms/{room}/events"
)

// Handler answers API Gateway HTTP API (payload 2.0) requests for items. A
// reader serves GETs only and a writer PUT and DELETE only, so each Lambda
// holds just the permissions its half needs.
type Handler struct {
	reader domain.ItemReader
	// store and pub are nil on a reader: it cannot write or publish.
	store domain.ItemStore
	pub   domain.Publisher
	// gate gives the caller whose grants each request is checked against.
	gate auth.Gate
	log  *slog.Logger
	now  func() time.Time
	// newEventID names each published event so clients can drop the
	// duplicates at-least-once delivery brings.
	newEventID func() string
	// historyTTL is how long the room's history keeps a write's event.
	historyTTL time.Duration
	// allow lists the methods served per route; the rest get 405.
	allow map[route][]string
}

// Option adjusts a Handler; tests use them to fix the clock and event ids.
type Option func(*Handler)

// WithClock replaces time.Now for write timestamps and request durations.
func WithClock(now func() time.Time) Option { return func(h *Handler) { h.now = now } }

// WithEventIDs replaces the random event id generator.
func WithEventIDs(gen func() string) Option { return func(h *Handler) { h.newEventID = gen } }

// WithHistoryTTL sets how long the room's history keeps each write's event
// (default DefaultHistoryTTL).
func WithHistoryTTL(d time.Duration) Option { return func(h *Handler) { h.historyTTL = d } }

// DefaultHistoryTTL is the template's HistoryTTL default.
const DefaultHistoryTTL = 24 * time.Hour

// NewReader returns the handler of the read Lambda: GET of one item and of a
// room's item list, for callers gate lets join the room (an open gate: for
// everyone); PUT and DELETE get 405.
func NewReader(r domain.ItemReader, gate auth.Gate, log *slog.Logger, opts ...Option) *Handler {
	return newHandler(&Handler{
		reader: r,
		gate:   gate,
		log:    log,
		allow: map[route][]string{
			routeItem:   {http.MethodGet},
			routeItems:  {http.MethodGet},
			routeEvents: {http.MethodGet},
		},
	}, opts)
}

// NewWriter returns the handler of the write Lambda: PUT and DELETE of one
// item by callers gate lets write the room, each published through p after
// it is stored; GET gets 405.
func NewWriter(s domain.ItemStore, p domain.Publisher, gate auth.Gate, log *slog.Logger, opts ...Option) *Handler {
	return newHandler(&Handler{
		reader: s,
		store:  s,
		pub:    p,
		gate:   gate,
		log:    log,
		allow: map[route][]string{
			routeItem:   {http.MethodPut, http.MethodDelete},
			routeItems:  nil,
			routeEvents: nil,
		},
	}, opts)
}

func newHandler(h *Handler, opts []Option) *Handler {
	h.now = time.Now
	h.newEventID = domain.NewID
	h.historyTTL = DefaultHistoryTTL
	for _, o := range opts {
		o(h)
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	return h
}

type route int

const (
	routeNone route = iota
	routeItem
	routeItems
	routeEvents
)

func (r route) String() string {
	switch r {
	case routeItem:
		return ItemPath
	case routeItems:
		return ItemsPath
	case routeEvents:
		return EventsPath
	}
	return ""
}

// request is one invocation as the handler sees it, plus what the summary
// log line reports about it.
type request struct {
	events.APIGatewayV2HTTPRequest
	route   route
	method  string
	user    string
	seq     int64
	room    string
	id      string
	version int64
	// repeated marks a DELETE of an already deleted item.
	repeated bool
	// outbox marks a write whose event the outbox sweeper is to publish.
	outbox bool
	// err is the cause of a 5xx or of a publish failure; logged, never sent.
	err error
}

// Handle serves one invocation. Every failure is an HTTP response, so the
// returned error is always nil: a Lambda error would reach the client as a
// bare 500 without the JSON error body.
func (h *Handler) Handle(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	start := h.now()
	req := &request{APIGatewayV2HTTPRequest: ev, method: ev.RequestContext.HTTP.Method}
	resp := h.serve(ctx, req)
	h.logSummary(ctx, req, resp, h.now().Sub(start))
	return resp, nil
}

// apiMethods are the methods the HTTP API serves on a resource.
func apiMethods(r route) []string {
	if r == routeItems || r == routeEvents {
		return []string{http.MethodGet}
	}
	return []string{http.MethodGet, http.MethodPut, http.MethodDelete}
}

func (h *Handler) serve(ctx context.Context, req *request) events.APIGatewayV2HTTPResponse {
	var ok bool
	req.route, req.room, req.id, ok = resolve(req.APIGatewayV2HTTPRequest)
	if !ok {
		return errorResponse(req, domain.Errorf(http.StatusNotFound, domain.CodeNotFound, "no such route"))
	}
	allowed := h.allow[req.route]
	if !slices.Contains(allowed, req.method) {
		resp := errorResponse(req, domain.Errorf(http.StatusMethodNotAllowed, domain.CodeMethodNotAllowed,
			"%s is not allowed here", wire.Echo(req.method)))
		// Allow names the resource's methods across the API, not just this
		// function's: the read and write functions share the paths.
		resp.Headers["Allow"] = strings.Join(apiMethods(req.route), ", ")
		return resp
	}
	var lambdaContext map[string]any
	if a := req.RequestContext.Authorizer; a != nil {
		lambdaContext = a.Lambda
	}
	p, err := h.gate.Fresh(lambdaContext, h.now())
	if err != nil {
		return errorResponse(req, err)
	}
	req.user = p.User
	if err := checkNames(req); err != nil {
		return errorResponse(req, err)
	}
	if h.store == nil && !p.CanJoin(req.room) {
		return errorResponse(req, auth.Forbidden("read", req.room))
	}
	if h.store != nil && !p.CanWrite(req.room) {
		return errorResponse(req, auth.Forbidden("write", req.room))
	}
	switch {
	case req.route == routeItems:
		return h.list(ctx, req)
	case req.route == routeEvents:
		return h.events(ctx, req)
	case req.method == http.MethodGet:
		return h.get(ctx, req)
	case req.method == http.MethodPut:
		return h.put(ctx, req)
	default:
		return h.delete(ctx, req)
	}
}

// resolve finds the route from the route key API Gateway matched, or from
// the path itself when the request came through $default. HTTP APIs deliver
// both the path and its parameters already percent-decoded, so nothing is
// decoded here (decoding twice would let "%2541" become "A").
func resolve(ev events.APIGatewayV2HTTPRequest) (r route, room, id string, ok bool) {
	key := ev.RouteKey
	if key == "" {
		key = ev.RequestContext.RouteKey
	}
	if key == "$default" {
		return resolvePath(ev)
	}
	_, path, found := strings.Cut(key, " ")
	if !found {
		return routeNone, "", "", false
	}
	switch path {
	case ItemPath:
		return routeItem, ev.PathParameters["room"], ev.PathParameters["id"], true
	case ItemsPath:
		return routeItems, ev.PathParameters["room"], "", true
	case EventsPath:
		return routeEvents, ev.PathParameters["room"], "", true
	}
	return routeNone, "", "", false
}

func resolvePath(ev events.APIGatewayV2HTTPRequest) (route, string, string, bool) {
	p := ev.RawPath
	if p == "" {
		p = ev.RequestContext.HTTP.Path
	}
	// A named stage's requests carry its name in front of the path.
	if stage := ev.RequestContext.Stage; stage != "" && stage != "$default" {
		p = strings.TrimPrefix(p, "/"+stage)
	}
	seg := strings.Split(strings.TrimPrefix(p, "/"), "/")
	// As in API Gateway's matching, {room} and {id} take no empty segment:
	// /rooms//items/x is no item's path, so $default answers it 404.
	switch {
	case slices.Contains(seg, ""):
	case len(seg) == 3 && seg[0] == "rooms" && seg[2] == "items":
		return routeItems, seg[1], "", true
	case len(seg) == 3 && seg[0] == "rooms" && seg[2] == "events":
		return routeEvents, seg[1], "", true
	case len(seg) == 4 && seg[0] == "rooms" && seg[2] == "items":
		return routeItem, seg[1], seg[3], true
	}
	return routeNone, "", "", false
}

func (h *Handler) logSummary(ctx context.Context, req *request, resp events.APIGatewayV2HTTPResponse, d time.Duration) {
	attrs := []slog.Attr{
		slog.String("route", req.route.String()),
		slog.String("method", req.method),
		slog.String("room", clip(req.room)),
		slog.String("id", clip(req.id)),
		slog.Int("status", resp.StatusCode),
		slog.Int64("version", req.version),
		slog.Int64("seq", req.seq),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
	}
	if req.repeated {
		attrs = append(attrs, slog.Bool("repeated", true))
	}
	if req.outbox {
		attrs = append(attrs, slog.Bool("outbox", true))
	}
	if req.user != "" {
		attrs = append(attrs, slog.String("user", clip(req.user)))
	}
	if rid := req.RequestContext.RequestID; rid != "" {
		attrs = append(attrs, slog.String("request_id", rid))
	}
	level := slog.LevelInfo
	if req.err != nil {
		attrs = append(attrs, slog.String("error", req.err.Error()))
		level = slog.LevelError
	}
	h.log.LogAttrs(ctx, level, "request", attrs...)
}

// clip bounds what a log line repeats of an invalid, client-chosen name.
func clip(s string) string {
	const max = 2 * wire.MaxNameLen
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
