// Package wsgateway emulates one stage of an API Gateway WebSocket API on a
// local HTTP server, invoking the WebSocket Lambda handlers in-process.
package wsgateway

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/coder/websocket"

	"github.com/pushgate/pushgate/internal/local/mgmtserver"
	"github.com/pushgate/pushgate/internal/wire"
)

// Route keys API Gateway reserves.
const (
	RouteConnect    = "$connect"
	RouteDisconnect = "$disconnect"
	RouteDefault    = "$default"
)

// API Gateway's fixed quotas, the defaults for Config.
const (
	DefaultIdleTimeout = 10 * time.Minute
	DefaultMaxLifetime = 2 * time.Hour
	// DefaultSendQueueBytes is how much may wait to be written to one
	// client before it counts as not reading.
	DefaultSendQueueBytes = 1 << 20
)

// Close codes the gateway sends besides API Gateway's 1000, 1001 and 1009.
const (
	// StatusSendQueueFull closes a client that does not read what is sent
	// to it (1013, "try again later"): its send queue overflowed, or one
	// message took writeTimeout to write.
	StatusSendQueueFull = websocket.StatusTryAgainLater
	reasonSendQueueFull = "Client is not reading"
	// StatusBinaryFrame closes a client that sent a binary frame, which API
	// Gateway does not accept (1003, "unsupported data").
	StatusBinaryFrame = websocket.StatusUnsupportedData
	reasonBinaryFrame = "Binary frames are not supported"
)

const (
	// integrationTimeout is API Gateway's (fixed) limit on an integration.
	integrationTimeout = 29 * time.Second
	// writeTimeout bounds one frame sent to a client; a client that does not
	// read for that long loses its connection, as a dead peer would.
	writeTimeout = 10 * time.Second
)

// Handler is a WebSocket Lambda's handler, as aws-lambda-go types it.
type Handler func(ctx context.Context, req events.APIGatewayWebsocketProxyRequest) (events.APIGatewayProxyResponse, error)

// Route is one route of the API.
type Route struct {
	Handler Handler
	// TwoWay: the route has a route response, so a non-empty response body
	// is sent to the client (as API Gateway does).
	TwoWay bool
	// Authorizer, on $connect only, runs before the route.
	Authorizer *Authorizer
}

// Config describes the emulated API and stage.
type Config struct {
	// APIID appears in requestContext.apiId; default: 10 random lowercase
	// letters and digits, like AWS's.
	APIID string
	// Stage names the stage; GET /{Stage} serves the upgrade.
	Stage string
	// DomainName is the host:port clients use (requestContext.domainName);
	// default: each upgrade request's Host.
	DomainName string
	// RouteSelectionExpression is $request.body.<field>; default
	// "$request.body.action".
	RouteSelectionExpression string
	// Routes maps route keys ($connect, $disconnect, $default, custom) to
	// handlers.
	Routes map[string]Route
	// IdleTimeout closes (1001) a connection that carried no data message,
	// in either direction, for that long; pings do not count. 0 means
	// DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxLifetime closes (1001) any connection that old, active or not;
	// 0 means DefaultMaxLifetime.
	MaxLifetime time.Duration
	// SendQueueBytes bounds what waits to be written to one client; a
	// client past it is closed with StatusSendQueueFull. 0 means
	// DefaultSendQueueBytes.
	SendQueueBytes int
	// Region and Account appear in the authorizer's methodArn; default
	// us-east-1 and 000000000000.
	Region, Account string
	// Log receives one JSON line per route invocation; default slog.Default().
	Log *slog.Logger
}

var stageRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// Gateway is an emulated WebSocket API stage. It is an http.Handler for the
// upgrade path and the mgmtserver.Sockets behind the Management API.
type Gateway struct {
	apiID       string
	stage       string
	domainName  string
	selectPath  []string
	routes      map[string]Route
	idleTimeout time.Duration
	maxLifetime time.Duration
	// sendQueueBytes bounds each connection's send queue.
	sendQueueBytes int
	region         string
	account        string
	log            *slog.Logger

	mu           sync.Mutex
	conns        map[string]*conn
	shuttingDown bool
	// wg counts upgrade requests from before $connect until their
	// $disconnect has run.
	wg sync.WaitGroup
}

var _ mgmtserver.Sockets = (*Gateway)(nil)

