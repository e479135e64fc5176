package samtemplate

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/pushgate/pushgate/internal/config"
	"github.com/pushgate/pushgate/internal/dynamo"
	"github.com/pushgate/pushgate/internal/testkit/testenv"
)

// The checks below hold template.yaml, the code and config.go to each other.

const repoRoot = "../../.."

// loadRepoTemplate is template.yaml as CloudFormation deploys it with the
// parameters' defaults (conditions evaluated, Fn::If chosen).
func loadRepoTemplate(t *testing.T) *Template {
	t.Helper()
	return resolveWith(t, loadWrittenTemplate(t), nil)
}

// loadWrittenTemplate is template.yaml as written.
func loadWrittenTemplate(t *testing.T) *Template {
	t.Helper()
	tpl, err := Load(filepath.Join(repoRoot, "template.yaml"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return tpl
}

// resolveWith resolves tpl with stand-in values and the parameters given.
func resolveWith(t *testing.T, tpl *Template, params map[string]string) *Template {
	t.Helper()
	values := standInValues(tpl)
	maps.Copy(values, params)
	out, err := tpl.Resolved(values)
	if err != nil {
		t.Fatalf("Resolved(%v): %v", params, err)
	}
	return out
}

// parseResolved parses a variant of the template and resolves it with the
// defaults, as loadRepoTemplate does.
func parseResolved(t *testing.T, src string) *Template {
	t.Helper()
	tpl, err := Parse([]byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return resolveWith(t, tpl, nil)
}

// authModes are parameter sets that choose each shape of the template's
// auth: its own key (generated or named), an identity provider, none.
var authModes = []struct {
	name   string
	params map[string]string
}{
	{"defaults", nil},
	{"own secret", map[string]string{"SigningKeySecret": "team/pushgate-key"}},
	{"oidc", map[string]string{"AuthMode": "oidc", "AuthIssuer": "https://idp.example/pool", "AuthAudience": "client-1"}},
	{"public reads", map[string]string{"ReadAccess": "public"}},
	{"none", map[string]string{"AuthMode": "none"}},
}

func TestRepoTemplateIsSAM(t *testing.T) {
	tpl := loadRepoTemplate(t)
	if got := tpl.Transforms(); !slices.Contains(got, "AWS::Serverless-2016-10-31") {
		t.Errorf("Transform = %v, want AWS::Serverless-2016-10-31", got)
	}
}

func TestRepoFunctionsMatchConfig(t *testing.T) {
	fns := loadRepoTemplate(t).Functions()
	for _, id := range config.Functions() {
		if _, ok := fns[id]; !ok {
			t.Errorf("config function %s is not in the template", id)
		}
	}
	for id := range fns {
		if !slices.Contains(config.Functions(), id) {
			t.Errorf("template function %s is not in config.Functions()", id)
		}
	}
}

func TestRepoFunctionsRuntime(t *testing.T) {
	for id, f := range loadRepoTemplate(t).Functions() {
		t.Run(id, func(t *testing.T) {
			if f.Runtime != "provided.al2023" {
				t.Errorf("Runtime = %q, want provided.al2023", f.Runtime)
			}
			if f.Handler != "bootstrap" {
				t.Errorf("Handler = %q, want bootstrap", f.Handler)
			}
			if !reflect.DeepEqual(f.Architectures, []string{"arm64"}) {
				t.Errorf("Architectures = %v, want [arm64]", f.Architectures)
			}
			// sam build runs the Makefile's build-<LogicalId> in the
			// root, where go.mod is (lambdatest builds it for real).
			if f.BuildMethod != "makefile" {
				t.Errorf("Metadata.BuildMethod = %q, want makefile", f.BuildMethod)
			}
			if f.CodeURI != "." {
				t.Errorf("CodeUri = %q, want . (the repository root)", f.CodeURI)
			}
		})
	}
}

// TestRepoFunctionsHaveMakeTargets: each function has the target sam
// build's makefile builder runs, and it builds one of cmd/.
func TestRepoFunctionsHaveMakeTargets(t *testing.T) {
	makeBin := testenv.Required(t, "make")
	for id := range loadRepoTemplate(t).Functions() {
		cmd := exec.CommandContext(t.Context(), makeBin, "-n", "build-"+id, "ARTIFACTS_DIR=/artifacts")
		cmd.Dir = repoRoot
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "-o /artifacts/bootstrap ./cmd/") {
			t.Errorf("make -n build-%s: %v\n%s", id, err, out)
		}
	}
}

func TestRepoEnvironmentMatchesConfig(t *testing.T) {
	tpl := loadRepoTemplate(t)
	fns := tpl.Functions()
	for _, id := range config.Functions() {
		t.Run(id, func(t *testing.T) {
			f, ok := fns[id]
			if !ok {
				t.Fatalf("%s not in template", id)
			}
			required := config.Required(id)
			for _, name := range required {
				if v, ok := f.Environment[name]; !ok || v == "" {
					t.Errorf("%s is not set", name)
				}
			}
			optional := config.Optional(id)
			for _, name := range optional {
				if _, ok := f.Environment[name]; !ok {
					t.Errorf("%s is not set (it may be empty, but the template should say so)", name)
				}
			}
			for name := range f.Environment {
				if slices.Contains(required, name) || slices.Contains(optional, name) {
					continue
				}
				// Lambda reserves most AWS_* names and sets them itself; one
				// set here is odd but not something the code misses.
				if strings.HasPrefix(name, "AWS_") {
					t.Logf("note: %s is set but config does not read it", name)
					continue
				}
				t.Errorf("%s is set but the code does not read it (config.Required(%s) = %v)", name, id, required)
			}
		})
	}
}

// TestRepoEnvironmentResolves fills every placeholder with parameter defaults
// and stand-in resource values, then loads the function's config from the
// result: a default that config rejects (a bad duration, a zero worker
// count) or a placeholder naming nothing fails here, not in Lambda.
func TestRepoEnvironmentResolves(t *testing.T) {
	written := loadWrittenTemplate(t)
	for _, mode := range authModes {
		tpl := resolveWith(t, written, mode.params)
		values := standInValues(written)
		maps.Copy(values, mode.params)
		for _, id := range config.Functions() {
			t.Run(mode.name+"/"+id, func(t *testing.T) {
				fn, ok := tpl.Functions()[id]
				if !ok {
					// AuthMode none deploys no authorizer, and only that.
					if id != config.AuthorizerFunction || mode.params["AuthMode"] != "none" {
						t.Fatalf("%s is not deployed", id)
					}
					return
				}
				env := map[string]string{}
				for name, tmpl := range fn.Environment {
					v, err := Resolve(tmpl, values)
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					env[name] = v
				}
				if _, err := config.Load(id, func(k string) string { return env[k] }); err != nil {
					t.Errorf("config.Load with these parameters: %v", err)
				}
			})
		}
	}
}

// standInValues gives every parameter its default and every resource (and
// the attributes the template uses) a recognisable fake value.
func standInValues(tpl *Template) map[string]string {
	values := map[string]string{
		"AWS::Region":    "eu-west-1",
		"AWS::StackName": "stand-in-stack",
		"AWS::AccountId": "123456789012",
		"AWS::Partition": "aws",
		"AWS::URLSuffix": "amazonaws.com",
	}
	for name, p := range tpl.Parameters() {
		values[name] = p.Default
	}
	for id, r := range tpl.resources {
		values[id] = "stand-in-" + strings.ToLower(id)
		values[id+".Arn"] = "arn:aws:fake:eu-west-1:123456789012:" + id
		if r.Type == TypeTopic {
			values[id] = values[id+".Arn"]
		}
	}
	return values
}

func TestRepoEnvironmentValues(t *testing.T) {
	fns := loadRepoTemplate(t).Functions()
	want := map[string]map[string]string{
		config.ConnectionFunction: {
			config.EnvConnectionsTable:   "${ConnectionsTable}",
			config.EnvManagementEndpoint: "https://${WebSocketApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${StageName}",
			config.EnvFanoutFunction:     "${BroadcastFunction}",
		},
		config.BroadcastFunction: {
			config.EnvConnectionsTable:   "${ConnectionsTable}",
			config.EnvManagementEndpoint: "https://${WebSocketApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${StageName}",
			// Itself, by the name it is given.
			config.EnvFanoutFunction: fns[config.BroadcastFunction].FunctionName,
		},
		config.ItemsReadFunction:  {config.EnvItemsTable: "${ItemsTable}"},
		config.ItemsWriteFunction: {config.EnvItemsTable: "${ItemsTable}", config.EnvTopicARN: "${PushTopic}"},
	}
	for id, vars := range want {
		for name, v := range vars {
			if got := fns[id].Environment[name]; got != v {
				t.Errorf("%s %s = %q, want %q", id, name, got, v)
			}
		}
	}
}

// TestRepoBroadcastSharesWithItself: the broadcaster hands shares to the
// function it is, named so its role can be granted exactly that, and has
// time for a big room's share.
func TestRepoBroadcastSharesWithItself(t *testing.T) {
	fn := loadRepoTemplate(t).Functions()[config.BroadcastFunction]
	if want := "${AWS::StackName}-BroadcastFunction"; fn.FunctionName != want {
		t.Fatalf("FunctionName %q, want %q", fn.FunctionName, want)
	}
	if want := "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:" + fn.FunctionName; broadcastSelfArn != want {
		t.Fatalf("granted %q, want %q", broadcastSelfArn, want)
	}
	if fn.Timeout < 30 {
		t.Fatalf("Timeout %d s; a share of 30,000 posts at a throttled pace needs more", fn.Timeout)
	}
}

// TestRepoHTTPRoutes holds the HTTP API's routes to the functions and
// authorizers each parameter set gives them: writes behind the authorizer
// unless auth is off, reads too unless they are public, and the 405/404
// answers open (they read and write nothing).
func TestRepoHTTPRoutes(t *testing.T) {
	type route struct{ method, path, function, authorizer string }
	routes := func(reads, writes string) []route {
		return []route{
			{"ANY", "$default", config.ItemsReadFunction, ""},
			{"GET", "/rooms/{room}/events", config.ItemsReadFunction, reads},
			{"ANY", "/rooms/{room}/items", config.ItemsReadFunction, ""},
			{"GET", "/rooms/{room}/items", config.ItemsReadFunction, reads},
			{"ANY", "/rooms/{room}/items/{id}", config.ItemsReadFunction, ""},
			{"DELETE", "/rooms/{room}/items/{id}", config.ItemsWriteFunction, writes},
			{"GET", "/rooms/{room}/items/{id}", config.ItemsReadFunction, reads},
			{"PUT", "/rooms/{room}/items/{id}", config.ItemsWriteFunction, writes},
		}
	}
	want := map[string][]route{
		"defaults":     routes("HttpAuthorizer", "HttpAuthorizer"),
		"own secret":   routes("HttpAuthorizer", "HttpAuthorizer"),
		"oidc":         routes("HttpAuthorizer", "HttpAuthorizer"),
		"public reads": routes("", "HttpAuthorizer"),
		"none":         routes("", ""),
	}
	written := loadWrittenTemplate(t)
	for _, mode := range authModes {
		t.Run(mode.name, func(t *testing.T) {
			api, ok, err := resolveWith(t, written, mode.params).HTTPAPI()
			if err != nil || !ok || api.LogicalID != "HttpApi" {
				t.Fatalf("HTTPAPI() = %+v, %v, %v", api, ok, err)
			}
			var got []route
			for _, r := range api.Routes {
				a := ""
				if r.Authorizer != nil {
					a = r.Authorizer.LogicalID
					if r.Authorizer.Function != config.AuthorizerFunction ||
						!reflect.DeepEqual(r.Authorizer.IdentitySource, []string{"$request.header.Authorization"}) ||
						r.Authorizer.PayloadFormatVersion != "2.0" || !r.Authorizer.SimpleResponses || r.Authorizer.ResultTTL != 300 {
						t.Errorf("%s %s: authorizer %+v", r.Method, r.Path, *r.Authorizer)
					}
				}
				got = append(got, route{r.Method, r.Path, r.Function, a})
			}
			if !reflect.DeepEqual(got, want[mode.name]) {
				t.Errorf("routes\n got %v\nwant %v", got, want[mode.name])
			}
		})
	}
	for id, f := range loadRepoTemplate(t).Functions() {
		if len(f.HTTPRoutes) > 0 {
			t.Errorf("%s has SAM HttpApi events: they cannot choose an authorizer by condition", id)
		}
	}
}

func TestRepoWebSocket(t *testing.T) {
	api, err := loadRepoTemplate(t).WebSocket()
	if err != nil {
		t.Fatalf("WebSocket: %v", err)
	}
	if api.RouteSelectionExpression != "$request.body.action" {
		t.Errorf("RouteSelectionExpression = %q", api.RouteSelectionExpression)
	}
	want := map[string]struct {
		twoWay bool
	}{
		"$connect":    {twoWay: false},
		"$disconnect": {twoWay: false},
		"$default":    {twoWay: true},
	}
	if len(api.Routes) != len(want) {
		t.Errorf("routes = %v, want exactly %v", slices.Sorted(maps.Keys(api.Routes)), slices.Sorted(maps.Keys(want)))
	}
	for key, w := range want {
		r, ok := api.Routes[key]
		if !ok {
			t.Errorf("no %s route", key)
			continue
		}
		if r.Function != config.ConnectionFunction {
			t.Errorf("%s invokes %q, want %s", key, r.Function, config.ConnectionFunction)
		}
		twoWay := r.RouteResponse && r.RouteResponseSelectionExpression == "$default"
		if twoWay != w.twoWay {
			t.Errorf("%s two-way = %v (route response %v, selection %q), want %v",
				key, twoWay, r.RouteResponse, r.RouteResponseSelectionExpression, w.twoWay)
		}
	}
}

// TestRepoWebSocketAuthorizer: $connect, and only $connect, runs the
// authorizer, with the token from the query string (browsers cannot set a
// WebSocket's headers); with auth off, none.
func TestRepoWebSocketAuthorizer(t *testing.T) {
	written := loadWrittenTemplate(t)
	for _, mode := range authModes {
		t.Run(mode.name, func(t *testing.T) {
			api, err := resolveWith(t, written, mode.params).WebSocket()
			if err != nil {
				t.Fatal(err)
			}
			for key, r := range api.Routes {
				wantAuth := key == "$connect" && mode.params["AuthMode"] != "none"
				if (r.Authorizer != nil) != wantAuth {
					t.Errorf("%s: authorizer %+v, want one: %v", key, r.Authorizer, wantAuth)
					continue
				}
				if r.Authorizer != nil && (r.Authorizer.Function != config.AuthorizerFunction ||
					!reflect.DeepEqual(r.Authorizer.IdentitySource, []string{"route.request.querystring.token"})) {
					t.Errorf("%s: authorizer %+v", key, *r.Authorizer)
				}
			}
		})
	}
}

func TestRepoBroadcastSubscription(t *testing.T) {
	tpl := loadRepoTemplate(t)
	if got := tpl.Topics(); !reflect.DeepEqual(got, []string{"PushTopic"}) {
		t.Fatalf("Topics() = %v, want [PushTopic]", got)
	}
	for id, f := range tpl.Functions() {
		var want []string
		if id == config.BroadcastFunction {
			want = []string{"PushTopic"}
		}
		var schedules []string
		if id == config.OutboxFunction {
			schedules = []string{"${OutboxSchedule}"}
		}
		if !reflect.DeepEqual(f.Schedules, schedules) {
			t.Errorf("%s schedules = %v, want %v", id, f.Schedules, schedules)
		}
		if !reflect.DeepEqual(f.SNSTopics, want) {
			t.Errorf("%s SNS topics = %v, want %v", id, f.SNSTopics, want)
		}
	}
}

func TestRepoTables(t *testing.T) {
	tables := loadRepoTemplate(t).Tables()
	want := map[string]Table{
		"ConnectionsTable": {
			LogicalID:     "ConnectionsTable",
			HashKey:       KeyAttribute{Name: "pk", Type: "S"},
			RangeKey:      KeyAttribute{Name: "sk", Type: "S"},
			BillingMode:   "PAY_PER_REQUEST",
			TTLAttribute:  "expiresAt",
			SSE:           true,
			KeySchemaSize: 2,
		},
		"ItemsTable": {
			LogicalID:           "ItemsTable",
			HashKey:             KeyAttribute{Name: "room", Type: "S"},
			RangeKey:            KeyAttribute{Name: "id", Type: "S"},
			BillingMode:         "PAY_PER_REQUEST",
			TTLAttribute:        "expiresAt",
			PointInTimeRecovery: true,
			SSE:                 true,
			KeySchemaSize:       2,
			Indexes: []Index{{
				Name:             "outbox",
				HashKey:          KeyAttribute{Name: "outbox", Type: "S"},
				RangeKey:         KeyAttribute{Name: "outboxAt", Type: "N"},
				ProjectionType:   "INCLUDE",
				NonKeyAttributes: []string{"event", "expiresAt"},
			}},
		},
	}
	if !reflect.DeepEqual(tables, want) {
		t.Errorf("Tables()\n got %+v\nwant %+v", tables, want)
	}
}

// TestTablesTheStoresCreateAreTheTemplates: the tables a local stack or a
// test creates on moto are those the template deploys.
func TestTablesTheStoresCreateAreTheTemplates(t *testing.T) {
	tables := loadRepoTemplate(t).Tables()
	for i, in := range dynamo.TableInputs("ConnectionsTable", "ItemsTable") {
		tb := tables[*in.TableName]
		types := map[string]string{}
		for _, d := range in.AttributeDefinitions {
			types[*d.AttributeName] = string(d.AttributeType)
		}
		keys := func(schema []ddbtypes.KeySchemaElement) (hash, rng KeyAttribute) {
			for _, k := range schema {
				attr := KeyAttribute{Name: *k.AttributeName, Type: types[*k.AttributeName]}
				if k.KeyType == ddbtypes.KeyTypeHash {
					hash = attr
				} else {
					rng = attr
				}
			}
			return hash, rng
		}
		got := Table{LogicalID: *in.TableName, BillingMode: string(in.BillingMode), KeySchemaSize: len(in.KeySchema)}
		got.HashKey, got.RangeKey = keys(in.KeySchema)
		for _, g := range in.GlobalSecondaryIndexes {
			ix := Index{Name: *g.IndexName, ProjectionType: string(g.Projection.ProjectionType), NonKeyAttributes: g.Projection.NonKeyAttributes}
			ix.HashKey, ix.RangeKey = keys(g.KeySchema)
			got.Indexes = append(got.Indexes, ix)
		}
		// TTL, recovery and encryption are the template's alone.
		want := tb
		want.TTLAttribute, want.PointInTimeRecovery, want.SSE = "", false, false
		if !reflect.DeepEqual(got, want) {
			t.Errorf("table %d:\n created %+v\ntemplate %+v", i, got, want)
		}
	}
}

// Resources of the grants below, as the template renders them.
const (
	connectionsTableArn = "${ConnectionsTable.Arn}"
	itemsTableArn       = "${ItemsTable.Arn}"
	outboxIndexArn      = "${ItemsTable.Arn}/index/outbox"
	pushTopicArn        = "${PushTopic}"
	postToConnectionArn = "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${WebSocketApi}/${StageName}/POST/@connections/*"
	deleteConnectionArn = "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${WebSocketApi}/${StageName}/DELETE/@connections/*"
	broadcastArn        = "${BroadcastFunction.Arn}"
	// BroadcastFunction's own ARN, from its FunctionName: GetAtt on itself
	// would be a cycle.
	broadcastSelfArn = "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${AWS::StackName}-BroadcastFunction"
	deadLetterArn    = "${DeadLetterQueue.Arn}"
	// The signing key the stack generates, and one named by the
	// SigningKeySecret parameter (a secret's ARN ends in six random
	// characters).
	generatedKeyArn = "${SigningKey}"
	namedKeyArn     = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${SigningKeySecret}-??????"
)

// logGrants are what every function needs to write its own log group.
func logGrants(function string) map[string][]string {
	group := "${" + function + "LogGroup.Arn}"
	return map[string][]string{"logs:CreateLogStream": {group}, "logs:PutLogEvents": {group}}
}

// wantGrants is, per function, every action its code needs and the
// resources it needs it on: exactly these, nothing more. A transaction
// needs no action of its own, only those of its parts (PutItem, UpdateItem,
// DeleteItem; ConditionCheckItem for a ConditionCheck, which nothing uses).
func wantGrants() map[string]map[string][]string {
	grants := map[string]map[string][]string{
		config.ConnectionFunction: {
			// Get; Delete, Join (reading back a failed join).
			"dynamodb:GetItem": {connectionsTableArn},
			// Put and Join transactions.
			"dynamodb:PutItem": {connectionsTableArn},
			// Touch; Join and Leave transactions.
			"dynamodb:UpdateItem": {connectionsTableArn},
			// Leave transaction.
			"dynamodb:DeleteItem": {connectionsTableArn},
			// Members (relays to rooms).
			"dynamodb:Query": {connectionsTableArn},
			// Delete ($disconnect, pruning gone connections).
			"dynamodb:BatchWriteItem": {connectionsTableArn},
			// PostToConnection, and DeleteConnection of a connection whose
			// post failed for good; nothing GETs a connection.
			"execute-api:ManageConnections": {deleteConnectionArn, postToConnectionArn},
			// A relay to a big room hands shares to the broadcaster.
			"lambda:InvokeFunction": {broadcastArn},
		},
		config.BroadcastFunction: {
			"dynamodb:Query": {connectionsTableArn},
			// Pruning a gone connection: Connections.Delete.
			"dynamodb:GetItem":        {connectionsTableArn},
			"dynamodb:BatchWriteItem": {connectionsTableArn},
			// Receipts of delivered messages (replays are dropped).
			"dynamodb:UpdateItem":           {connectionsTableArn},
			"execute-api:ManageConnections": {deleteConnectionArn, postToConnectionArn},
			// A big room's shares.
			"lambda:InvokeFunction": {broadcastSelfArn},
		},
		config.ItemsReadFunction: {
			"dynamodb:GetItem": {itemsTableArn},
			"dynamodb:Query":   {itemsTableArn},
		},
		config.ItemsWriteFunction: {
			// A write reads the item and the room's counter, then puts the
			// item and the history record and moves the counter in one
			// transaction.
			"dynamodb:GetItem":    {itemsTableArn},
			"dynamodb:PutItem":    {itemsTableArn},
			"dynamodb:UpdateItem": {itemsTableArn},
			"sns:Publish":         {pushTopicArn},
		},
		config.OutboxFunction: {
			// Unpublished reads the outbox index only.
			"dynamodb:Query": {outboxIndexArn},
			// Claim and MarkPublished.
			"dynamodb:UpdateItem": {itemsTableArn},
			"sns:Publish":         {pushTopicArn},
		},
		// The key it verifies tokens with (AuthMode key, a generated key).
		config.AuthorizerFunction: {"secretsmanager:GetSecretValue": {generatedKeyArn}},
	}
	// Lambda parks a broadcast that failed every retry with its role.
	grants[config.BroadcastFunction]["sqs:SendMessage"] = []string{deadLetterArn}
	for fn, g := range grants {
		maps.Copy(g, logGrants(fn))
	}
	return grants
}

// TestRepoLeastPrivilege holds each function's role to what its code
// needs: exactly the actions of wantGrants on exactly their resources, no
// wildcard, no managed policy (SAM's generated roles carry
// AWSLambdaBasicExecutionRole, which writes to any log group, so every
// function has a role of its own). The authorizer's grant follows the auth
// parameters: the generated key, the named one, or none for oidc.
func TestRepoLeastPrivilege(t *testing.T) {
	written := loadWrittenTemplate(t)
	for _, mode := range authModes {
		tpl := resolveWith(t, written, mode.params)
		want := wantGrants()
		switch mode.name {
		case "own secret":
			want[config.AuthorizerFunction]["secretsmanager:GetSecretValue"] = []string{namedKeyArn}
		case "oidc":
			delete(want[config.AuthorizerFunction], "secretsmanager:GetSecretValue")
		case "none":
			delete(want, config.AuthorizerFunction)
		}
		if fns := slices.Sorted(maps.Keys(tpl.Functions())); !reflect.DeepEqual(fns, slices.Sorted(maps.Keys(want))) {
			t.Fatalf("%s: functions %v, grants known for %v", mode.name, fns, slices.Sorted(maps.Keys(want)))
		}
		for _, function := range slices.Sorted(maps.Keys(want)) {
			t.Run(mode.name+"/"+function, func(t *testing.T) {
				for _, p := range grantProblems(tpl, function, want[function]) {
					t.Error(p)
				}
			})
		}
	}
}

// TestLeastPrivilegeCatchesExtraGrants shows the check above failing on
// the grants it exists to keep out.
func TestLeastPrivilegeCatchesExtraGrants(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(repoRoot, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const post = "- !Sub arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${WebSocketApi}/${StageName}/POST/@connections/*"
	tests := []struct {
		name, old, new, function string
	}{
		{"unused action", "- dynamodb:BatchWriteItem\n", "- dynamodb:BatchWriteItem\n                  - dynamodb:ConditionCheckItem\n", config.ConnectionFunction},
		{"missing action", "                  - dynamodb:PutItem\n", "", config.ConnectionFunction},
		{"unused method", post, post + "\n                  - !Sub arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${WebSocketApi}/${StageName}/GET/@connections/*", config.ConnectionFunction},
		{"wildcard method", "/POST/@connections/*", "/*/@connections/*", config.ConnectionFunction},
		{"wildcard action", "Action: sns:Publish", "Action: sns:*", config.ItemsWriteFunction},
		{"wildcard resource", "Resource: !Ref PushTopic", "Resource: '*'", config.ItemsWriteFunction},
		{"another function's log group", "Resource: !GetAtt ItemsReadFunctionLogGroup.Arn", "Resource: !GetAtt ItemsWriteFunctionLogGroup.Arn", config.ItemsReadFunction},
		{"a managed policy", "      Policies:\n        - PolicyName: ItemsReadFunction\n", "      ManagedPolicyArns:\n        - arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole\n      Policies:\n        - PolicyName: ItemsReadFunction\n", config.ItemsReadFunction},
		{"SAM's generated role", "      Role: !GetAtt ItemsReadFunctionRole.Arn\n", "", config.ItemsReadFunction},
	}
	want := wantGrants()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tpl := parseResolved(t, replaceOnce(t, string(src), tc.old, tc.new))
			problems := grantProblems(tpl, tc.function, want[tc.function])
			if len(problems) == 0 {
				t.Fatalf("%s: no problem found", tc.function)
			}
			t.Logf("found: %v", problems)
		})
	}
}

