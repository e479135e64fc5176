package samtemplate

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// TypeGatewayAuthorizer is an API Gateway (v2) authorizer.
const TypeGatewayAuthorizer = "AWS::ApiGatewayV2::Authorizer"

// Authorizer is a Lambda REQUEST authorizer of an API Gateway (v2) API.
type Authorizer struct {
	LogicalID string
	// Function is the logical id of the function AuthorizerUri invokes.
	Function string
	// IdentitySource is as written: route.request.querystring.token for a
	// WebSocket API, $request.header.Authorization for an HTTP API. A
	// request missing one gets 401 without the function being called.
	IdentitySource []string
	// PayloadFormatVersion and SimpleResponses are the HTTP API's (2.0,
	// true: the function answers {"isAuthorized": …}).
	PayloadFormatVersion string
	SimpleResponses      bool
	// ResultTTL is how many seconds API Gateway caches a verdict per
	// identity (HTTP APIs).
	ResultTTL int
}

// HTTPAPIRoute is one AWS::ApiGatewayV2::Route of an HTTP API.
type HTTPAPIRoute struct {
	LogicalID string
	// Method is upper case, ANY for every method no other route takes;
	// Path has its parameters in braces. The $default route has Method
	// ANY and Path $default.
	Method, Path string
	// Function is the logical id of the function the AWS_PROXY
	// integration invokes.
	Function string
	// Authorizer is nil for AuthorizationType NONE.
	Authorizer *Authorizer
}

// HTTPAPI is the template's API Gateway HTTP API, written out as
// AWS::ApiGatewayV2 resources.
type HTTPAPI struct {
	LogicalID string
	// Routes are ordered by path, then method.
	Routes []HTTPAPIRoute
}

// HTTPAPI returns the template's one HTTP AWS::ApiGatewayV2::Api with its
// routes followed to their functions and authorizers; ok is false when it
// has none. Read it from a Resolved template: routes choose their
// authorizer with Fn::If.
func (t *Template) HTTPAPI() (api HTTPAPI, ok bool, err error) {
	var ids []string
	for id, r := range t.resources {
		if r.Type == TypeGatewayAPI && stringProp(r.Properties, "ProtocolType") == "HTTP" {
			ids = append(ids, id)
		}
	}
	switch len(ids) {
	case 0:
		return HTTPAPI{}, false, nil
	case 1:
	default:
		slices.Sort(ids)
		return HTTPAPI{}, false, fmt.Errorf("%w: want one HTTP %s, have %v", ErrInvalidTemplate, TypeGatewayAPI, ids)
	}
	api.LogicalID = ids[0]
	for _, id := range slices.Sorted(maps.Keys(t.resources)) {
		r := t.resources[id]
		if r.Type != TypeGatewayRoute || !t.refersTo(r.Properties["ApiId"], api.LogicalID) {
			continue
		}
		route := HTTPAPIRoute{LogicalID: id}
		key := stringProp(r.Properties, "RouteKey")
		if key == "$default" {
			route.Method, route.Path = "ANY", key
		} else {
			method, path, found := strings.Cut(key, " ")
			if !found || method == "" || !strings.HasPrefix(path, "/") {
				return HTTPAPI{}, false, fmt.Errorf("%w: route %s: RouteKey %q is not \"METHOD /path\" or $default", ErrInvalidTemplate, id, key)
			}
			route.Method, route.Path = strings.ToUpper(method), path
		}
		if route.Function, err = t.routeFunction(id, r); err != nil {
			return HTTPAPI{}, false, err
		}
		if route.Authorizer, err = t.routeAuthorizer(id, r); err != nil {
			return HTTPAPI{}, false, err
		}
		api.Routes = append(api.Routes, route)
	}
	slices.SortFunc(api.Routes, func(a, b HTTPAPIRoute) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(a.Method, b.Method)
	})
	return api, true, nil
}

// routeAuthorizer reads a route's AuthorizationType and AuthorizerId.
func (t *Template) routeAuthorizer(id string, route resource) (*Authorizer, error) {
	switch typ := stringProp(route.Properties, "AuthorizationType"); typ {
	case "", "NONE":
		return nil, nil
	case "CUSTOM":
	default:
		return nil, fmt.Errorf("%w: route %s: AuthorizationType %q (only NONE and CUSTOM are read)", ErrInvalidTemplate, id, typ)
	}
	ref, ok := refTarget(route.Properties["AuthorizerId"])
	if !ok {
		return nil, fmt.Errorf("%w: route %s: CUSTOM without an AuthorizerId !Ref", ErrInvalidTemplate, id)
	}
	r, ok := t.resources[ref]
	if !ok || r.Type != TypeGatewayAuthorizer {
		return nil, fmt.Errorf("%w: route %s: %s is not a %s", ErrInvalidTemplate, id, ref, TypeGatewayAuthorizer)
	}
	if typ := stringProp(r.Properties, "AuthorizerType"); typ != "REQUEST" {
		return nil, fmt.Errorf("%w: authorizer %s: AuthorizerType %q, want REQUEST", ErrInvalidTemplate, ref, typ)
	}
	uri := render(r.Properties["AuthorizerUri"])
	fm := functionArn.FindStringSubmatch(uri)
	if fm == nil {
		return nil, fmt.Errorf("%w: authorizer %s: no function Arn in AuthorizerUri %q", ErrInvalidTemplate, ref, uri)
	}
	a := &Authorizer{
		LogicalID:            ref,
		Function:             fm[1],
		PayloadFormatVersion: stringProp(r.Properties, "AuthorizerPayloadFormatVersion"),
		SimpleResponses:      truthy(r.Properties["EnableSimpleResponses"]),
	}
	for _, s := range listOf(r.Properties["IdentitySource"]) {
		if s != nil {
			a.IdentitySource = append(a.IdentitySource, render(s))
		}
	}
	if ttl, ok := scalarString(r.Properties["AuthorizerResultTtlInSeconds"]); ok {
		a.ResultTTL, _ = strconv.Atoi(ttl)
	}
	return a, nil
}
