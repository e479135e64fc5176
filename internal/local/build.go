package local

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"github.com/pushgate/pushgate/internal/auth"
	"github.com/pushgate/pushgate/internal/authorizer"
	"github.com/pushgate/pushgate/internal/broadcast"
	"github.com/pushgate/pushgate/internal/config"
	"github.com/pushgate/pushgate/internal/domain"
	"github.com/pushgate/pushgate/internal/dynamo"
	"github.com/pushgate/pushgate/internal/fanout"
	"github.com/pushgate/pushgate/internal/httpapi"
	"github.com/pushgate/pushgate/internal/lambdainvoke"
	"github.com/pushgate/pushgate/internal/local/asyncinvoke"
	"github.com/pushgate/pushgate/internal/local/httpgateway"
	"github.com/pushgate/pushgate/internal/local/memstore"
	"github.com/pushgate/pushgate/internal/local/mgmtserver"
	"github.com/pushgate/pushgate/internal/local/samtemplate"
	"github.com/pushgate/pushgate/internal/local/snslocal"
	"github.com/pushgate/pushgate/internal/local/wsgateway"
	"github.com/pushgate/pushgate/internal/mgmtapi"
	"github.com/pushgate/pushgate/internal/outbox"
	"github.com/pushgate/pushgate/internal/snspub"
	"github.com/pushgate/pushgate/internal/wsapi"
)

// function is one template function wired to its handler.
type function struct {
	name string
	def  samtemplate.Function
	cfg  config.Config
	env  map[string]string
	log  *slog.Logger
	// handler is what the function's main passes to lambda.Start; the
	// gateways call it through the typed view that fits its kind.
	handler any
	ws      wsgateway.Handler
	http    httpgateway.Handler
	sns     func(context.Context, events.SNSEvent) error
	// invoke takes a JSON payload, as an asynchronous invocation brings.
	invoke func(context.Context, json.RawMessage) error
	// authorize answers an authorizer event (AuthorizerFunction).
	authorize func(context.Context, json.RawMessage) (any, error)
	// schedule takes the scheduled events of the resolved schedules.
	schedule  func(context.Context, events.EventBridgeEvent) error
	schedules []string
	// deployedName is the function's name (its !Ref).
	deployedName string
}

// timeout is the function's Timeout, as Lambda enforces it.
func (fn *function) timeout() time.Duration {
	return time.Duration(fn.def.Timeout) * time.Second
}

// invokers run the functions' handlers by name, as Lambda's asynchronous
// Invoke does; shares of big deliveries go through them.
type invokers struct {
	queues map[string]*asyncinvoke.Queue[json.RawMessage]
}

// of returns the Invoker of the function named name; the name is looked up
// when invoked, so functions can be wired before their queues exist.
func (iv *invokers) of(name string) broadcast.Invoker { return invokerOf{iv, name} }

func (iv *invokers) close() {
	for _, q := range iv.queues {
		q.Close()
	}
}

type invokerOf struct {
	iv   *invokers
	name string
}

func (i invokerOf) Invoke(ctx context.Context, payload []byte) error {
	q, ok := i.iv.queues[i.name]
	if !ok {
		return fmt.Errorf("local: no function named %s takes asynchronous invocations", i.name)
	}
	if len(payload) > lambdainvoke.MaxPayloadBytes {
		return fmt.Errorf("local: %s: payload of %d bytes, the limit is %d", i.name, len(payload), lambdainvoke.MaxPayloadBytes)
	}
	return q.Invoke(ctx, "share", payload)
}

// snsPath is where the HTTP port receives SNS notifications, one path per
// subscribed function.
const snsPath = "/_local/sns/"

