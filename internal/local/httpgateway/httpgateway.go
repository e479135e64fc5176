// Package httpgateway emulates an API Gateway HTTP API for the local stack:
// it matches requests to routes as API Gateway does, builds payload format
// 2.0 events and writes the handler's response back.
package httpgateway

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// Handler is an HTTP API Lambda's handler, as aws-lambda-go types it.
type Handler func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// DefaultRoute is the path of the route that takes every request no other
// route matches, as an HTTP API's $default route does.
const DefaultRoute = "$default"

// Route binds "METHOD /path/{param}" (method ANY matches every method) to
// a handler. Path DefaultRoute makes it the API's $default route.
type Route struct {
	Method  string
	Path    string
	Handler Handler
	// Authorizer, when set, decides each request before Handler sees it.
	Authorizer *Authorizer
}

// CORS is the API's CorsConfiguration.
type CORS struct {
	AllowOrigins  []string
	AllowMethods  []string
	AllowHeaders  []string
	ExposeHeaders []string
	MaxAge        int
}

// Config configures a Gateway.
type Config struct {
	APIID  string
	Routes []Route
	// Local returns the handler of a request that only the local stack
	// serves (its pages, config.json), or nil. It is asked after the
	// routes and before the $default route; with neither, the answer is
	// API Gateway's 404 {"message":"Not Found"}.
	Local func(r *http.Request) http.Handler
	CORS  *CORS
	Log   *slog.Logger
}

// MaxBodyBytes is API Gateway's HTTP API payload limit (10 MB).
const MaxBodyBytes = 10 << 20

// Gateway serves an HTTP API.
type Gateway struct {
	cfg    Config
	routes []route
	// fallback is the $default route, nil without one.
	fallback *route
}

type route struct {
	Route
	segments []string
}

// New checks the routes and returns a Gateway.
func New(cfg Config) (*Gateway, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.APIID == "" {
		cfg.APIID = "localhttp0"
	}
	g := &Gateway{cfg: cfg}
	for _, r := range cfg.Routes {
		r.Method = strings.ToUpper(r.Method)
		if r.Path == DefaultRoute {
			if r.Handler == nil || g.fallback != nil || (r.Method != "ANY" && r.Method != "") {
				return nil, fmt.Errorf("httpgateway: the %s route: needs a handler, method ANY, and may be given once", DefaultRoute)
			}
			r.Method = "ANY"
			g.fallback = &route{Route: r}
			continue
		}
		if r.Handler == nil || !strings.HasPrefix(r.Path, "/") {
			return nil, fmt.Errorf("httpgateway: route %s %s: needs a handler and a path starting with /", r.Method, r.Path)
		}
		g.routes = append(g.routes, route{Route: r, segments: strings.Split(strings.Trim(r.Path, "/"), "/")})
	}
	return g, nil
}

// match picks the route API Gateway would: the most specific path (more
// literal segments first), then an exact method over ANY.
func (g *Gateway) match(method, path string) (*route, map[string]string) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	var best *route
	var bestParams map[string]string
	bestScore := -1
	for i := range g.routes {
		r := &g.routes[i]
		if r.Method != method && r.Method != "ANY" {
			continue
		}
		params, literals, ok := matchPath(r.segments, segs)
		if !ok {
			continue
		}
		score := literals * 2
		if r.Method == method {
			score++
		}
		if score > bestScore {
			best, bestParams, bestScore = r, params, score
		}
	}
	return best, bestParams
}

func matchPath(pattern, segs []string) (map[string]string, int, bool) {
	params := map[string]string{}
	literals := 0
	for i, p := range pattern {
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "+}") {
			if i >= len(segs) {
				return nil, 0, false
			}
			params[strings.TrimSuffix(p[1:], "+}")] = strings.Join(segs[i:], "/")
			return params, literals, true
		}
		if i >= len(segs) {
			return nil, 0, false
		}
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
			if segs[i] == "" {
				return nil, 0, false
			}
			params[p[1:len(p)-1]] = segs[i]
			continue
		}
		if p != segs[i] {
			return nil, 0, false
		}
		literals++
	}
	if len(pattern) != len(segs) {
		return nil, 0, false
	}
	return params, literals, true
}

// ServeHTTP answers CORS preflights, routes the request and writes the
// handler's response.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if g.cors(w, r) {
		return
	}
	rt, params := g.match(r.Method, r.URL.EscapedPath())
	if rt == nil {
		if g.cfg.Local != nil {
			if h := g.cfg.Local(r); h != nil {
				h.ServeHTTP(w, r)
				return
			}
		}
		if rt = g.fallback; rt == nil {
			writeMessage(w, http.StatusNotFound, "Not Found")
			return
		}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		writeMessage(w, http.StatusBadRequest, "Bad Request")
		return
	}
	if len(body) > MaxBodyBytes {
		writeMessage(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
		return
	}
	ev := g.event(r, rt, params, body, start)
	if rt.Authorizer != nil {
		if status, msg := g.authorize(r.Context(), rt.Authorizer, r, &ev); status != 0 {
			writeMessage(w, status, msg)
			g.cfg.Log.InfoContext(r.Context(), "http request", "route", ev.RouteKey, "path", r.URL.Path,
				"status", status, "requestId", ev.RequestContext.RequestID, "authorizer", msg,
				"duration_ms", time.Since(start).Milliseconds())
			return
		}
	}
	resp, err := rt.Handler(r.Context(), ev)
	status := resp.StatusCode
	if err != nil {
		// API Gateway answers a failed invocation this way.
		g.cfg.Log.ErrorContext(r.Context(), "http handler failed", "route", ev.RouteKey, "error", err.Error())
		writeMessage(w, http.StatusInternalServerError, "Internal Server Error")
		status = http.StatusInternalServerError
	} else {
		writeResponse(w, resp)
	}
	g.cfg.Log.InfoContext(r.Context(), "http request", "route", ev.RouteKey, "path", r.URL.Path,
		"status", status, "requestId", ev.RequestContext.RequestID, "duration_ms", time.Since(start).Milliseconds())
}

