// Package samtemplate reads the SAM template so tests and the local stack
// take functions, routes, environment and tables from the one place the
// deployment does.
package samtemplate

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// ErrInvalidTemplate reports a template whose shape this package cannot
// read (not a CloudFormation document, or a WebSocket API it cannot follow).
var ErrInvalidTemplate = errors.New("invalid template")

// Resource types this package reads.
const (
	TypeFunction             = "AWS::Serverless::Function"
	TypeLambdaFunction       = "AWS::Lambda::Function"
	TypeTable                = "AWS::DynamoDB::Table"
	TypeTopic                = "AWS::SNS::Topic"
	TypeGatewayAPI           = "AWS::ApiGatewayV2::Api"
	TypeGatewayRoute         = "AWS::ApiGatewayV2::Route"
	TypeGatewayIntegration   = "AWS::ApiGatewayV2::Integration"
	TypeGatewayRouteResponse = "AWS::ApiGatewayV2::RouteResponse"
	TypeGatewayStage         = "AWS::ApiGatewayV2::Stage"
	TypeGatewayDeployment    = "AWS::ApiGatewayV2::Deployment"
	TypeHTTPAPI              = "AWS::Serverless::HttpApi"
)

var (
	// integrationTarget is a route's Target as rendered: integrations/${Id}.
	integrationTarget = regexp.MustCompile(`^integrations/\$\{([A-Za-z0-9]+)\}$`)
	// functionArn finds the function in a Lambda integration's URI.
	functionArn = regexp.MustCompile(`\$\{([A-Za-z0-9]+)\.Arn\}`)
)

// Template is a loaded SAM template.
type Template struct {
	root      map[string]any
	resources map[string]resource
	// globalFunction is Globals.Function: defaults every function inherits.
	globalFunction map[string]any
	// globalHTTPAPI is Globals.HttpApi, likewise for every HttpApi.
	globalHTTPAPI map[string]any
	// conditions are the Conditions' values of a Resolved template.
	conditions map[string]bool
}

type resource struct {
	Type string
	// Condition names the condition the resource exists under, if any.
	Condition  string
	Properties map[string]any
	Metadata   map[string]any
	// DependsOn lists the logical ids the resource waits for.
	DependsOn []string
}

// Load reads and parses the template at path.
func Load(path string) (*Template, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("samtemplate: %w", err)
	}
	t, err := Parse(src)
	if err != nil {
		return nil, fmt.Errorf("samtemplate: %s: %w", path, err)
	}
	return t, nil
}

// Parse parses a template from its YAML (or JSON) text.
func Parse(src []byte) (*Template, error) {
	doc, err := decodeYAML(src)
	if err != nil {
		return nil, err
	}
	root, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: top level is not a mapping", ErrInvalidTemplate)
	}
	return fromRoot(root)
}

func fromRoot(root map[string]any) (*Template, error) {
	rawResources, ok := root["Resources"].(map[string]any)
	if !ok || len(rawResources) == 0 {
		return nil, fmt.Errorf("%w: no Resources", ErrInvalidTemplate)
	}
	t := &Template{root: root, resources: make(map[string]resource, len(rawResources))}
	for id, raw := range rawResources {
		m, ok := raw.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%w: resource %s is not a mapping", ErrInvalidTemplate, id)
		}
		typ, ok := m["Type"].(string)
		if !ok || typ == "" {
			return nil, fmt.Errorf("%w: resource %s has no Type", ErrInvalidTemplate, id)
		}
		props, _ := m["Properties"].(map[string]any)
		meta, _ := m["Metadata"].(map[string]any)
		r := resource{Type: typ, Properties: props, Metadata: meta}
		r.Condition, _ = m["Condition"].(string)
		if dep, ok := m["DependsOn"]; ok {
			for _, d := range listOf(dep) {
				name, ok := d.(string)
				if !ok {
					return nil, fmt.Errorf("%w: resource %s: DependsOn %s is not a logical id", ErrInvalidTemplate, id, render(d))
				}
				r.DependsOn = append(r.DependsOn, name)
			}
		}
		t.resources[id] = r
	}
	if globals, ok := root["Globals"].(map[string]any); ok {
		t.globalFunction, _ = globals["Function"].(map[string]any)
		t.globalHTTPAPI, _ = globals["HttpApi"].(map[string]any)
	}
	return t, nil
}

