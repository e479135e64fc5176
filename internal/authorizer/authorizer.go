// Package authorizer is the Lambda authorizer: it verifies the caller's
// token for the WebSocket API's $connect and for the HTTP API, and hands
// API Gateway the caller's identity and room grants as the authorizer
// context every later event of the request or connection carries.
package authorizer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushgate/pushgate/internal/auth"
)

// ErrUnauthorized is the error whose message API Gateway answers with 401
// (a REQUEST authorizer for the WebSocket API signals a refused token
// with exactly this message, as REST API authorizers do).
var ErrUnauthorized = errors.New("Unauthorized")

// QueryToken is the query string parameter $connect takes the token from:
// browsers cannot set headers on a WebSocket.
const QueryToken = "token"

// Authorizer answers both APIs' authorizer invocations.
type Authorizer struct {
	verify *auth.Verifier
	// origins, when not empty, are the Origin values $connect accepts.
	origins []string
	log     *slog.Logger
	now     func() time.Time
}

// New returns an Authorizer. origins is the Origin allow-list of $connect
// (empty: any origin).
func New(v *auth.Verifier, origins []string, log *slog.Logger) *Authorizer {
	return &Authorizer{verify: v, origins: origins, log: log, now: time.Now}
}

// WebSocketRequest is the REQUEST authorizer event of a WebSocket API's
// $connect: the upgrade request as $connect sees it, with the methodArn
// the policy must allow. (aws-lambda-go's REST-shaped
// APIGatewayCustomAuthorizerRequestTypeRequest lacks the WebSocket
// requestContext fields.)
type WebSocketRequest struct {
	Type                            string                                        `json:"type"`
	MethodArn                       string                                        `json:"methodArn"`
	Headers                         map[string]string                             `json:"headers"`
	MultiValueHeaders               map[string][]string                           `json:"multiValueHeaders"`
	QueryStringParameters           map[string]string                             `json:"queryStringParameters,omitempty"`
	MultiValueQueryStringParameters map[string][]string                           `json:"multiValueQueryStringParameters,omitempty"`
	StageVariables                  map[string]string                             `json:"stageVariables"`
	RequestContext                  events.APIGatewayWebsocketProxyRequestContext `json:"requestContext"`
}

// kind tells the two event shapes apart: the HTTP API sends payload
// version 2.0 with a routeArn, the WebSocket API a REQUEST event with a
// methodArn.
type kind struct {
	Version   string `json:"version"`
	Type      string `json:"type"`
	MethodArn string `json:"methodArn"`
	RouteArn  string `json:"routeArn"`
}

// outcome is what one invocation decided, for its log line.
type outcome struct {
	api, decision, reason, user string
}

// Invoke answers one authorizer event, whichever API sent it: for the
// WebSocket API an IAM policy (or ErrUnauthorized), for the HTTP API a
// simple response.
func (a *Authorizer) Invoke(ctx context.Context, payload json.RawMessage) (any, error) {
	start := a.now()
	var k kind
	var out outcome
	var resp any
	err := json.Unmarshal(payload, &k)
	switch {
	case err != nil:
		err = fmt.Errorf("authorizer: event is not JSON: %w", err)
	case k.Version == "2.0" && k.RouteArn != "":
		out.api = "http"
		var req events.APIGatewayV2CustomAuthorizerV2Request
		if err = json.Unmarshal(payload, &req); err == nil {
			resp, err = a.http(ctx, req, &out)
		}
	case k.Type == "REQUEST" && k.MethodArn != "":
		out.api = "websocket"
		var req WebSocketRequest
		if err = json.Unmarshal(payload, &req); err == nil {
			resp, err = a.websocket(ctx, req, &out)
		}
	default:
		err = errors.New("authorizer: neither an HTTP API (2.0) nor a WebSocket REQUEST authorizer event")
	}
	if err != nil && !errors.Is(err, ErrUnauthorized) {
		out.decision = "error"
		a.log.ErrorContext(ctx, "authorizer failure", "error", err.Error())
	}
	attrs := []any{"api", out.api, "decision", out.decision, "duration_ms", a.now().Sub(start).Milliseconds()}
	if out.reason != "" {
		attrs = append(attrs, "reason", out.reason)
	}
	if out.user != "" {
		attrs = append(attrs, "user", out.user)
	}
	a.log.InfoContext(ctx, "authorizer", attrs...)
	return resp, err
}

// websocket answers $connect: a refused token is 401 (ErrUnauthorized), a
// good token from an origin not allowed is 403 (a Deny policy).
func (a *Authorizer) websocket(ctx context.Context, req WebSocketRequest, out *outcome) (any, error) {
	p, err := a.principal(ctx, req.QueryStringParameters[QueryToken], out)
	if err != nil {
		return nil, err
	}
	effect := "Allow"
	if origin := header(req.Headers, "Origin"); len(a.origins) > 0 && !slices.Contains(a.origins, origin) {
		effect, out.decision, out.reason = "Deny", "deny", "origin_not_allowed"
	}
	return events.APIGatewayCustomAuthorizerResponse{
		PrincipalID: p.User,
		PolicyDocument: events.APIGatewayCustomAuthorizerPolicy{
			Version: "2012-10-17",
			Statement: []events.IAMPolicyStatement{{
				Action: []string{"execute-api:Invoke"}, Effect: effect, Resource: []string{req.MethodArn},
			}},
		},
		Context: p.Context(),
	}, nil
}

// http answers the HTTP API: a refused token is not authorized (403; a
// missing header never reaches here, API Gateway answers 401 itself).
func (a *Authorizer) http(ctx context.Context, req events.APIGatewayV2CustomAuthorizerV2Request, out *outcome) (any, error) {
	token, ok := bearer(header(req.Headers, "Authorization"))
	if !ok {
		out.decision, out.reason = "deny", "not_bearer"
		return events.APIGatewayV2CustomAuthorizerSimpleResponse{IsAuthorized: false}, nil
	}
	p, err := a.principal(ctx, token, out)
	if errors.Is(err, ErrUnauthorized) {
		return events.APIGatewayV2CustomAuthorizerSimpleResponse{IsAuthorized: false}, nil
	}
	if err != nil {
		return nil, err
	}
	return events.APIGatewayV2CustomAuthorizerSimpleResponse{IsAuthorized: true, Context: p.Context()}, nil
}

// principal verifies token: ErrUnauthorized for a refused token, another
// error when the keys cannot be had (API Gateway answers 500, and the
// client may retry).
func (a *Authorizer) principal(ctx context.Context, token string, out *outcome) (auth.Principal, error) {
	p, err := a.verify.Verify(ctx, token)
	var te *auth.TokenError
	switch {
	case err == nil:
		out.decision, out.user = "allow", p.User
		return p, nil
	case errors.As(err, &te) && te.Reason != auth.ReasonKeys:
		out.decision, out.reason = "unauthorized", te.Reason
		a.log.DebugContext(ctx, "token refused", "error", err.Error())
		return auth.Principal{}, ErrUnauthorized
	}
	return auth.Principal{}, err
}

// bearer takes the token out of an Authorization header value.
func bearer(v string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

func header(h map[string]string, name string) string {
	for k, v := range h {
		if http.CanonicalHeaderKey(k) == name {
			return v
		}
	}
	return ""
}