func (g *Gateway) event(r *http.Request, rt *route, params map[string]string, body []byte, now time.Time) events.APIGatewayV2HTTPRequest {
	routeKey := rt.Method + " " + rt.Path
	if rt == g.fallback {
		routeKey = DefaultRoute
	}
	headers := map[string]string{}
	var cookies []string
	for k, v := range r.Header {
		lk := strings.ToLower(k)
		if lk == "cookie" {
			for _, c := range v {
				for part := range strings.SplitSeq(c, ";") {
					if p := strings.TrimSpace(part); p != "" {
						cookies = append(cookies, p)
					}
				}
			}
			continue
		}
		headers[lk] = strings.Join(v, ",")
	}
	headers["host"] = r.Host
	if len(body) > 0 {
		headers["content-length"] = fmt.Sprint(len(body))
	}
	source := r.RemoteAddr
	if host, _, err := net.SplitHostPort(source); err == nil {
		source = host
	}
	headers["x-forwarded-for"] = source
	var query map[string]string
	if q := r.URL.Query(); len(q) > 0 {
		query = make(map[string]string, len(q))
		for k, v := range q {
			query[k] = strings.Join(v, ",")
		}
	}
	ev := events.APIGatewayV2HTTPRequest{
		Version:               "2.0",
		RouteKey:              routeKey,
		RawPath:               r.URL.EscapedPath(),
		RawQueryString:        r.URL.RawQuery,
		Cookies:               cookies,
		Headers:               headers,
		QueryStringParameters: query,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:     routeKey,
			AccountID:    "000000000000",
			Stage:        "$default",
			RequestID:    requestID(),
			APIID:        g.cfg.APIID,
			DomainName:   r.Host,
			DomainPrefix: strings.Split(r.Host, ".")[0],
			Time:         now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:    now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    r.Method,
				Path:      r.URL.Path,
				Protocol:  r.Proto,
				SourceIP:  source,
				UserAgent: r.UserAgent(),
			},
		},
	}
	if len(params) > 0 {
		ev.PathParameters = make(map[string]string, len(params))
		for k, v := range params {
			// API Gateway hands the function decoded parameters.
			if u, err := url.PathUnescape(v); err == nil {
				v = u
			}
			ev.PathParameters[k] = v
		}
	}
	if len(body) > 0 {
		if isText(r.Header.Get("Content-Type")) {
			ev.Body = string(body)
		} else {
			ev.Body = base64.StdEncoding.EncodeToString(body)
			ev.IsBase64Encoded = true
		}
	}
	return ev
}

// isText reports the content types API Gateway passes as text; everything
// else reaches the function base64-encoded.
func isText(contentType string) bool {
	if contentType == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return strings.HasPrefix(mt, "text/") || mt == "application/json" || strings.HasSuffix(mt, "+json") ||
		mt == "application/xml" || mt == "application/javascript" || mt == "application/x-www-form-urlencoded"
}

func writeResponse(w http.ResponseWriter, resp events.APIGatewayV2HTTPResponse) {
	for k, v := range resp.Headers {
		w.Header().Set(k, v)
	}
	for k, vs := range resp.MultiValueHeaders {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	for _, c := range resp.Cookies {
		w.Header().Add("Set-Cookie", c)
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		dec, err := base64.StdEncoding.DecodeString(resp.Body)
		if err != nil {
			writeMessage(w, http.StatusInternalServerError, "Internal Server Error")
			return
		}
		body = dec
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	status := resp.StatusCode
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeMessage(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"message":%q}`, msg)
}

// cors adds CORS headers for an allowed origin and answers preflights
// itself, as API Gateway does when the API has a CorsConfiguration.
func (g *Gateway) cors(w http.ResponseWriter, r *http.Request) bool {
	c := g.cfg.CORS
	origin := r.Header.Get("Origin")
	if c == nil || origin == "" {
		return false
	}
	allowed := slices.Contains(c.AllowOrigins, "*") || slices.Contains(c.AllowOrigins, origin)
	preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
	if allowed {
		h := w.Header()
		if slices.Contains(c.AllowOrigins, "*") {
			h.Set("Access-Control-Allow-Origin", "*")
		} else {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
		}
		if len(c.ExposeHeaders) > 0 {
			h.Set("Access-Control-Expose-Headers", strings.Join(c.ExposeHeaders, ","))
		}
		if preflight {
			h.Set("Access-Control-Allow-Methods", strings.Join(c.AllowMethods, ","))
			h.Set("Access-Control-Allow-Headers", strings.Join(c.AllowHeaders, ","))
			if c.MaxAge > 0 {
				h.Set("Access-Control-Max-Age", fmt.Sprint(c.MaxAge))
			}
		}
	}
	if preflight {
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	return false
}

// requestID is shaped like API Gateway's: 12 random bytes, base64.
func requestID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)[:15] + "="
}