// grantProblems compares a function's inline policy with want (action to
// resources) and describes each difference.
func grantProblems(tpl *Template, function string, want map[string][]string) []string {
	got, err := inlineGrants(tpl, function)
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	for _, action := range slices.Sorted(maps.Keys(want)) {
		if res, ok := got[action]; !ok {
			problems = append(problems, fmt.Sprintf("%s not granted", action))
		} else if !reflect.DeepEqual(res, want[action]) {
			problems = append(problems, fmt.Sprintf("%s granted on %v, want %v", action, res, want[action]))
		}
	}
	for _, action := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[action]; !ok {
			problems = append(problems, fmt.Sprintf("%s granted but not needed", action))
		}
	}
	return problems
}

// roleStatements returns the statements of the policies of a function's
// own role, refusing a role it cannot hold to least privilege: SAM's
// generated one (which carries a managed policy), a managed policy, a
// permissions boundary or a role not of this template.
func roleStatements(tpl *Template, function string) ([]map[string]any, error) {
	r, ok := tpl.resources[function]
	if !ok {
		return nil, fmt.Errorf("%s not in template", function)
	}
	fn, _ := mergeGlobals(tpl.globalFunction, r.Properties).(map[string]any)
	if _, ok := fn["Policies"]; ok {
		return nil, errors.New("Policies on the function: SAM ignores them beside a Role, or adds a generated role")
	}
	if _, ok := fn["PermissionsBoundary"]; ok {
		return nil, errors.New("a PermissionsBoundary: the role's policies are not the whole story")
	}
	role := render(fn["Role"])
	id, ok := strings.CutSuffix(strings.TrimPrefix(role, "${"), ".Arn}")
	if _, isRole := fn["Role"]; !isRole || !ok || !strings.HasPrefix(role, "${") {
		return nil, fmt.Errorf("Role %q is not !GetAtt <role>.Arn: SAM would generate one with AWSLambdaBasicExecutionRole", role)
	}
	rr, ok := tpl.resources[id]
	if !ok || rr.Type != "AWS::IAM::Role" {
		return nil, fmt.Errorf("Role %s is not an AWS::IAM::Role of the template", id)
	}
	for _, key := range []string{"ManagedPolicyArns", "PermissionsBoundary"} {
		if _, ok := rr.Properties[key]; ok {
			return nil, fmt.Errorf("role %s has %s", id, key)
		}
	}
	var out []map[string]any
	for _, p := range listOf(rr.Properties["Policies"]) {
		pm, _ := p.(map[string]any)
		doc, _ := pm["PolicyDocument"].(map[string]any)
		statements, ok := doc["Statement"].([]any)
		if !ok {
			return nil, fmt.Errorf("role %s: a policy without PolicyDocument.Statement", id)
		}
		for _, st := range statements {
			m, ok := st.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("role %s: statement %s is not a mapping", id, render(st))
			}
			out = append(out, m)
		}
	}
	return out, nil
}