// build wires every template function to the handler its Lambda runs, with
// the environment the template gives it, and the gateways to them as the
// template routes.
func (s *Stack) build(ctx context.Context, written *samtemplate.Template) error {
	for _, name := range config.Functions() {
		if _, ok := written.Functions()[name]; !ok {
			return fmt.Errorf("local: the template has no %s", name)
		}
	}
	for name := range written.Functions() {
		if config.Required(name) == nil {
			return fmt.Errorf("local: template function %s has no local wiring", name)
		}
	}
	wsID, err := written.WebSocketID()
	if err != nil {
		return fmt.Errorf("local: %w", err)
	}
	apiID := "local" + domain.NewID()[:5]
	values, err := s.values(ctx, written, wsID, apiID)
	if err != nil {
		return err
	}
	// The template as CloudFormation would deploy it with these
	// parameters: AuthMode none leaves the authorizer out, and so on.
	tmpl, err := written.Resolved(values)
	if err != nil {
		return fmt.Errorf("local: %w", err)
	}
	defs := tmpl.Functions()
	wsAPI, err := tmpl.WebSocket()
	if err != nil {
		return fmt.Errorf("local: %w", err)
	}
	s.functions = map[string]*function{}
	for name, def := range defs {
		fn := &function{name: name, def: def, env: map[string]string{}, log: s.opt.Log.With("function", name), deployedName: values[name]}
		for k, v := range def.Environment {
			r, err := samtemplate.Resolve(v, values)
			if err != nil {
				return fmt.Errorf("local: %s: %s: %w", name, k, err)
			}
			fn.env[k] = r
		}
		for _, expr := range def.Schedules {
			r, err := samtemplate.Resolve(expr, values)
			if err != nil {
				return fmt.Errorf("local: %s: schedule: %w", name, err)
			}
			fn.schedules = append(fn.schedules, r)
		}
		// Deployed, this names the stage's AWS endpoint; here the stage is
		// ours.
		if _, ok := fn.env[config.EnvManagementEndpoint]; ok {
			fn.env[config.EnvManagementEndpoint] = cmp.Or(s.opt.ManagementEndpoint, s.ManagementURL())
		}
		if fn.cfg, err = config.Load(name, func(k string) string { return fn.env[k] }); err != nil {
			return fmt.Errorf("local: %w", err)
		}
		s.functions[name] = fn
	}
	conns, items, err := s.stores(ctx)
	if err != nil {
		return err
	}
	iv := &invokers{queues: map[string]*asyncinvoke.Queue[json.RawMessage]{}}
	s.closeInvokers = iv.close
	fanFor := func(fn *function) (*fanout.Fanout, error) {
		poster, err := mgmtapi.New(awsConfig(), fn.cfg.ManagementEndpoint, fn.cfg.Fanout.Workers)
		if err != nil {
			return nil, fmt.Errorf("local: %s: %w", fn.name, err)
		}
		fan := fanout.New(poster, conns(fn), fn.cfg.Fanout)
		return fan.WithDispatcher(broadcast.Shares(iv.of(fn.cfg.FanoutFunction))).WithCloser(poster), nil
	}

	// The same constructors as cmd/<function>/main.go, on local stores.
	var publisher func(fn *function) (domain.Publisher, error)
	for _, fn := range s.functions {
		switch fn.name {
		case config.ConnectionFunction:
			s.conns = conns(fn)
			fan, err := fanFor(fn)
			if err != nil {
				return err
			}
			set := wsapi.Settings{TTL: fn.cfg.ConnectionTTL, Gate: fn.cfg.Gate(), RelayLimit: fn.cfg.RelayLimit}
			h := wsapi.New(conns(fn), fan, set, fn.log)
			fn.handler, fn.ws = h.Handle, h.Handle
			config.WarnIfOpen(fn.log, fn.cfg)
		case config.BroadcastFunction:
			fan, err := fanFor(fn)
			if err != nil {
				return err
			}
			store := conns(fn)
			receipts, _ := store.(domain.Receipts)
			h := broadcast.New(store, fan, broadcast.Settings{Topic: fn.cfg.TopicARN, Receipts: receipts}, fn.log)
			fn.handler, fn.sns, fn.invoke = h.Invoke, h.Handle, h.Invoke
		case config.ItemsReadFunction:
			s.items = items(fn)
			h := httpapi.NewReader(items(fn), fn.cfg.ReadGate(), fn.log)
			fn.handler, fn.http = h.Handle, h.Handle
		case config.AuthorizerFunction:
			// The same verifier as cmd/authorizer, with the development
			// key in place of the Secrets Manager secret.
			v, err := auth.ForMode(s.ctx, auth.ModeConfig{
				Mode: fn.cfg.AuthMode, Issuer: fn.cfg.Issuer, Audience: fn.cfg.Audience, JWKSURL: fn.cfg.JWKSURL,
				Fetch: func(context.Context) ([][]byte, error) { return [][]byte{s.signingKey}, nil },
			})
			if err != nil {
				return fmt.Errorf("local: %s: %w", fn.name, err)
			}
			h := authorizer.New(v, fn.cfg.AllowedOrigins, fn.log)
			fn.handler, fn.authorize = h.Invoke, h.Invoke
			s.tokens = tokenSpec{issuer: fn.cfg.Issuer, audience: fn.cfg.Audience, mode: fn.cfg.AuthMode}
		}
	}
	for _, fn := range s.functions {
		if fn.invoke != nil {
			iv.queues[fn.deployedName] = asyncinvoke.New(fn.deployedName, fn.invoke, fn.timeout(), fn.log)
		}
	}
	if publisher, err = s.publishers(ctx, values); err != nil {
		return err
	}
	for _, fn := range s.functions {
		switch fn.name {
		case config.ItemsWriteFunction:
			pub, err := publisher(fn)
			if err != nil {
				return err
			}
			h := httpapi.NewWriter(items(fn), pub, fn.cfg.Gate(), fn.log, httpapi.WithHistoryTTL(fn.cfg.HistoryTTL))
			fn.handler, fn.http = h.Handle, h.Handle
		case config.OutboxFunction:
			pub, err := publisher(fn)
			if err != nil {
				return err
			}
			sw := outbox.New(items(fn), pub, fn.cfg.OutboxGrace, fn.log)
			fn.handler, fn.schedule = sw.Handle, sw.Handle
		}
	}
	return s.gateways(tmpl, values, wsAPI, apiID)
}

