package httpgateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// AuthorizerFunc is a Lambda authorizer's handler: the event as JSON in,
// the answer out, as the Lambda runtime would carry them.
type AuthorizerFunc func(ctx context.Context, payload json.RawMessage) (any, error)

// Authorizer is a route's Lambda REQUEST authorizer, payload format 2.0
// with simple responses ({"isAuthorized": …, "context": …}).
type Authorizer struct {
	// Name tells authorizers apart in the verdict cache.
	Name   string
	Invoke AuthorizerFunc
	// IdentitySource lists $request.header.<name> and
	// $request.querystring.<name>; a request missing one gets 401 without
	// Invoke being called.
	IdentitySource []string
	// ResultTTL caches each verdict per identity, as API Gateway does; 0
	// asks every time.
	ResultTTL time.Duration

	mu    sync.Mutex
	cache map[string]verdict
}

type verdict struct {
	authorized bool
	context    map[string]any
	until      time.Time
}

// simpleResponse is the authorizer's answer with simple responses on.
type simpleResponse struct {
	IsAuthorized *bool          `json:"isAuthorized"`
	Context      map[string]any `json:"context"`
}

// authorize decides the request as API Gateway does: 401 {"message":
// "Unauthorized"} for a missing identity source, 403 "Forbidden" when not
// authorized, 500 when the authorizer fails or answers nonsense. On success
// ev carries the authorizer context.
func (g *Gateway) authorize(ctx context.Context, a *Authorizer, r *http.Request, ev *events.APIGatewayV2HTTPRequest) (status int, message string) {
	identity := make([]string, 0, len(a.IdentitySource))
	for _, src := range a.IdentitySource {
		v := ""
		if name, ok := strings.CutPrefix(src, "$request.header."); ok {
			v = r.Header.Get(name)
		} else if name, ok := strings.CutPrefix(src, "$request.querystring."); ok {
			v = r.URL.Query().Get(name)
		}
		if v == "" {
			return http.StatusUnauthorized, "Unauthorized"
		}
		identity = append(identity, v)
	}
	key := strings.Join(identity, "\x00")
	now := time.Now()
	a.mu.Lock()
	v, cached := a.cache[key]
	a.mu.Unlock()
	if !cached || !now.Before(v.until) {
		var err error
		if v, err = g.askAuthorizer(ctx, a, ev, identity); err != nil {
			g.cfg.Log.ErrorContext(ctx, "authorizer failed", "route", ev.RouteKey, "error", err.Error())
			return http.StatusInternalServerError, "Internal Server Error"
		}
		if a.ResultTTL > 0 {
			v.until = now.Add(a.ResultTTL)
			a.mu.Lock()
			if a.cache == nil {
				a.cache = map[string]verdict{}
			}
			a.cache[key] = v
			a.mu.Unlock()
		}
	}
	if !v.authorized {
		return http.StatusForbidden, "Forbidden"
	}
	ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{Lambda: v.context}
	return 0, ""
}

func (g *Gateway) askAuthorizer(ctx context.Context, a *Authorizer, ev *events.APIGatewayV2HTTPRequest, identity []string) (verdict, error) {
	arn := fmt.Sprintf("arn:aws:execute-api:us-east-1:%s:%s/%s/%s%s", ev.RequestContext.AccountID, g.cfg.APIID,
		ev.RequestContext.Stage, ev.RequestContext.HTTP.Method, ev.RequestContext.HTTP.Path)
	payload, err := json.Marshal(events.APIGatewayV2CustomAuthorizerV2Request{
		Version: "2.0", Type: "REQUEST", RouteArn: arn, IdentitySource: identity,
		RouteKey: ev.RouteKey, RawPath: ev.RawPath, RawQueryString: ev.RawQueryString, Cookies: ev.Cookies,
		Headers: ev.Headers, QueryStringParameters: ev.QueryStringParameters, RequestContext: ev.RequestContext,
		PathParameters: ev.PathParameters, StageVariables: ev.StageVariables,
	})
	if err != nil {
		return verdict{}, err
	}
	out, err := a.Invoke(ctx, payload)
	if err != nil {
		return verdict{}, err
	}
	raw, err := json.Marshal(out)
	if err != nil {
		return verdict{}, err
	}
	var resp simpleResponse
	if err := json.Unmarshal(raw, &resp); err != nil || resp.IsAuthorized == nil {
		return verdict{}, fmt.Errorf("authorizer %s: answer %s is no simple response", a.Name, raw)
	}
	return verdict{authorized: *resp.IsAuthorized, context: resp.Context}, nil
}
