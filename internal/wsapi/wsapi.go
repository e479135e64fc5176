// Package wsapi is the WebSocket Lambda: it answers API Gateway's $connect,
// $disconnect and message events, storing connections and relaying client
// frames through the fan-out.
package wsapi

import (
	"context"
	"encoding/base64"
	"errors"
	"iter"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushgate/pushgate/internal/auth"
	"github.com/pushgate/pushgate/internal/domain"
	"github.com/pushgate/pushgate/internal/fanout"
	"github.com/pushgate/pushgate/internal/metrics"
	"github.com/pushgate/pushgate/internal/wire"
)

// Route keys API Gateway sets on the events it sends.
const (
	RouteConnect    = "$connect"
	RouteDisconnect = "$disconnect"
	RouteDefault    = "$default"
)

// Settings are a Handler's policies.
type Settings struct {
	// TTL is how long after connecting a connection record expires.
	TTL time.Duration
	// Gate gives each event's caller, whose grants every join and relay is
	// checked against.
	Gate auth.Gate
	// RelayLimit bounds how fast one connection may relay; a zero Rate is
	// no limit.
	RelayLimit domain.RateLimit
}

// Handler serves one WebSocket API's routes.
type Handler struct {
	conns domain.ConnectionStore
	fan   *fanout.Fanout
	set   Settings
	log   *slog.Logger
	now   func() time.Time
}

// New returns a Handler.
func New(conns domain.ConnectionStore, fan *fanout.Fanout, set Settings, log *slog.Logger) *Handler {
	return &Handler{conns: conns, fan: fan, set: set, log: log, now: time.Now}
}

// WithClock returns a copy of h that reads time from now (for tests).
func (h *Handler) WithClock(now func() time.Time) *Handler {
	c := *h
	c.now = now
	return &c
}

// summary collects what one invocation did, for its log line.
type summary struct {
	action string
	room   string
	user   string
	code   string
	relay  *fanout.Result
}

// Handle answers one API Gateway WebSocket event. Replies to the sender
// (pong, ack, error) are the response body, which the $default route's
// route response sends back on the socket.
func (h *Handler) Handle(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error) {
	start := h.now()
	rc := req.RequestContext
	var s summary
	var resp events.APIGatewayProxyResponse
	p, err := h.principal(rc)
	switch {
	case rc.RouteKey == RouteDisconnect:
		// Whoever it was, the connection is gone: always clean up.
		resp = h.disconnect(ctx, rc.ConnectionID, &s)
	case err != nil && rc.RouteKey == RouteConnect:
		resp = h.fail(ctx, err, &s)
	case err != nil:
		resp = h.reply(ctx, err, &s)
	case rc.RouteKey == RouteConnect:
		s.user = p.User
		resp = h.connect(ctx, req, p, &s)
	default:
		s.user = p.User
		resp = h.message(ctx, req, p, &s)
	}
	attrs := []any{
		"route", rc.RouteKey, "connectionId", rc.ConnectionID, "status", resp.StatusCode,
		"duration_ms", h.now().Sub(start).Milliseconds(),
	}
	if s.action != "" {
		attrs = append(attrs, "action", s.action)
	}
	if s.room != "" {
		attrs = append(attrs, "room", s.room)
	}
	if s.user != "" {
		attrs = append(attrs, "user", s.user)
	}
	if s.code != "" {
		attrs = append(attrs, "error_code", s.code)
	}
	if s.relay != nil {
		attrs = append(attrs, s.relay.LogAttrs()...)
	}
	// One count per kind of invocation, as CloudWatch metrics.
	var counted []metrics.Metric
	count := func(name string) {
		attrs = append(attrs, name, 1)
		counted = append(counted, metrics.Metric{Name: name, Unit: metrics.Count})
	}
	switch {
	case rc.RouteKey == RouteConnect && s.code == "":
		count("connects")
	case rc.RouteKey == RouteDisconnect:
		count("disconnects")
	case s.relay != nil:
		count("relays")
	}
	if s.code != "" {
		count("errors")
	}
	if len(counted) > 0 {
		attrs = append(attrs, metrics.EMF(h.now(), counted...))
	}
	h.log.InfoContext(ctx, "websocket event", attrs...)
	return resp, nil
}

// principal reads the caller from the authorizer context API Gateway puts
// into every event of an authorized connection.
func (h *Handler) principal(rc events.APIGatewayWebsocketProxyRequestContext) (auth.Principal, error) {
	m, _ := rc.Authorizer.(map[string]any)
	return h.set.Gate.Principal(m)
}