// New validates cfg and returns a Gateway.
func New(cfg Config) (*Gateway, error) {
	if !stageRE.MatchString(cfg.Stage) {
		return nil, fmt.Errorf("wsgateway: stage %q must be 1-128 of A-Z a-z 0-9 _ -", cfg.Stage)
	}
	if len(cfg.Routes) == 0 {
		return nil, errors.New("wsgateway: no routes; configure $default or at least one route")
	}
	for key, r := range cfg.Routes {
		if key == "" || r.Handler == nil {
			return nil, fmt.Errorf("wsgateway: route %q needs a key and a handler", key)
		}
	}
	if cfg.IdleTimeout < 0 || cfg.MaxLifetime < 0 || cfg.SendQueueBytes < 0 {
		return nil, errors.New("wsgateway: negative IdleTimeout, MaxLifetime or SendQueueBytes")
	}
	path, err := parseSelection(cfg.RouteSelectionExpression)
	if err != nil {
		return nil, err
	}
	g := &Gateway{
		apiID:          cfg.APIID,
		stage:          cfg.Stage,
		domainName:     cfg.DomainName,
		selectPath:     path,
		routes:         maps.Clone(cfg.Routes),
		idleTimeout:    cfg.IdleTimeout,
		maxLifetime:    cfg.MaxLifetime,
		sendQueueBytes: cfg.SendQueueBytes,
		region:         cmp.Or(cfg.Region, "us-east-1"),
		account:        cmp.Or(cfg.Account, "000000000000"),
		log:            cfg.Log,
		conns:          map[string]*conn{},
	}
	if g.apiID == "" {
		g.apiID = newAPIID()
	}
	if g.idleTimeout == 0 {
		g.idleTimeout = DefaultIdleTimeout
	}
	if g.maxLifetime == 0 {
		g.maxLifetime = DefaultMaxLifetime
	}
	if g.sendQueueBytes == 0 {
		g.sendQueueBytes = DefaultSendQueueBytes
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	return g, nil
}

// APIID returns the API id the events carry.
func (g *Gateway) APIID() string { return g.apiID }

// ServeHTTP upgrades GET /{stage} to a WebSocket after $connect accepts it,
// then serves the connection until it closes.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p := r.URL.Path; p != "/"+g.stage && p != "/"+g.stage+"/" {
		writeMessage(w, http.StatusForbidden, "Forbidden")
		return
	}
	if !isUpgrade(r) {
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "websocket")
		writeMessage(w, http.StatusUpgradeRequired, "Upgrade Required")
		return
	}
	if !g.enter() {
		writeMessage(w, http.StatusServiceUnavailable, "Service Unavailable")
		return
	}
	defer g.wg.Done()

	c := g.newConn(r)
	subprotocol, ok := g.connect(w, r, c)
	if !ok {
		return
	}
	ww := &watchingWriter{ResponseWriter: w, limit: wire.MaxFrameBytes}
	opts := &websocket.AcceptOptions{
		// API Gateway checks no Origin; a $connect handler may.
		InsecureSkipVerify: true,
		// The frame watcher measures frames as sent, which needs
		// uncompressed payloads.
		CompressionMode: websocket.CompressionDisabled,
	}
	if subprotocol != "" {
		opts.Subprotocols = []string{subprotocol}
	}
	// Registered before the handshake completes, so that a client can be
	// sent to as soon as it sees the 101; Send waits for the socket.
	g.register(c)
	ws, err := websocket.Accept(ww, r, opts)
	if err != nil {
		close(c.ready)
		c.requestClose(websocket.StatusAbnormalClosure, describe(websocket.StatusAbnormalClosure))
		// $connect already accepted the connection, so its handler must
		// hear that it is gone.
		g.log.Warn("websocket upgrade failed", "connectionId", c.id, "error", err.Error())
		g.disconnect(c, int(websocket.StatusAbnormalClosure), describe(websocket.StatusAbnormalClosure))
		g.forget(c)
		return
	}
	ws.SetReadLimit(-1) // readMessage enforces API Gateway's limits
	c.ws = ws
	c.frames = ww.watcher
	close(c.ready)
	g.serve(c)
}

// enter admits an upgrade unless the gateway is shutting down.
func (g *Gateway) enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shuttingDown {
		return false
	}
	g.wg.Add(1)
	return true
}

func (g *Gateway) newConn(r *http.Request) *conn {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	domain := g.domainName
	if domain == "" {
		domain = r.Host
	}
	now := time.Now()
	c := &conn{
		id:          newID(),
		connectedAt: now,
		sourceIP:    host,
		userAgent:   r.UserAgent(),
		domainName:  domain,
		ctx:         context.WithoutCancel(r.Context()),
		ready:       make(chan struct{}),
		closeCh:     make(chan struct{}),
		wake:        make(chan struct{}, 1),
		writerDone:  make(chan struct{}),
	}
	c.lastClient.Store(now.UnixNano())
	c.lastTraffic.Store(now.UnixNano())
	return c
}