// inlineGrants maps each action of a function's role to the resources it
// is granted on (rendered, sorted), rejecting anything it cannot hold to
// least privilege.
func inlineGrants(tpl *Template, function string) (map[string][]string, error) {
	statements, err := roleStatements(tpl, function)
	if err != nil {
		return nil, err
	}
	grants := map[string][]string{}
	for _, st := range statements {
		for _, widening := range []string{"NotAction", "NotResource", "NotPrincipal"} {
			if _, ok := st[widening]; ok {
				return nil, fmt.Errorf("statement with %s", widening)
			}
		}
		if st["Effect"] != "Allow" {
			continue
		}
		var resources []string
		for _, res := range listOf(st["Resource"]) {
			rendered := render(res)
			if wildcardResource(rendered) {
				return nil, fmt.Errorf("statement with wildcard Resource %s", rendered)
			}
			resources = append(resources, rendered)
		}
		for _, a := range listOf(st["Action"]) {
			s, ok := a.(string)
			if !ok || strings.Contains(s, "*") {
				return nil, fmt.Errorf("action %s is not a single named action", render(a))
			}
			grants[s] = append(grants[s], resources...)
		}
	}
	for action, res := range grants {
		slices.Sort(res)
		grants[action] = slices.Compact(res)
	}
	return grants, nil
}