// values resolves the template's references: parameters take their
// defaults, tables and topics get local names, pseudo parameters fixed ones.
func (s *Stack) values(ctx context.Context, tmpl *samtemplate.Template, wsAPIID, apiID string) (map[string]string, error) {
	v := map[string]string{
		"AWS::Region":    Region,
		"AWS::AccountId": Account,
		"AWS::StackName": StackName,
		"AWS::Partition": "aws",
		"AWS::URLSuffix": "amazonaws.com",
		wsAPIID:          apiID,
	}
	params := tmpl.Parameters()
	for name, p := range params {
		if p.HasDefault {
			v[name] = p.Default
		}
	}
	for name, value := range s.opt.Parameters {
		if _, ok := params[name]; !ok {
			return nil, fmt.Errorf("local: the template has no parameter %s", name)
		}
		v[name] = value
	}
	for id, t := range tmpl.Tables() {
		v[id] = StackName + "-" + id
		if t.TableName != "" {
			name, err := samtemplate.Resolve(t.TableName, v)
			if err != nil {
				return nil, fmt.Errorf("local: table %s: %w", id, err)
			}
			v[id] = name
		}
	}
	// A function's !Ref is its name: the one the template gives it, or
	// one CloudFormation would make up.
	for id, fn := range tmpl.Functions() {
		v[id] = StackName + "-" + id
		if fn.FunctionName != "" {
			name, err := samtemplate.Resolve(fn.FunctionName, v)
			if err != nil {
				return nil, fmt.Errorf("local: function %s: FunctionName: %w", id, err)
			}
			v[id] = name
		}
		v[id+".Arn"] = fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s", Region, Account, v[id])
	}
	for _, id := range tmpl.Secrets() {
		v[id] = fmt.Sprintf("arn:aws:secretsmanager:%s:%s:secret:%s-%s-AbCdEf", Region, Account, StackName, id)
	}
	for _, id := range tmpl.Topics() {
		arn := fmt.Sprintf("arn:aws:sns:%s:%s:%s-%s", Region, Account, StackName, id)
		if s.opt.SNSEndpoint != "" {
			out, err := snsClient(s.opt.SNSEndpoint).CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(StackName + "-" + id)})
			if err != nil {
				return nil, fmt.Errorf("local: create topic %s at %s: %w", id, s.opt.SNSEndpoint, err)
			}
			arn = aws.ToString(out.TopicArn)
		}
		v[id] = arn
	}
	return v, nil
}