// connectedAt is when API Gateway accepted the socket, which every event
// carries; now for a hand-made event without it.
func (h *Handler) connectedAt(rc events.APIGatewayWebsocketProxyRequestContext) time.Time {
	if rc.ConnectedAt == 0 {
		return h.now()
	}
	return time.UnixMilli(rc.ConnectedAt)
}

// expiry is the record's TTL: fixed by the connection's start, since API
// Gateway cuts every socket after two hours whatever it does.
func (h *Handler) expiry(rc events.APIGatewayWebsocketProxyRequestContext) time.Time {
	return h.connectedAt(rc).Add(h.set.TTL)
}

func (h *Handler) connect(ctx context.Context, req events.APIGatewayWebsocketProxyRequest, p auth.Principal, s *summary) events.APIGatewayProxyResponse {
	rc := req.RequestContext
	room := req.QueryStringParameters["room"]
	if room == "" {
		room = domain.DefaultRoom
	}
	s.room = room
	if err := wire.CheckRoom(room); err != nil {
		return h.fail(ctx, err, s)
	}
	if !p.CanJoin(room) {
		return h.fail(ctx, auth.Forbidden("join", room), s)
	}
	connected := h.connectedAt(rc)
	ua := rc.Identity.UserAgent
	if ua == "" {
		ua = header(req.Headers, "User-Agent")
	}
	c := domain.Connection{
		ID:          rc.ConnectionID,
		ConnectedAt: connected,
		LastSeenAt:  h.now(),
		SourceIP:    rc.Identity.SourceIP,
		UserAgent:   ua,
		Identity:    p.User,
		JoinGrants:  p.Join,
		WriteGrants: p.Write,
		Rooms:       []string{room},
		ExpiresAt:   connected.Add(h.set.TTL),
	}
	if err := h.conns.Put(ctx, c); err != nil {
		return h.fail(ctx, err, s)
	}
	return events.APIGatewayProxyResponse{StatusCode: http.StatusOK}
}

func (h *Handler) disconnect(ctx context.Context, id string, s *summary) events.APIGatewayProxyResponse {
	if err := h.conns.Delete(ctx, id); err != nil {
		// API Gateway ignores this response; the TTL and 410 pruning clean up.
		return h.fail(ctx, err, s)
	}
	return events.APIGatewayProxyResponse{StatusCode: http.StatusOK}
}

// fail answers $connect/$disconnect failures with the error's status and a
// JSON body; internal details only reach the log.
func (h *Handler) fail(ctx context.Context, err error, s *summary) events.APIGatewayProxyResponse {
	e := domain.AsError(err)
	s.code = e.Code
	if e.Status >= 500 {
		h.log.ErrorContext(ctx, "websocket store failure", "error", err.Error())
	}
	return events.APIGatewayProxyResponse{
		StatusCode: e.Status,
		Headers:    map[string]string{"Content-Type": "application/json"},
		Body:       string(wire.ErrorFrame(e.Code, e.Message)),
	}
}

func (h *Handler) message(ctx context.Context, req events.APIGatewayWebsocketProxyRequest, p auth.Principal, s *summary) events.APIGatewayProxyResponse {
	body := []byte(req.Body)
	if req.IsBase64Encoded {
		dec, err := base64.StdEncoding.DecodeString(req.Body)
		if err != nil {
			return h.reply(ctx, domain.Errorf(http.StatusBadRequest, domain.CodeInvalidJSON, "binary frame is not valid base64"), s)
		}
		body = dec
	}
	f, err := wire.ParseFrame(body)
	if err != nil {
		return h.reply(ctx, err, s)
	}
	s.action = f.Action
	rc := req.RequestContext
	id := rc.ConnectionID
	switch f.Action {
	case wire.ActionPing:
		now := h.now()
		if err := h.conns.Touch(ctx, id, now, h.expiry(rc)); err != nil {
			return h.reply(ctx, stale(err), s)
		}
		return frame(wire.Pong(now))
	case wire.ActionWhoami:
		c, err := h.conns.Get(ctx, id)
		if err != nil {
			return h.reply(ctx, stale(err), s)
		}
		return frame(wire.Whoami(id, c.Identity, c.Rooms))
	case wire.ActionSubscribe:
		s.room = f.Room
		if !p.CanJoin(f.Room) {
			return h.reply(ctx, auth.Forbidden("join", f.Room), s)
		}
		if err := h.conns.Join(ctx, id, f.Room, h.expiry(rc)); err != nil {
			return h.reply(ctx, stale(err), s)
		}
		return frame(wire.Ack(f.Action, f.Room))
	case wire.ActionUnsubscribe:
		s.room = f.Room
		if err := h.conns.Leave(ctx, id, f.Room); err != nil {
			return h.reply(ctx, stale(err), s)
		}
		return frame(wire.Ack(f.Action, f.Room))
	default: // update, delete: ParseFrame admits nothing else
		res, err := h.relay(ctx, id, p, f)
		s.relay = &res
		if err != nil {
			return h.reply(ctx, err, s)
		}
		// The game protocol expects no answer to a relayed frame.
		return events.APIGatewayProxyResponse{StatusCode: http.StatusOK}
	}
}

