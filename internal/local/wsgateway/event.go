package wsgateway

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// Event types API Gateway puts in requestContext.eventType.
const (
	eventConnect    = "CONNECT"
	eventMessage    = "MESSAGE"
	eventDisconnect = "DISCONNECT"
)

// requestTimeLayout is requestContext.requestTime's format, e.g.
// "09/Feb/2024:18:11:43 +0000".
const requestTimeLayout = "02/Jan/2006:15:04:05 -0700"

// newID returns an id shaped like API Gateway's connection, request and
// message ids ("WcK2dcPZoAMCFwQ="): 11 random bytes in URL-safe base64,
// 16 characters ending in "=". URL-safe matters: the id travels in the
// Management API's path, where a "/" would split it.
func newID() string {
	b := make([]byte, 11)
	_, _ = rand.Read(b) // never fails; see crypto/rand.Read
	return base64.URLEncoding.EncodeToString(b)
}

// newAPIID returns 10 lowercase letters and digits, like a real API id.
func newAPIID() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// parseSelection turns "$request.body.action" (or "${request.body.action}",
// or a nested "$request.body.meta.action") into the JSON path it selects.
func parseSelection(expr string) ([]string, error) {
	e := strings.TrimSpace(expr)
	if e == "" {
		e = "$request.body.action"
	}
	if strings.HasPrefix(e, "${") && strings.HasSuffix(e, "}") {
		e = "$" + e[2:len(e)-1]
	}
	rest, ok := strings.CutPrefix(e, "$request.body.")
	if !ok {
		return nil, fmt.Errorf("wsgateway: route selection expression %q: only $request.body.<field> is supported", expr)
	}
	path := strings.Split(rest, ".")
	for _, p := range path {
		if p == "" {
			return nil, fmt.Errorf("wsgateway: route selection expression %q has an empty field name", expr)
		}
	}
	return path, nil
}

// selectRoute evaluates the route selection expression over a message body:
// the route key is the selected field when it is a string naming a
// configured custom route, and $default otherwise (non-JSON bodies included).
func (g *Gateway) selectRoute(body []byte) string {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil || dec.More() {
		return RouteDefault
	}
	for _, field := range g.selectPath {
		obj, ok := v.(map[string]any)
		if !ok {
			return RouteDefault
		}
		v = obj[field]
	}
	key, ok := v.(string)
	if !ok || reserved(key) {
		return RouteDefault
	}
	if _, ok := g.routes[key]; !ok {
		return RouteDefault
	}
	return key
}

func reserved(key string) bool {
	return key == RouteConnect || key == RouteDisconnect || key == RouteDefault
}

// requestContext fills what every event carries; callers add the rest.
func (g *Gateway) requestContext(c *conn, routeKey, eventType string, now time.Time) events.APIGatewayWebsocketProxyRequestContext {
	id := newID()
	var authorizer any
	if c.authorizer != nil {
		authorizer = c.authorizer
	}
	return events.APIGatewayWebsocketProxyRequestContext{
		Authorizer:        authorizer,
		RouteKey:          routeKey,
		EventType:         eventType,
		ExtendedRequestID: id,
		RequestID:         id,
		RequestTime:       now.UTC().Format(requestTimeLayout),
		RequestTimeEpoch:  now.UnixMilli(),
		MessageDirection:  "IN",
		Stage:             g.stage,
		ConnectedAt:       c.connectedAt.UnixMilli(),
		Identity:          events.APIGatewayRequestIdentity{SourceIP: c.sourceIP, UserAgent: c.userAgent},
		DomainName:        c.domainName,
		ConnectionID:      c.id,
		APIID:             g.apiID,
	}
}

// connectEvent is the $connect event for the upgrade request r.
func (g *Gateway) connectEvent(c *conn, r *http.Request) events.APIGatewayWebsocketProxyRequest {
	single := map[string]string{}
	multi := map[string][]string{}
	for name, values := range r.Header {
		single[name] = values[len(values)-1]
		multi[name] = append([]string(nil), values...)
	}
	// API Gateway's edge adds these; Go keeps Host out of r.Header.
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	forwardedFor := c.sourceIP
	if prev := r.Header.Values("X-Forwarded-For"); len(prev) > 0 {
		forwardedFor = strings.Join(prev, ", ") + ", " + c.sourceIP
	}
	added := map[string]string{
		"Host":              c.domainName,
		"X-Forwarded-For":   forwardedFor,
		"X-Forwarded-Proto": proto,
	}
	if _, port, err := net.SplitHostPort(c.domainName); err == nil {
		added["X-Forwarded-Port"] = port
	}
	for name, v := range added {
		single[name] = v
		multi[name] = []string{v}
	}
	req := events.APIGatewayWebsocketProxyRequest{
		Headers:           single,
		MultiValueHeaders: multi,
		RequestContext:    g.requestContext(c, RouteConnect, eventConnect, time.Now()),
	}
	if q := r.URL.Query(); len(q) > 0 {
		req.QueryStringParameters = map[string]string{}
		req.MultiValueQueryStringParameters = map[string][]string{}
		for name, values := range q {
			req.QueryStringParameters[name] = values[len(values)-1]
			req.MultiValueQueryStringParameters[name] = values
		}
	}
	return req
}

// disconnectEvent carries the few headers API Gateway sends with
// $disconnect, not the upgrade request's.
func (g *Gateway) disconnectEvent(c *conn, code int, reason string) events.APIGatewayWebsocketProxyRequest {
	rc := g.requestContext(c, RouteDisconnect, eventDisconnect, time.Now())
	rc.DisconnectStatusCode = int64(code)
	rc.DisconnectReason = &reason
	headers := map[string]string{"Host": c.domainName, "x-api-key": "", "X-Forwarded-For": "", "x-restapi": ""}
	multi := make(map[string][]string, len(headers))
	for k, v := range headers {
		multi[k] = []string{v}
	}
	return events.APIGatewayWebsocketProxyRequest{Headers: headers, MultiValueHeaders: multi, RequestContext: rc}
}

// gatewayError is the frame API Gateway itself sends a client when a message
// cannot be routed or its integration fails, spacing included.
func gatewayError(message, connectionID, requestID string) []byte {
	q := func(s string) string {
		b, _ := json.Marshal(s) // a string always marshals
		return string(b)
	}
	return fmt.Appendf(nil, `{"message": %s, "connectionId":%s, "requestId":%s}`, q(message), q(connectionID), q(requestID))
}