// connect runs $connect and, when it refuses, answers the upgrade request
// with its status and body. It returns the subprotocol the handler chose.
func (g *Gateway) connect(w http.ResponseWriter, r *http.Request, c *conn) (subprotocol string, ok bool) {
	route, exists := g.routes[RouteConnect]
	if !exists {
		g.logRoute(c, RouteConnect, "", http.StatusOK, 0, "")
		return "", true
	}
	start := time.Now()
	event := g.connectEvent(c, r)
	rid := event.RequestContext.RequestID
	if route.Authorizer != nil {
		authorized, refused := g.authorize(r.Context(), route.Authorizer, event)
		if refused != nil {
			g.logRoute(c, RouteConnect, rid, refused.status, time.Since(start), "authorizer: "+refused.message)
			writeMessage(w, refused.status, refused.message)
			return "", false
		}
		c.authorizer = authorized
		event.RequestContext.Authorizer = authorized
	}
	resp, err := invoke(r.Context(), route.Handler, event)
	elapsed := time.Since(start)
	status := resp.StatusCode
	switch {
	case err != nil:
		g.logRoute(c, RouteConnect, rid, http.StatusInternalServerError, elapsed, err.Error())
		writeMessage(w, http.StatusInternalServerError, "Internal server error")
		return "", false
	case status == 0 || (status >= 200 && status < 300):
		// A Lambda that sets no status has not refused the connection.
		g.logRoute(c, RouteConnect, rid, max(status, http.StatusOK), elapsed, "")
		return header(resp, "Sec-WebSocket-Protocol"), true
	case status < 200 || status > 599:
		g.logRoute(c, RouteConnect, rid, http.StatusBadGateway, elapsed, fmt.Sprintf("invalid status %d", status))
		writeMessage(w, http.StatusBadGateway, "Internal server error")
		return "", false
	default:
		g.logRoute(c, RouteConnect, rid, status, elapsed, "")
		for k, v := range resp.Headers {
			w.Header().Set(k, v)
		}
		for k, vs := range resp.MultiValueHeaders {
			w.Header()[http.CanonicalHeaderKey(k)] = vs
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(resp.Body))
		return "", false
	}
}

func (g *Gateway) register(c *conn) {
	g.mu.Lock()
	g.conns[c.id] = c
	late := g.shuttingDown
	g.mu.Unlock()
	if late {
		// Shutdown did not see this connection; close it the same way.
		c.requestClose(websocket.StatusGoingAway, describe(websocket.StatusGoingAway))
	}
}

// serve reads the connection on one goroutine, which dispatches messages in
// order, while this one watches the timers and close requests.
func (g *Gateway) serve(c *conn) {
	readDone := make(chan error, 1)
	go func() { readDone <- g.readLoop(c) }()
	go c.writeLoop()

	idle := time.NewTimer(g.idleTimeout)
	defer idle.Stop()
	lifetime := time.NewTimer(time.Until(c.connectedAt.Add(g.maxLifetime)))
	defer lifetime.Stop()

	var readErr error
wait:
	for {
		select {
		case readErr = <-readDone:
			break wait
		case <-idle.C:
			if left := g.idleTimeout - time.Since(time.Unix(0, c.lastTraffic.Load())); left > 0 {
				idle.Reset(left)
				continue
			}
			c.requestClose(websocket.StatusGoingAway, describe(websocket.StatusGoingAway))
		case <-lifetime.C:
			c.requestClose(websocket.StatusGoingAway, describe(websocket.StatusGoingAway))
		case <-c.closeCh:
			code, reason := c.closeStatus()
			if code == StatusSendQueueFull {
				closeUnread(c, code, reason)
			} else {
				// What was queued before the close goes first; the
				// writer gives up on a client that stops reading.
				<-c.writerDone
				// Close writes the close frame and waits (at most a few
				// seconds) for the client's; the reader sees it arrive.
				_ = c.ws.Close(code, reason)
			}
			readErr = <-readDone
			break wait
		}
	}

	switch {
	case errors.Is(readErr, errTooBig):
		g.log.Warn("websocket client broke a size quota", "connectionId", c.id, "error", readErr.Error())
		c.requestClose(websocket.StatusMessageTooBig, describe(websocket.StatusMessageTooBig))
		code, reason := c.closeStatus()
		_ = c.ws.Close(code, reason)
	case errors.Is(readErr, errBinary):
		g.log.Warn("websocket client sent a binary frame", "connectionId", c.id)
		c.requestClose(StatusBinaryFrame, reasonBinaryFrame)
		code, reason := c.closeStatus()
		_ = c.ws.Close(code, reason)
	default:
		// A no-op when the gateway closed first: its code is what counts.
		code, reason := closeCause(readErr)
		c.requestClose(code, reason)
	}
	_ = c.ws.CloseNow()
	<-c.writerDone
	code, reason := c.closeStatus()
	g.disconnect(c, int(code), reason)
	g.forget(c)
}