// wildcardResource reports a resource wider than one thing, but for the
// two wildcards allowed: any connection id of the stage, and the random
// suffix of a secret's ARN.
func wildcardResource(rendered string) bool {
	r := strings.TrimSuffix(rendered, "/@connections/*")
	r = strings.TrimSuffix(r, "-??????")
	return strings.ContainsAny(r, "*?")
}

// TestRepoWebSocketStageDeploys holds the WebSocket stage to serving the
// API as the template last left it (see webSocketDeployProblems).
func TestRepoWebSocketStageDeploys(t *testing.T) {
	for _, p := range webSocketDeployProblems(loadRepoTemplate(t)) {
		t.Error(p)
	}
}

// TestWebSocketDeployCheckCatches shows the check failing on the shapes
// that leave the stage on a stale deployment.
func TestWebSocketDeployCheckCatches(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(repoRoot, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const deployment = `
  WebSocketDeployment:
    Type: AWS::ApiGatewayV2::Deployment
    Properties:
      ApiId: !Ref WebSocketApi
`
	tests := []struct{ name, old, new string }{
		{"no auto deploy", "StageName: !Ref StageName\n      AutoDeploy: true", "StageName: !Ref StageName\n      AutoDeploy: false"},
		{"pinned to a deployment", "StageName: !Ref StageName\n      AutoDeploy: true\n", "StageName: !Ref StageName\n      AutoDeploy: true\n      DeploymentId: !Ref WebSocketDeployment\n"},
		{"deployment resource", "\nOutputs:", deployment + "\nOutputs:"},
		{"first deployment misses a route", "      - DefaultRouteResponse\n    Properties:\n      ApiId: !Ref WebSocketApi\n      StageName", "    Properties:\n      ApiId: !Ref WebSocketApi\n      StageName"},
		{"stage name not the parameter", "StageName: !Ref StageName\n      AutoDeploy", "StageName: live\n      AutoDeploy"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tpl := parseResolved(t, replaceOnce(t, string(src), tc.old, tc.new))
			problems := webSocketDeployProblems(tpl)
			if len(problems) == 0 {
				t.Fatal("no problem found")
			}
			t.Logf("found: %v", problems)
		})
	}
}