// stores returns each function's connection and item store: in memory,
// shared by table name as the functions share tables, or DynamoDB.
func (s *Stack) stores(ctx context.Context) (func(*function) domain.ConnectionStore, func(*function) domain.ItemStore, error) {
	if ep := s.opt.DynamoDBEndpoint; ep != "" {
		client := dynamoClient(ep)
		var connTables, itemTables []string
		for _, fn := range s.functions {
			if t := fn.cfg.ConnectionsTable; t != "" && !slices.Contains(connTables, t) {
				connTables = append(connTables, t)
			}
			if t := fn.cfg.ItemsTable; t != "" && !slices.Contains(itemTables, t) {
				itemTables = append(itemTables, t)
			}
		}
		if len(connTables) != 1 || len(itemTables) != 1 {
			return nil, nil, fmt.Errorf("local: want one connections and one items table, the template gives %v and %v", connTables, itemTables)
		}
		tables := &healingTables{api: client, endpoint: ep, conns: connTables[0], items: itemTables[0], log: s.opt.Log}
		if err := tables.create(ctx); err != nil {
			return nil, nil, fmt.Errorf("local: tables at %s: %w", ep, err)
		}
		return func(fn *function) domain.ConnectionStore {
				return dynamo.NewConnections(tables, fn.cfg.ConnectionsTable)
			},
			func(fn *function) domain.ItemStore { return dynamo.NewItems(tables, fn.cfg.ItemsTable) }, nil
	}
	connStores := map[string]*memstore.Connections{}
	itemStores := map[string]*memstore.Items{}
	for _, fn := range s.functions {
		if t := fn.cfg.ConnectionsTable; t != "" && connStores[t] == nil {
			connStores[t] = memstore.NewConnections()
		}
		if t := fn.cfg.ItemsTable; t != "" && itemStores[t] == nil {
			itemStores[t] = memstore.NewItems()
		}
	}
	return func(fn *function) domain.ConnectionStore { return connStores[fn.cfg.ConnectionsTable] },
		func(fn *function) domain.ItemStore { return itemStores[fn.cfg.ItemsTable] }, nil
}

// publishers returns, per publishing function, its Publisher: through SNS
// with an HTTP subscription per subscribed function, or in-process, one
// asynchronous delivery per subscribed function as SNS makes.
func (s *Stack) publishers(ctx context.Context, values map[string]string) (func(*function) (domain.Publisher, error), error) {
	subscribers := map[string][]*function{} // by topic ARN
	for _, fn := range s.functions {
		for _, topic := range fn.def.SNSTopics {
			if fn.sns == nil {
				return nil, fmt.Errorf("local: %s is subscribed to %s but takes no SNS events", fn.name, topic)
			}
			arn, ok := values[topic]
			if !ok {
				return nil, fmt.Errorf("local: %s is subscribed to %s, which is no topic of the template", fn.name, topic)
			}
			subscribers[arn] = append(subscribers[arn], fn)
		}
	}
	if ep := s.opt.SNSEndpoint; ep != "" {
		client := snsClient(ep)
		links := map[string]*topicLink{}
		for arn, fns := range subscribers {
			// A stack that did not close cleanly left its subscription;
			// SNS on moto fails every publish to a dead endpoint.
			if err := unsubscribeLocal(ctx, client, arn); err != nil {
				return nil, err
			}
			link := &topicLink{client: client, arn: arn, log: s.opt.Log}
			for _, fn := range fns {
				link.endpoints = append(link.endpoints, s.HTTPURL()+snsPath+fn.name)
			}
			if err := link.subscribe(ctx); err != nil {
				return nil, fmt.Errorf("local: %w", err)
			}
			s.unsubscribe = append(s.unsubscribe, link.unsubscribe)
			links[arn] = link
		}
		return func(fn *function) (domain.Publisher, error) {
			link, ok := links[fn.cfg.TopicARN]
			if !ok {
				return nil, fmt.Errorf("local: %s publishes to %s, which no function subscribes to", fn.name, fn.cfg.TopicARN)
			}
			return snspub.New(link, fn.cfg.TopicARN), nil
		}, nil
	}
	directs := map[string]fanoutPublisher{} // by topic ARN
	for arn, fns := range subscribers {
		for _, fn := range fns {
			directs[arn] = append(directs[arn], snslocal.NewDirect(arn, fn.deployedName, fn.sns, fn.timeout(), fn.log))
		}
	}
	s.closeSNS = func() {
		for _, ds := range directs {
			for _, d := range ds {
				d.Close()
			}
		}
	}
	return func(fn *function) (domain.Publisher, error) {
		ds, ok := directs[fn.cfg.TopicARN]
		if !ok {
			return nil, fmt.Errorf("local: %s publishes to %s, which no function subscribes to", fn.name, fn.cfg.TopicARN)
		}
		return ds, nil
	}, nil
}

