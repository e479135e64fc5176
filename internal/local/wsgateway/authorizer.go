package wsgateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushgate/pushgate/internal/authorizer"
)

// AuthorizerFunc is a Lambda authorizer's handler: the event as JSON in,
// the answer out, as the Lambda runtime would carry them.
type AuthorizerFunc func(ctx context.Context, payload json.RawMessage) (any, error)

// Authorizer is the $connect route's REQUEST authorizer.
type Authorizer struct {
	Invoke AuthorizerFunc
	// IdentitySource lists route.request.querystring.<name> and
	// route.request.header.<name> sources; a request missing one is
	// refused 401 without calling Invoke.
	IdentitySource []string
}

// authorizerRefusal is how API Gateway answers an upgrade the authorizer
// did not allow.
type authorizerRefusal struct {
	status  int
	message string
}

// authorize runs the authorizer for the $connect event ev as API Gateway
// does: 401 for a missing identity source or an "Unauthorized" error, 403
// for a policy that does not allow the $connect route, 500 for any other
// failure. On success it returns the authorizer context later events carry
// (with principalId, as API Gateway adds it).
func (g *Gateway) authorize(ctx context.Context, a *Authorizer, ev events.APIGatewayWebsocketProxyRequest) (map[string]any, *authorizerRefusal) {
	for _, src := range a.IdentitySource {
		if identityValue(src, ev) == "" {
			return nil, &authorizerRefusal{http.StatusUnauthorized, "Unauthorized"}
		}
	}
	arn := fmt.Sprintf("arn:aws:execute-api:%s:%s:%s/%s/%s", g.region, g.account, g.apiID, g.stage, RouteConnect)
	payload, err := json.Marshal(authorizer.WebSocketRequest{
		Type: "REQUEST", MethodArn: arn,
		Headers: ev.Headers, MultiValueHeaders: ev.MultiValueHeaders,
		QueryStringParameters: ev.QueryStringParameters, MultiValueQueryStringParameters: ev.MultiValueQueryStringParameters,
		StageVariables: map[string]string{}, RequestContext: ev.RequestContext,
	})
	if err != nil {
		return nil, &authorizerRefusal{http.StatusInternalServerError, "Internal server error"}
	}
	start := time.Now()
	out, err := a.Invoke(ctx, payload)
	if err != nil {
		if err.Error() == "Unauthorized" {
			return nil, &authorizerRefusal{http.StatusUnauthorized, "Unauthorized"}
		}
		g.log.Error("authorizer failed", "connectionId", ev.RequestContext.ConnectionID, "error", err.Error())
		return nil, &authorizerRefusal{http.StatusInternalServerError, "Internal server error"}
	}
	var resp events.APIGatewayCustomAuthorizerResponse
	raw, err := json.Marshal(out)
	if err == nil {
		err = json.Unmarshal(raw, &resp)
	}
	if err != nil || resp.PrincipalID == "" {
		g.log.Error("authorizer answered no policy", "connectionId", ev.RequestContext.ConnectionID)
		return nil, &authorizerRefusal{http.StatusInternalServerError, "Internal server error"}
	}
	if !allows(resp.PolicyDocument, arn) {
		return nil, &authorizerRefusal{http.StatusForbidden, "Forbidden"}
	}
	ctxOut := map[string]any{}
	for k, v := range resp.Context {
		ctxOut[k] = v
	}
	ctxOut["principalId"] = resp.PrincipalID
	ctxOut["integrationLatency"] = time.Since(start).Milliseconds()
	return ctxOut, nil
}

// identityValue reads one identity source from the $connect event.
func identityValue(src string, ev events.APIGatewayWebsocketProxyRequest) string {
	if name, ok := strings.CutPrefix(src, "route.request.querystring."); ok {
		return ev.QueryStringParameters[name]
	}
	if name, ok := strings.CutPrefix(src, "route.request.header."); ok {
		for k, v := range ev.Headers {
			if strings.EqualFold(k, name) {
				return v
			}
		}
	}
	return ""
}

// allows evaluates the policy as IAM does for one execute-api:Invoke on
// arn: an explicit Deny wins, else an Allow is needed.
func allows(doc events.APIGatewayCustomAuthorizerPolicy, arn string) bool {
	allowed := false
	for _, st := range doc.Statement {
		if !matchesAny(st.Action, "execute-api:Invoke") || !matchesAny(st.Resource, arn) {
			continue
		}
		switch st.Effect {
		case "Deny":
			return false
		case "Allow":
			allowed = true
		}
	}
	return allowed
}

func matchesAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if glob(p, s) {
			return true
		}
	}
	return false
}

// glob matches IAM's wildcards: * any run of characters, ? one.
func glob(p, s string) bool {
	for len(p) > 0 {
		switch p[0] {
		case '*':
			for i := len(s); i >= 0; i-- {
				if glob(p[1:], s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
		default:
			if s == "" || s[0] != p[0] {
				return false
			}
		}
		p, s = p[1:], s[1:]
	}
	return s == ""
}