// webSocketDeployProblems describes why the WebSocket API's stage might not
// serve the API as deployed. CloudFormation creates an
// AWS::ApiGatewayV2::Deployment only when its logical id or properties
// change, which route and integration edits never do, so a stage pinned to
// one (DeploymentId) keeps its first snapshot. The stage must auto-deploy
// instead: one Stage, AutoDeploy true, no DeploymentId (API Gateway refuses
// to update it on an auto-deployed stage), no Deployment resource, and
// created after every route and route response so its first automatic
// deployment is complete. Its name must be the StageName parameter the
// Management API endpoint and policies use.
func webSocketDeployProblems(tpl *Template) []string {
	api, err := tpl.WebSocket()
	if err != nil {
		return []string{err.Error()}
	}
	var problems, stages, parts []string
	for _, id := range slices.Sorted(maps.Keys(tpl.resources)) {
		r := tpl.resources[id]
		if !tpl.refersTo(r.Properties["ApiId"], api.LogicalID) {
			continue
		}
		switch r.Type {
		case TypeGatewayDeployment:
			problems = append(problems, fmt.Sprintf("%s: a Deployment is created once and never again; auto-deploy the stage instead", id))
		case TypeGatewayStage:
			stages = append(stages, id)
		case TypeGatewayRoute, TypeGatewayRouteResponse:
			parts = append(parts, id)
		}
	}
	if len(stages) != 1 {
		return append(problems, fmt.Sprintf("stages of %s: %v, want one", api.LogicalID, stages))
	}
	stage := tpl.resources[stages[0]]
	if !truthy(stage.Properties["AutoDeploy"]) {
		problems = append(problems, fmt.Sprintf("%s: AutoDeploy is not true", stages[0]))
	}
	if _, ok := stage.Properties["DeploymentId"]; ok {
		problems = append(problems, fmt.Sprintf("%s: DeploymentId pins the stage to one deployment", stages[0]))
	}
	for _, p := range parts {
		if !slices.Contains(stage.DependsOn, p) {
			problems = append(problems, fmt.Sprintf("%s does not depend on %s: its first deployment may lack it", stages[0], p))
		}
	}
	if name := stringProp(stage.Properties, "StageName"); name != "${StageName}" {
		problems = append(problems, fmt.Sprintf("%s: StageName %q, want the StageName parameter", stages[0], name))
	}
	return problems
}