// closeUnread closes a connection whose client does not read: its close
// frame may never leave, so the TCP connection is cut after a moment
// (coder/websocket's Close would wait up to ten seconds, and CloseNow
// waits for a Close under way).
func closeUnread(c *conn, code websocket.StatusCode, reason string) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.ws.Close(code, reason)
	}()
	select {
	case <-done:
	case <-time.After(time.Second):
		_ = c.frames.Conn.Close()
		<-done
	}
}

func (g *Gateway) forget(c *conn) {
	g.mu.Lock()
	delete(g.conns, c.id)
	g.mu.Unlock()
}

// closeCause describes why a read failed: the client's close frame, or a
// connection that went away without one.
func closeCause(err error) (websocket.StatusCode, string) {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		reason := ce.Reason
		if reason == "" {
			reason = describe(ce.Code)
		}
		return ce.Code, reason
	}
	return websocket.StatusAbnormalClosure, describe(websocket.StatusAbnormalClosure)
}

// describe gives the disconnectReason API Gateway reports for a close code.
func describe(code websocket.StatusCode) string {
	switch code {
	case websocket.StatusNormalClosure:
		return "Connection Closed Normally"
	case websocket.StatusGoingAway:
		return "Going away"
	case websocket.StatusNoStatusRcvd:
		return "Client-side close frame status not set"
	case websocket.StatusAbnormalClosure:
		return "Connection closed abnormally"
	case websocket.StatusMessageTooBig:
		return "Message too big"
	default:
		return fmt.Sprintf("Client-side close frame status set to %d", int(code))
	}
}

// disconnect runs $disconnect, whose answer API Gateway ignores.
func (g *Gateway) disconnect(c *conn, code int, reason string) {
	route, exists := g.routes[RouteDisconnect]
	if !exists {
		g.logDisconnect(c, http.StatusOK, 0, code, reason, "")
		return
	}
	start := time.Now()
	resp, err := invoke(c.ctx, route.Handler, g.disconnectEvent(c, code, reason))
	status, msg := max(resp.StatusCode, http.StatusOK), ""
	if err != nil {
		status, msg = http.StatusInternalServerError, err.Error()
	}
	g.logDisconnect(c, status, time.Since(start), code, reason, msg)
}

// errIntegrationTimeout marks a handler that outlived API Gateway's
// integration timeout.
var errIntegrationTimeout = errors.New("wsgateway: integration timed out")

// invoke calls h as Lambda would: with a deadline, and a panic counting as
// a failed invocation instead of taking the gateway down.
func invoke(ctx context.Context, h Handler, req events.APIGatewayWebsocketProxyRequest) (resp events.APIGatewayProxyResponse, err error) {
	ctx, cancel := context.WithTimeout(ctx, integrationTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			resp, err = events.APIGatewayProxyResponse{}, fmt.Errorf("wsgateway: handler panicked: %v", p)
		}
	}()
	resp, err = h(ctx, req)
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return events.APIGatewayProxyResponse{}, fmt.Errorf("%w after %s", errIntegrationTimeout, integrationTimeout)
	}
	if err != nil {
		return events.APIGatewayProxyResponse{}, fmt.Errorf("wsgateway: %s handler: %w", req.RequestContext.RouteKey, err)
	}
	return resp, nil
}

// Send queues data for the connection as one message (in 32 KB frames, as
// API Gateway splits PostToConnection data): a text message, or a binary
// one when data is not UTF-8. It returns once the data is queued, and
// reports false for a connection that is unknown, closing, or too slow to
// take it (see Config.SendQueueBytes).
func (g *Gateway) Send(_ context.Context, id string, data []byte) bool {
	c := g.lookup(id)
	if c == nil {
		return false
	}
	if !c.enqueue(websocket.MessageText, data, g.sendQueueBytes) {
		if code, _ := c.closeStatus(); code == StatusSendQueueFull {
			g.log.Warn("websocket client is not reading; closing it", "connectionId", id,
				"close_code", int(StatusSendQueueFull), "queue_limit_bytes", g.sendQueueBytes)
		}
		return false
	}
	return true
}