// relay sends f to every other connection in the sender's rooms it may
// write, or to one connection that shares such a room with the sender.
func (h *Handler) relay(ctx context.Context, from string, p auth.Principal, f wire.Frame) (fanout.Result, error) {
	sender, err := h.conns.Get(ctx, from)
	if err != nil {
		return fanout.Result{}, stale(err)
	}
	writable := slices.DeleteFunc(slices.Clone(sender.Rooms), func(r string) bool { return !p.CanWrite(r) })
	if len(writable) == 0 {
		return fanout.Result{}, domain.Errorf(http.StatusForbidden, domain.CodeForbidden,
			"your token does not allow you to write any of your rooms")
	}
	if h.set.RelayLimit.Rate > 0 {
		ok, err := h.conns.TakeToken(ctx, from, h.set.RelayLimit, h.now())
		if err != nil {
			return fanout.Result{}, stale(err)
		}
		if !ok {
			return fanout.Result{}, domain.Errorf(http.StatusTooManyRequests, domain.CodeRateLimited,
				"more than %g relayed messages a second (bursts of %g); this one was dropped", h.set.RelayLimit.Rate, h.set.RelayLimit.Burst)
		}
	}
	out := wire.Relay(from, f)
	if len(out) > wire.MaxMessageBytes {
		// The added "from" can push a frame near the limit over it; every
		// post would then fail, so refuse it up front.
		return fanout.Result{}, domain.Errorf(http.StatusRequestEntityTooLarge, domain.CodeTooLarge,
			"the relayed message would be %d bytes; the limit is %d", len(out), wire.MaxMessageBytes)
	}
	if f.Target == wire.TargetAll {
		return h.fan.Deliver(ctx, fanout.Delivery{Frame: out, Recipients: h.members(ctx, writable), Exclude: from, Origin: "relay from " + from})
	}
	target, err := h.conns.Get(ctx, f.Target)
	if errors.Is(err, domain.ErrNotFound) || (err == nil && !sharesRoom(sender.Rooms, target.Rooms)) {
		return fanout.Result{}, domain.Errorf(http.StatusBadRequest, domain.CodeUnknownTarget,
			"no connection %s in your rooms", wire.Echo(f.Target))
	}
	if err != nil {
		return fanout.Result{}, err
	}
	if !sharesRoom(writable, target.Rooms) {
		return fanout.Result{}, domain.Errorf(http.StatusForbidden, domain.CodeForbidden,
			"your token does not allow you to write a room you share with %s", wire.Echo(f.Target))
	}
	return h.fan.To(ctx, out, f.Target)
}

func (h *Handler) members(ctx context.Context, rooms []string) iter.Seq2[[]string, error] {
	return func(yield func([]string, error) bool) {
		for _, room := range rooms {
			for page, err := range h.conns.Members(ctx, room) {
				if !yield(page, err) || err != nil {
					return
				}
			}
		}
	}
}

func sharesRoom(a, b []string) bool {
	for _, r := range a {
		if slices.Contains(b, r) {
			return true
		}
	}
	return false
}

// stale explains a missing record of the sender's own connection: it was
// pruned or expired while the socket stayed open, so the client should
// reconnect to be registered again.
func stale(err error) error {
	if errors.Is(err, domain.ErrNotFound) {
		return &domain.Error{Code: domain.CodeNotFound, Status: http.StatusGone,
			Message: "this connection is no longer registered; reconnect", Err: err}
	}
	return err
}

// reply sends an error frame to the sender; the socket stays open.
func (h *Handler) reply(ctx context.Context, err error, s *summary) events.APIGatewayProxyResponse {
	e := domain.AsError(err)
	s.code = e.Code
	if e.Status >= 500 {
		h.log.ErrorContext(ctx, "websocket message failure", "error", err.Error())
	}
	return frame(wire.ErrorFrame(e.Code, e.Message))
}

func frame(b []byte) events.APIGatewayProxyResponse {
	return events.APIGatewayProxyResponse{StatusCode: http.StatusOK, Body: string(b)}
}

func header(h map[string]string, name string) string {
	for k, v := range h {
		if http.CanonicalHeaderKey(k) == name {
			return v
		}
	}
	return ""
}