// TestRepoHTTPAPICORS checks the HttpApi's CORS as written and as the
// local stack resolves it, and that it allows every method a route takes.
func TestRepoHTTPAPICORS(t *testing.T) {
	tpl := loadRepoTemplate(t)
	got, ok, err := tpl.HTTPAPICORS("HttpApi")
	if err != nil || !ok {
		t.Fatalf("HTTPAPICORS(HttpApi) = %v, %v", ok, err)
	}
	want := CORS{
		AllowOrigins:  []string{"${AllowedOrigin}"},
		AllowMethods:  []string{"GET", "PUT", "DELETE"},
		AllowHeaders:  []string{"authorization", "content-type", "if-match", "if-none-match"},
		ExposeHeaders: []string{"etag"},
		MaxAge:        600,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("HTTPAPICORS(HttpApi)\n got %+v\nwant %+v", got, want)
	}
	resolved, ok, err := tpl.ResolvedHTTPCORS(standInValues(tpl))
	if err != nil || !ok {
		t.Fatalf("ResolvedHTTPCORS = %v, %v", ok, err)
	}
	want.AllowOrigins = []string{"*"}
	if !reflect.DeepEqual(resolved, want) {
		t.Errorf("ResolvedHTTPCORS\n got %+v\nwant %+v", resolved, want)
	}
	api, _, err := tpl.HTTPAPI()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range api.Routes {
		if r.Method != "ANY" && !slices.Contains(got.AllowMethods, r.Method) {
			t.Errorf("route %s %s: CORS does not allow %s", r.Method, r.Path, r.Method)
		}
	}
}