// Info describes an open connection.
func (g *Gateway) Info(id string) (mgmtserver.Info, bool) {
	c := g.lookup(id)
	if c == nil {
		return mgmtserver.Info{}, false
	}
	return mgmtserver.Info{
		ConnectedAt:  c.connectedAt,
		LastActiveAt: time.Unix(0, c.lastClient.Load()),
		SourceIP:     c.sourceIP,
		UserAgent:    c.userAgent,
	}, true
}

// Close closes the connection as DeleteConnection does (close code 1000)
// and returns at once; $disconnect follows when the socket has closed.
func (g *Gateway) Close(id string) bool {
	c := g.lookup(id)
	if c == nil {
		return false
	}
	return c.requestClose(websocket.StatusNormalClosure, describe(websocket.StatusNormalClosure))
}

// Shutdown refuses new connections, closes every socket with 1001 "Going
// away" and waits until each $disconnect has run. When ctx ends first it
// drops the remaining sockets without a close handshake and returns
// ctx.Err(); their $disconnect still runs.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.mu.Lock()
	g.shuttingDown = true
	open := make([]*conn, 0, len(g.conns))
	for _, c := range g.conns {
		open = append(open, c)
	}
	g.mu.Unlock()
	for _, c := range open {
		c.requestClose(websocket.StatusGoingAway, describe(websocket.StatusGoingAway))
	}
	done := make(chan struct{})
	go func() {
		g.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		g.mu.Lock()
		for _, c := range g.conns {
			select {
			case <-c.ready:
				if c.ws != nil {
					_ = c.ws.CloseNow()
				}
			default: // still in the handshake, which serve then cuts short
			}
		}
		g.mu.Unlock()
		return fmt.Errorf("wsgateway: shutdown: %w", ctx.Err())
	}
}

// Connections counts the connections accepted and not yet forgotten.
func (g *Gateway) Connections() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.conns)
}

// IDs lists the open connections' ids, sorted.
func (g *Gateway) IDs() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	ids := make([]string, 0, len(g.conns))
	for id, c := range g.conns {
		if !c.isClosing() {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// lookup returns an open connection, nil for one unknown or closing: API
// Gateway answers 410 from the moment a connection starts going away.
func (g *Gateway) lookup(id string) *conn {
	g.mu.Lock()
	c := g.conns[id]
	g.mu.Unlock()
	if c == nil || c.isClosing() {
		return nil
	}
	return c
}

func (g *Gateway) logRoute(c *conn, route, requestID string, status int, elapsed time.Duration, errMsg string) {
	attrs := []any{"connectionId", c.id, "route", route, "status", status, "duration_ms", elapsed.Milliseconds()}
	if requestID != "" {
		attrs = append(attrs, "requestId", requestID)
	}
	if errMsg != "" {
		attrs = append(attrs, "error", errMsg)
	}
	g.log.Info("websocket route", attrs...)
}

func (g *Gateway) logDisconnect(c *conn, status int, elapsed time.Duration, code int, reason, errMsg string) {
	attrs := []any{"connectionId", c.id, "route", RouteDisconnect, "status", status,
		"duration_ms", elapsed.Milliseconds(), "close_code", code, "close_reason", reason,
		"connected_ms", time.Since(c.connectedAt).Milliseconds()}
	if errMsg != "" {
		attrs = append(attrs, "error", errMsg)
	}
	g.log.Info("websocket route", attrs...)
}

// writeMessage answers an HTTP request the way API Gateway does.
func writeMessage(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, "{\"message\":%q}\n", message)
}

// isUpgrade checks what coder/websocket's Accept checks, so that $connect
// runs only for requests that can be upgraded.
func isUpgrade(r *http.Request) bool {
	return r.Method == http.MethodGet &&
		headerHasToken(r.Header, "Connection", "upgrade") &&
		headerHasToken(r.Header, "Upgrade", "websocket") &&
		r.Header.Get("Sec-WebSocket-Version") == "13" &&
		r.Header.Get("Sec-WebSocket-Key") != ""
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

func header(resp events.APIGatewayProxyResponse, name string) string {
	for k, v := range resp.Headers {
		if http.CanonicalHeaderKey(k) == http.CanonicalHeaderKey(name) {
			return v
		}
	}
	for k, vs := range resp.MultiValueHeaders {
		if http.CanonicalHeaderKey(k) == http.CanonicalHeaderKey(name) && len(vs) > 0 {
			return vs[0]
		}
	}
	return ""
}