// Transforms lists the template's Transform entries.
func (t *Template) Transforms() []string {
	switch x := t.root["Transform"].(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, v := range x {
			if s, ok := v.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// ResourceType returns the Type of the resource with logical id id.
func (t *Template) ResourceType(id string) (string, bool) {
	r, ok := t.resources[id]
	return r.Type, ok
}

// Parameter is one template parameter.
type Parameter struct {
	Type string
	// Default is the default value in Resolve's syntax ("" when there is
	// none; HasDefault tells the two apart).
	Default    string
	HasDefault bool
}

// Parameters returns the template's parameters by name.
func (t *Template) Parameters() map[string]Parameter {
	raw, _ := t.root["Parameters"].(map[string]any)
	out := make(map[string]Parameter, len(raw))
	for name, v := range raw {
		m, _ := v.(map[string]any)
		p := Parameter{}
		p.Type, _ = m["Type"].(string)
		if d, ok := m["Default"]; ok {
			p.Default, p.HasDefault = render(d), true
		}
		out[name] = p
	}
	return out
}

// HTTPRoute is one route of an HttpApi event.
type HTTPRoute struct {
	// Method is upper case; ANY matches every method no other route takes.
	Method string
	// Path is the API Gateway path, parameters in braces:
	// /rooms/{room}/items/{id}. An event with neither method nor path is
	// SAM's catch-all: Method ANY, Path $default.
	Path string
	// API is the logical id of the AWS::Serverless::HttpApi in ApiId, empty
	// for SAM's implicit API.
	API string
	// Event is the event's name under the function's Events.
	Event string
}

// Function is one AWS::Serverless::Function with Globals.Function applied
// (maps merged, lists appended, scalars overridden, as SAM does).
type Function struct {
	LogicalID     string
	CodeURI       string
	Runtime       string
	Handler       string
	Architectures []string
	// BuildMethod is Metadata.BuildMethod (makefile: sam build runs make build-<LogicalId>).
	BuildMethod string
	// FunctionName is the name set in the template, rendered as Resolve
	// takes it; empty when CloudFormation generates one.
	FunctionName string
	// Timeout is the function's Timeout in seconds, Globals included; 0
	// when unset (Lambda's default is 3).
	Timeout int
	// Environment holds Environment.Variables, each rendered in Resolve's
	// syntax: literals as they are, !Ref X as "${X}", !GetAtt X.Arn as
	// "${X.Arn}", !Sub strings as written.
	Environment map[string]string
	// HTTPRoutes are the HttpApi events, ordered by path then method.
	HTTPRoutes []HTTPRoute
	// SNSTopics are the SNS events' topics: the logical id when the topic is
	// a !Ref (the usual case), otherwise the rendered value.
	SNSTopics []string
	// Schedules are the Schedule events' expressions, rendered as
	// Environment is.
	Schedules []string
}

// Functions returns every AWS::Serverless::Function by logical id.
func (t *Template) Functions() map[string]Function {
	out := make(map[string]Function)
	for id, r := range t.resources {
		if r.Type != TypeFunction {
			continue
		}
		props, _ := mergeGlobals(t.globalFunction, r.Properties).(map[string]any)
		f := Function{
			LogicalID:   id,
			CodeURI:     stringProp(props, "CodeUri"),
			Runtime:     stringProp(props, "Runtime"),
			Handler:     stringProp(props, "Handler"),
			BuildMethod: stringProp(r.Metadata, "BuildMethod"),
			Environment: map[string]string{},
		}
		if name, ok := props["FunctionName"]; ok {
			f.FunctionName = render(name)
		}
		if timeout, ok := scalarString(props["Timeout"]); ok {
			f.Timeout, _ = strconv.Atoi(timeout)
		}
		if archs, ok := props["Architectures"].([]any); ok {
			for _, a := range archs {
				f.Architectures = append(f.Architectures, render(a))
			}
		}
		if env, ok := props["Environment"].(map[string]any); ok {
			vars, _ := env["Variables"].(map[string]any)
			for k, v := range vars {
				f.Environment[k] = render(v)
			}
		}
		events, _ := props["Events"].(map[string]any)
		for name, raw := range events {
			ev, _ := raw.(map[string]any)
			evProps, _ := ev["Properties"].(map[string]any)
			switch ev["Type"] {
			case "HttpApi":
				route := HTTPRoute{
					Method: strings.ToUpper(stringProp(evProps, "Method")),
					Path:   stringProp(evProps, "Path"),
					Event:  name,
				}
				route.API, _ = refTarget(evProps["ApiId"])
				if route.Method == "" && route.Path == "" {
					route.Method, route.Path = "ANY", "$default"
				}
				f.HTTPRoutes = append(f.HTTPRoutes, route)
			case "SNS":
				topic, ok := refTarget(evProps["Topic"])
				if !ok {
					topic = render(evProps["Topic"])
				}
				f.SNSTopics = append(f.SNSTopics, topic)
			case "Schedule":
				f.Schedules = append(f.Schedules, render(evProps["Schedule"]))
			}
		}
		slices.SortFunc(f.HTTPRoutes, func(a, b HTTPRoute) int {
			return cmp.Or(cmp.Compare(a.Path, b.Path), cmp.Compare(a.Method, b.Method))
		})
		slices.Sort(f.SNSTopics)
		slices.Sort(f.Schedules)
		out[id] = f
	}
	return out
}

// Topics returns the logical ids of the AWS::SNS::Topic resources, sorted.
func (t *Template) Topics() []string { return t.idsOf(TypeTopic) }

// idsOf returns the logical ids of the resources of type typ, sorted.
func (t *Template) idsOf(typ string) []string {
	var out []string
	for id, r := range t.resources {
		if r.Type == typ {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// TypeSecret is a Secrets Manager secret.
const TypeSecret = "AWS::SecretsManager::Secret"

// Secrets returns the logical ids of the AWS::SecretsManager::Secret
// resources, sorted.
func (t *Template) Secrets() []string { return t.idsOf(TypeSecret) }

// KeyAttribute is one attribute of a table's primary key.
type KeyAttribute struct {
	Name string
	// Type is the attribute's scalar type: S, N or B.
	Type string
}

// Table is one AWS::DynamoDB::Table.
type Table struct {
	LogicalID string
	// TableName is the rendered TableName, empty when CloudFormation names
	// the table.
	TableName string
	HashKey   KeyAttribute
	// RangeKey is zero for a table without a sort key.
	RangeKey    KeyAttribute
	BillingMode string
	// TTLAttribute is the enabled time-to-live attribute, if any.
	TTLAttribute        string
	PointInTimeRecovery bool
	SSE                 bool
	// KeySchemaSize is how many entries KeySchema has; a schema with more
	// than a hash and a range key is invalid.
	KeySchemaSize int
	Indexes       []Index
}

// Index is one of a table's GlobalSecondaryIndexes.
type Index struct {
	Name              string
	HashKey, RangeKey KeyAttribute
	ProjectionType    string
	NonKeyAttributes  []string
}

// Tables returns every AWS::DynamoDB::Table by logical id.
func (t *Template) Tables() map[string]Table {
	out := make(map[string]Table)
	for id, r := range t.resources {
		if r.Type != TypeTable {
			continue
		}
		p := r.Properties
		tb := Table{
			LogicalID:   id,
			BillingMode: stringProp(p, "BillingMode"),
		}
		if _, ok := p["TableName"]; ok {
			tb.TableName = render(p["TableName"])
		}
		types := map[string]string{}
		defs, _ := p["AttributeDefinitions"].([]any)
		for _, d := range defs {
			m, _ := d.(map[string]any)
			types[stringProp(m, "AttributeName")] = stringProp(m, "AttributeType")
		}
		keys := func(schema []any) (hash, rng KeyAttribute) {
			for _, k := range schema {
				m, _ := k.(map[string]any)
				name := stringProp(m, "AttributeName")
				attr := KeyAttribute{Name: name, Type: types[name]}
				switch stringProp(m, "KeyType") {
				case "HASH":
					hash = attr
				case "RANGE":
					rng = attr
				}
			}
			return hash, rng
		}
		schema, _ := p["KeySchema"].([]any)
		tb.KeySchemaSize = len(schema)
		tb.HashKey, tb.RangeKey = keys(schema)
		gsis, _ := p["GlobalSecondaryIndexes"].([]any)
		for _, g := range gsis {
			m, _ := g.(map[string]any)
			ix := Index{Name: stringProp(m, "IndexName")}
			schema, _ := m["KeySchema"].([]any)
			ix.HashKey, ix.RangeKey = keys(schema)
			proj, _ := m["Projection"].(map[string]any)
			ix.ProjectionType = stringProp(proj, "ProjectionType")
			attrs, _ := proj["NonKeyAttributes"].([]any)
			for _, a := range attrs {
				ix.NonKeyAttributes = append(ix.NonKeyAttributes, render(a))
			}
			tb.Indexes = append(tb.Indexes, ix)
		}
		if ttl, ok := p["TimeToLiveSpecification"].(map[string]any); ok && truthy(ttl["Enabled"]) {
			tb.TTLAttribute = stringProp(ttl, "AttributeName")
		}
		if pitr, ok := p["PointInTimeRecoverySpecification"].(map[string]any); ok {
			tb.PointInTimeRecovery = truthy(pitr["PointInTimeRecoveryEnabled"])
		}
		if sse, ok := p["SSESpecification"].(map[string]any); ok {
			tb.SSE = truthy(sse["SSEEnabled"])
		}
		out[id] = tb
	}
	return out
}

// WebSocketRoute is one route of the WebSocket API.
type WebSocketRoute struct {
	// LogicalID is the AWS::ApiGatewayV2::Route's logical id.
	LogicalID string
	Key       string
	// Function is the logical id of the function the route's AWS_PROXY
	// integration invokes.
	Function                         string
	RouteResponseSelectionExpression string
	// RouteResponse tells whether an AWS::ApiGatewayV2::RouteResponse exists
	// for the route: with it the function's response body is sent back to
	// the caller (a two-way route).
	RouteResponse bool
	// Authorizer is nil for AuthorizationType NONE (a template as written,
	// whose Fn::If is not resolved, reads as an error; use Resolved).
	Authorizer *Authorizer
}

// WebSocketAPI is the template's WEBSOCKET AWS::ApiGatewayV2::Api.
type WebSocketAPI struct {
	LogicalID                string
	RouteSelectionExpression string
	// Routes by route key ($connect, $disconnect, $default, custom keys).
	Routes map[string]WebSocketRoute
}

// WebSocketID returns the logical id of the template's one WebSocket API.
func (t *Template) WebSocketID() (string, error) {
	var apis []string
	for id, r := range t.resources {
		if r.Type == TypeGatewayAPI && stringProp(r.Properties, "ProtocolType") == "WEBSOCKET" {
			apis = append(apis, id)
		}
	}
	if len(apis) != 1 {
		slices.Sort(apis)
		return "", fmt.Errorf("%w: want one WEBSOCKET %s, have %d %v", ErrInvalidTemplate, TypeGatewayAPI, len(apis), apis)
	}
	return apis[0], nil
}

// WebSocket returns the template's one WebSocket API with its routes
// followed through their integrations to the functions they invoke.
func (t *Template) WebSocket() (WebSocketAPI, error) {
	id, err := t.WebSocketID()
	if err != nil {
		return WebSocketAPI{}, err
	}
	apis := []string{id}
	api := WebSocketAPI{
		LogicalID:                apis[0],
		RouteSelectionExpression: stringProp(t.resources[apis[0]].Properties, "RouteSelectionExpression"),
		Routes:                   map[string]WebSocketRoute{},
	}
	withResponse := map[string]bool{}
	for _, r := range t.resources {
		if r.Type != TypeGatewayRouteResponse || !t.refersTo(r.Properties["ApiId"], api.LogicalID) {
			continue
		}
		if route, ok := refTarget(r.Properties["RouteId"]); ok {
			withResponse[route] = true
		}
	}
	for _, id := range slices.Sorted(maps.Keys(t.resources)) {
		r := t.resources[id]
		if r.Type != TypeGatewayRoute || !t.refersTo(r.Properties["ApiId"], api.LogicalID) {
			continue
		}
		key := stringProp(r.Properties, "RouteKey")
		if _, dup := api.Routes[key]; dup {
			return WebSocketAPI{}, fmt.Errorf("%w: route key %q twice", ErrInvalidTemplate, key)
		}
		fn, err := t.routeFunction(id, r)
		if err != nil {
			return WebSocketAPI{}, err
		}
		authorizer, err := t.routeAuthorizer(id, r)
		if err != nil {
			return WebSocketAPI{}, err
		}
		api.Routes[key] = WebSocketRoute{
			Authorizer:                       authorizer,
			LogicalID:                        id,
			Key:                              key,
			Function:                         fn,
			RouteResponseSelectionExpression: stringProp(r.Properties, "RouteResponseSelectionExpression"),
			RouteResponse:                    withResponse[id],
		}
	}
	return api, nil
}

// routeFunction follows a route's Target to its integration and the
// integration's URI to the function.
func (t *Template) routeFunction(id string, route resource) (string, error) {
	target := render(route.Properties["Target"])
	m := integrationTarget.FindStringSubmatch(target)
	if m == nil {
		return "", fmt.Errorf("%w: route %s: Target %q is not integrations/<integration>", ErrInvalidTemplate, id, target)
	}
	integration, ok := t.resources[m[1]]
	if !ok || integration.Type != TypeGatewayIntegration {
		return "", fmt.Errorf("%w: route %s: %s is not a %s", ErrInvalidTemplate, id, m[1], TypeGatewayIntegration)
	}
	if typ := stringProp(integration.Properties, "IntegrationType"); typ != "AWS_PROXY" {
		return "", fmt.Errorf("%w: integration %s: IntegrationType %q, want AWS_PROXY", ErrInvalidTemplate, m[1], typ)
	}
	uri := render(integration.Properties["IntegrationUri"])
	fm := functionArn.FindStringSubmatch(uri)
	if fm == nil {
		return "", fmt.Errorf("%w: integration %s: no function Arn in IntegrationUri %q", ErrInvalidTemplate, m[1], uri)
	}
	if typ, _ := t.ResourceType(fm[1]); typ != TypeFunction && typ != TypeLambdaFunction {
		return "", fmt.Errorf("%w: integration %s: %s is not a function", ErrInvalidTemplate, m[1], fm[1])
	}
	return fm[1], nil
}

// isHTTPAPI tells whether r is an HTTP API: SAM's, or API Gateway's with
// ProtocolType HTTP.
func (r resource) isHTTPAPI() bool {
	return r.Type == TypeHTTPAPI || r.Type == TypeGatewayAPI && stringProp(r.Properties, "ProtocolType") == "HTTP"
}

// refersTo tells whether v is a !Ref to the resource id.
func (t *Template) refersTo(v any, id string) bool {
	target, ok := refTarget(v)
	return ok && target == id
}

// refTarget returns X of {"Ref": X}.
func refTarget(v any) (string, bool) {
	fn, arg, ok := intrinsic(v)
	if !ok || fn != "Ref" {
		return "", false
	}
	s, ok := arg.(string)
	return s, ok
}

// listOf returns v as a list: itself if it is one, else a list of it
// (CloudFormation takes one item where it takes a list of them).
func listOf(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return []any{v}
}

// stringProp renders m[key], "" when absent.
func stringProp(m map[string]any, key string) string {
	v, ok := m[key]
	if !ok || v == nil {
		return ""
	}
	return render(v)
}

func truthy(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case string:
		return strings.EqualFold(x, "true")
	}
	return false
}

// mergeGlobals applies SAM's Globals rules: maps merge key by key, lists
// are appended to the global list, anything else in the function wins.
func mergeGlobals(global, local any) any {
	switch g := global.(type) {
	case map[string]any:
		l, ok := local.(map[string]any)
		if !ok {
			if local == nil {
				return g
			}
			return local
		}
		out := make(map[string]any, len(g)+len(l))
		maps.Copy(out, g)
		for k, lv := range l {
			if gv, ok := g[k]; ok {
				out[k] = mergeGlobals(gv, lv)
			} else {
				out[k] = lv
			}
		}
		return out
	case []any:
		if l, ok := local.([]any); ok {
			return append(slices.Clone(g), l...)
		}
	}
	if local == nil {
		return global
	}
	return local
}