// unsubscribeLocal removes the topic's subscriptions to local stacks (the
// endpoints under snsPath) that no longer answer; a stack still running
// keeps its own.
func unsubscribeLocal(ctx context.Context, client *sns.Client, topicARN string) error {
	p := sns.NewListSubscriptionsByTopicPaginator(client, &sns.ListSubscriptionsByTopicInput{TopicArn: aws.String(topicARN)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("local: list subscriptions of %s: %w", topicARN, err)
		}
		for _, sub := range page.Subscriptions {
			endpoint := aws.ToString(sub.Endpoint)
			if !strings.Contains(endpoint, snsPath) || answers(ctx, endpoint) {
				continue
			}
			if _, err := client.Unsubscribe(ctx, &sns.UnsubscribeInput{SubscriptionArn: sub.SubscriptionArn}); err != nil {
				return fmt.Errorf("local: remove stale subscription %s: %w", aws.ToString(sub.SubscriptionArn), err)
			}
		}
	}
	return nil
}

// answers reports whether something listens at the endpoint's address.
func answers(ctx context.Context, endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return false
	}
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// fanoutPublisher publishes to every subscription of a topic.
type fanoutPublisher []*snslocal.Direct

func (p fanoutPublisher) Publish(ctx context.Context, e domain.Event) error {
	for _, d := range p {
		if err := d.Publish(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

// gateways builds the WebSocket and HTTP gateways from the template's
// routes and the servers that carry them.
func (s *Stack) gateways(tmpl *samtemplate.Template, values map[string]string, wsAPI samtemplate.WebSocketAPI, apiID string) error {
	routes := map[string]wsgateway.Route{}
	for key, r := range wsAPI.Routes {
		fn, ok := s.functions[r.Function]
		if !ok || fn.ws == nil {
			return fmt.Errorf("local: WebSocket route %s goes to %s, which takes no WebSocket events", key, r.Function)
		}
		route := wsgateway.Route{Handler: fn.ws, TwoWay: r.RouteResponse}
		if a := r.Authorizer; a != nil {
			afn, ok := s.functions[a.Function]
			if !ok || afn.authorize == nil {
				return fmt.Errorf("local: WebSocket route %s: authorizer %s runs %s, which is no authorizer", key, a.LogicalID, a.Function)
			}
			route.Authorizer = &wsgateway.Authorizer{Invoke: afn.authorize, IdentitySource: a.IdentitySource}
		}
		routes[key] = route
	}
	gw, err := wsgateway.New(wsgateway.Config{
		APIID:                    apiID,
		Stage:                    s.stage,
		DomainName:               s.wsLn.Addr().String(),
		RouteSelectionExpression: wsAPI.RouteSelectionExpression,
		Routes:                   routes,
		IdleTimeout:              s.opt.IdleTimeout,
		MaxLifetime:              s.opt.MaxLifetime,
		SendQueueBytes:           s.opt.SendQueueBytes,
		Log:                      s.opt.Log.With("component", "websocket"),
	})
	if err != nil {
		return fmt.Errorf("local: %w", err)
	}
	s.gateway = gw
	wsMux := http.NewServeMux()
	wsMux.Handle("/"+s.stage+"/@connections/", mgmtserver.Handler(gw))
	wsMux.Handle("/", gw)
	s.wsSrv = &http.Server{Handler: wsMux, ReadHeaderTimeout: 10 * time.Second}

	httpRoutes, err := s.httpRoutes(tmpl)
	if err != nil {
		return err
	}
	// The template's CorsConfiguration, so a page served elsewhere can use
	// the local API as it would the deployed one.
	cors, hasCORS, err := tmpl.ResolvedHTTPCORS(values)
	if err != nil {
		return fmt.Errorf("local: %w", err)
	}
	var httpCORS *httpgateway.CORS
	if hasCORS {
		if cors.AllowCredentials {
			return fmt.Errorf("local: the HttpApi's CORS allows credentials, which the local HTTP gateway does not emulate")
		}
		httpCORS = &httpgateway.CORS{
			AllowOrigins:  cors.AllowOrigins,
			AllowMethods:  cors.AllowMethods,
			AllowHeaders:  cors.AllowHeaders,
			ExposeHeaders: cors.ExposeHeaders,
			MaxAge:        cors.MaxAge,
		}
	}
	api, err := httpgateway.New(httpgateway.Config{
		APIID:  "localhttp" + apiID[len(apiID)-1:],
		Routes: httpRoutes,
		Local:  s.localRoutes(),
		CORS:   httpCORS,
		Log:    s.opt.Log.With("component", "http"),
	})
	if err != nil {
		return fmt.Errorf("local: %w", err)
	}
	s.httpSrv = &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second}
	return nil
}

// httpRoutes are the HTTP API's routes, from SAM HttpApi events and from
// AWS::ApiGatewayV2 routes, each with its authorizer; one authorizer
// resource is one verdict cache, as in API Gateway.
func (s *Stack) httpRoutes(tmpl *samtemplate.Template) ([]httpgateway.Route, error) {
	var routes []httpgateway.Route
	for _, fn := range s.functions {
		for _, r := range fn.def.HTTPRoutes {
			if fn.http == nil {
				return nil, fmt.Errorf("local: HTTP route %s %s goes to %s, which takes no HTTP events", r.Method, r.Path, fn.name)
			}
			routes = append(routes, httpgateway.Route{Method: r.Method, Path: r.Path, Handler: fn.http})
		}
	}
	api, ok, err := tmpl.HTTPAPI()
	if err != nil || !ok {
		return routes, err
	}
	authorizers := map[string]*httpgateway.Authorizer{}
	for _, r := range api.Routes {
		fn, ok := s.functions[r.Function]
		if !ok || fn.http == nil {
			return nil, fmt.Errorf("local: HTTP route %s %s goes to %s, which takes no HTTP events", r.Method, r.Path, r.Function)
		}
		route := httpgateway.Route{Method: r.Method, Path: r.Path, Handler: fn.http}
		if a := r.Authorizer; a != nil {
			afn, ok := s.functions[a.Function]
			if !ok || afn.authorize == nil {
				return nil, fmt.Errorf("local: HTTP route %s %s: authorizer %s runs %s, which is no authorizer", r.Method, r.Path, a.LogicalID, a.Function)
			}
			if a.PayloadFormatVersion != "2.0" || !a.SimpleResponses {
				return nil, fmt.Errorf("local: authorizer %s: only payload format 2.0 with simple responses is emulated", a.LogicalID)
			}
			if authorizers[a.LogicalID] == nil {
				authorizers[a.LogicalID] = &httpgateway.Authorizer{Name: a.LogicalID, Invoke: afn.authorize,
					IdentitySource: a.IdentitySource, ResultTTL: time.Duration(a.ResultTTL) * time.Second}
			}
			route.Authorizer = authorizers[a.LogicalID]
		}
		routes = append(routes, route)
	}
	return routes, nil
}