// TestRepoCfnLint runs cfn-lint with the informational rules on too, and
// wants no finding at all.
func TestRepoCfnLint(t *testing.T) {
	cfnLint := testenv.Required(t, "cfn-lint")
	cmd := exec.CommandContext(t.Context(), cfnLint, "--include-checks", "I", "--", "template.yaml")
	cmd.Dir = repoRoot
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil || out.Len() > 0 {
		t.Errorf("cfn-lint template.yaml: %v\n%s", err, out.String())
	}
}

// TestRepoSAMConfig parses samconfig.toml with Python's tomllib (the Go
// module has no TOML parser, and cfn-lint already needs Python) and checks
// the settings sam reads.
func TestRepoSAMConfig(t *testing.T) {
	python := testenv.Required(t, "python3")
	const script = `
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    c = tomllib.load(f)
d = c["default"]
assert c["version"] == 0.1, c["version"]
assert d["global"]["parameters"]["stack_name"] == "pushgate"
dep = d["deploy"]["parameters"]
assert dep["capabilities"] == "CAPABILITY_IAM", dep
assert dep["resolve_s3"] is True, dep
assert dep["confirm_changeset"] is True, dep
assert d["build"]["parameters"]["parallel"] is True
assert d["build"]["parameters"]["build_in_source"] is True
assert d["build"]["parameters"]["cached"] is False
`
	cmd := exec.CommandContext(t.Context(), python, "-c", script, "samconfig.toml")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("samconfig.toml: %v\n%s", err, out)
	}
}

// typeLogGroup is the resource each function's LoggingConfig.LogGroup names.
const typeLogGroup = "AWS::Logs::LogGroup"

// TestRepoLogRetentionParameter holds LogRetentionDays to the retention
// periods CloudWatch Logs accepts, so a bad override fails at parameter
// validation rather than halfway through a deployment.
func TestRepoLogRetentionParameter(t *testing.T) {
	tpl := loadRepoTemplate(t)
	p, ok := tpl.Parameters()["LogRetentionDays"]
	if !ok {
		t.Fatal("no LogRetentionDays parameter")
	}
	if p.Type != "Number" || p.Default != "30" {
		t.Errorf("LogRetentionDays: Type %q, Default %q; want Number, 30", p.Type, p.Default)
	}
	raw, _ := tpl.root["Parameters"].(map[string]any)
	param, _ := raw["LogRetentionDays"].(map[string]any)
	allowed, _ := param["AllowedValues"].([]any)
	var got []string
	for _, v := range allowed {
		got = append(got, render(v))
	}
	want := []string{"1", "3", "5", "7", "14", "30", "60", "90", "120", "150", "180", "365", "400", "545", "731", "1096", "1827", "2192", "2557", "2922", "3288", "3653"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LogRetentionDays AllowedValues\n got %v\nwant %v", got, want)
	}
}

// TestRepoFunctionLogGroups holds every function to a log group of its own
// with the stack's retention (see logGroupProblems).
func TestRepoFunctionLogGroups(t *testing.T) {
	tpl := loadRepoTemplate(t)
	if len(tpl.Functions()) == 0 {
		t.Fatal("no functions")
	}
	for _, p := range logGroupProblems(tpl) {
		t.Error(p)
	}
}

// TestLogGroupCheckCatches shows the check failing on the shapes that let
// logs pile up forever, lose their JSON format or levels, or stop the
// function from writing them.
func TestLogGroupCheckCatches(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(repoRoot, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, old, new string }{
		{"no log group", "      LoggingConfig:\n        LogGroup: !Ref ItemsReadFunctionLogGroup\n", ""},
		{"fixed retention", "RetentionInDays: !Ref LogRetentionDays", "RetentionInDays: 30"},
		{"no retention", "      RetentionInDays: !Ref LogRetentionDays\n", ""},
		{"group by name", "LogGroup: !Ref ItemsWriteFunctionLogGroup", "LogGroup: /aws/lambda/items-write"},
		{"group is not a log group", "LogGroup: !Ref ItemsWriteFunctionLogGroup", "LogGroup: !Ref ItemsTable"},
		{"shared group", "LogGroup: !Ref BroadcastFunctionLogGroup", "LogGroup: !Ref ConnectionFunctionLogGroup"},
		{"name without the stack", "LogGroupName: !Sub /aws/lambda/${AWS::StackName}-ItemsReadFunction", "LogGroupName: /aws/lambda/ItemsReadFunction"},
		{"text format in a function", "        LogGroup: !Ref ConnectionFunctionLogGroup\n", "        LogGroup: !Ref ConnectionFunctionLogGroup\n        LogFormat: Text\n"},
		{"no global JSON format", "      LogFormat: JSON\n", ""},
		{"no global level", "      ApplicationLogLevel: !Ref LogLevel\n", ""},
		{"permissions boundary", "    MemorySize: 256\n", "    MemorySize: 256\n    PermissionsBoundary: arn:aws:iam::aws:policy/ReadOnlyAccess\n"},
		{"a role of elsewhere", "      Role: !GetAtt ItemsReadFunctionRole.Arn", "      Role: arn:aws:iam::123456789012:role/other"},
		{"no log writes", "                Resource: !GetAtt ItemsWriteFunctionLogGroup.Arn\n", "                Resource: !GetAtt ItemsReadFunctionLogGroup.Arn\n"},
		{"denied log writes", "                Resource: !Ref PushTopic\n", "                Resource: !Ref PushTopic\n              - Effect: Deny\n                Action: logs:PutLogEvents\n                Resource: '*'\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tpl := parseResolved(t, replaceOnce(t, string(src), tc.old, tc.new))
			problems := logGroupProblems(tpl)
			if len(problems) == 0 {
				t.Fatal("no problem found")
			}
			t.Logf("found: %v", problems)
		})
	}
}

// logGroupProblems describes why a function's logs might not land, as JSON
// at the chosen levels, in a group of its own that keeps them
// LogRetentionDays. LoggingConfig is read with Globals merged as SAM
// merges it (key by key), so a function adding LogGroup keeps the global
// format and levels. Each group is named per stack, or by CloudFormation,
// so two stacks never share one. Writing needs the function's role to
// allow it on that group (and no Deny on logs actions).
func logGroupProblems(tpl *Template) []string {
	var problems []string
	groupOf := map[string]string{}
	nameOf := map[string]string{}
	for _, id := range slices.Sorted(maps.Keys(tpl.Functions())) {
		props, _ := mergeGlobals(tpl.globalFunction, tpl.resources[id].Properties).(map[string]any)
		statements, err := roleStatements(tpl, id)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", id, err))
		}
		problems = append(problems, logDenials(id, statements)...)
		logging, ok := props["LoggingConfig"].(map[string]any)
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: no LoggingConfig", id))
			continue
		}
		for key, want := range map[string]string{
			"LogFormat":           "JSON",
			"ApplicationLogLevel": "${LogLevel}",
			"SystemLogLevel":      "${SystemLogLevel}",
		} {
			if got := stringProp(logging, key); got != want {
				problems = append(problems, fmt.Sprintf("%s: LoggingConfig.%s = %q, want %q", id, key, got, want))
			}
		}
		if _, ok := logging["LogGroup"]; !ok {
			problems = append(problems, fmt.Sprintf("%s: no LoggingConfig.LogGroup: Lambda's default group keeps logs forever", id))
			continue
		}
		group, ok := refTarget(logging["LogGroup"])
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: LoggingConfig.LogGroup %s is not a !Ref to a log group of the stack", id, render(logging["LogGroup"])))
			continue
		}
		if other, dup := groupOf[group]; dup {
			problems = append(problems, fmt.Sprintf("%s and %s share log group %s", other, id, group))
			continue
		}
		groupOf[group] = id
		g, ok := tpl.resources[group]
		if !ok || g.Type != typeLogGroup {
			problems = append(problems, fmt.Sprintf("%s: LoggingConfig.LogGroup %s is not an %s", id, group, typeLogGroup))
			continue
		}
		if got := stringProp(g.Properties, "RetentionInDays"); got != "${LogRetentionDays}" {
			problems = append(problems, fmt.Sprintf("%s: RetentionInDays %q, want the LogRetentionDays parameter", group, got))
		}
		if grants, err := inlineGrants(tpl, id); err == nil {
			for action, res := range logGrants(id) {
				if !slices.Contains(grants[action], res[0]) {
					problems = append(problems, fmt.Sprintf("%s: its role may not %s to %s", id, action, group))
				}
			}
		}
		if _, named := g.Properties["LogGroupName"]; !named {
			continue
		}
		name := render(g.Properties["LogGroupName"])
		if !strings.Contains(name, "${AWS::StackName}") {
			problems = append(problems, fmt.Sprintf("%s: LogGroupName %q does not name the stack: two stacks would collide", group, name))
		}
		if other, dup := nameOf[name]; dup {
			problems = append(problems, fmt.Sprintf("%s and %s are both named %q", other, group, name))
		}
		nameOf[name] = group
	}
	return problems
}

// logDenials describes each statement of a function's role that denies a
// logs action.
func logDenials(function string, statements []map[string]any) []string {
	var problems []string
	for _, st := range statements {
		if st["Effect"] == "Allow" {
			continue
		}
		for _, a := range listOf(st["Action"]) {
			action := render(a)
			if action == "*" || strings.HasPrefix(strings.ToLower(action), "logs:") {
				problems = append(problems, fmt.Sprintf("%s: a %s statement on %s stops its log writes", function, render(st["Effect"]), action))
			}
		}
	}
	return problems
}

// TestRepoDeadLetterAlarm: a broadcast parked in the dead-letter queue means
// a room missed an event, so an alarm watches the queue's depth.
func TestRepoDeadLetterAlarm(t *testing.T) {
	tpl := loadRepoTemplate(t)
	found := false
	for id, r := range tpl.resources {
		if r.Type != "AWS::CloudWatch::Alarm" {
			continue
		}
		p := r.Properties
		dims, _ := p["Dimensions"].([]any)
		if p["Namespace"] != "AWS/SQS" || p["MetricName"] != "ApproximateNumberOfMessagesVisible" || len(dims) != 1 {
			continue
		}
		dim, _ := dims[0].(map[string]any)
		if dim["Name"] == "QueueName" && render(dim["Value"]) == "${DeadLetterQueue.QueueName}" &&
			render(p["Threshold"]) == "0" && p["ComparisonOperator"] == "GreaterThanThreshold" {
			found = true
			t.Logf("%s watches the dead-letter queue", id)
		}
	}
	if !found {
		t.Error("no alarm fires when the dead-letter queue holds a message")
	}
}
