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
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pushgate/pushgate/internal/config"
)

// The checks below hold template.yaml, the code and config.go to each other.

const repoRoot = "../.."

func loadRepoTemplate(t *testing.T) *Template {
	t.Helper()
	tpl, err := Load(filepath.Join(repoRoot, "template.yaml"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return tpl
}

// requireTool finds name on PATH: missing, it fails the test under CI and
// skips it elsewhere.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found under CI: %v", name, err)
		}
		t.Skipf("%s not found: %v", name, err)
	}
	return path
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

var codeURIPattern = regexp.MustCompile(`^cmd/[a-z0-9-]+$`)

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
			if f.BuildMethod != "go1.x" {
				t.Errorf("Metadata.BuildMethod = %q, want go1.x", f.BuildMethod)
			}
			if !codeURIPattern.MatchString(f.CodeURI) {
				t.Errorf("CodeUri = %q, want cmd/<name>", f.CodeURI)
			}
		})
	}
}

// TestRepoFunctionsBuild builds each CodeUri the way Lambda runs it. sam
// build's go1.x builder runs `go build` in the CodeUri directory, and Go
// finds the root go.mod from there, so this is the same compilation.
func TestRepoFunctionsBuild(t *testing.T) {
	goTool := requireTool(t, "go")
	fns := loadRepoTemplate(t).Functions()
	for _, id := range slices.Sorted(maps.Keys(fns)) {
		f := fns[id]
		t.Run(id, func(t *testing.T) {
			pkg := "./" + f.CodeURI
			if info, err := os.Stat(filepath.Join(repoRoot, f.CodeURI)); err != nil || !info.IsDir() {
				t.Fatalf("CodeUri %s is not a directory: %v", f.CodeURI, err)
			}
			env := append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64")
			list := exec.CommandContext(t.Context(), goTool, "list", "-tags", "lambda.norpc", "-f", "{{.Name}}", pkg)
			list.Dir, list.Env = repoRoot, env
			out, err := list.CombinedOutput()
			if err != nil {
				t.Fatalf("go list %s: %v\n%s", pkg, err, out)
			}
			if name := strings.TrimSpace(string(out)); name != "main" {
				t.Fatalf("%s is package %q, want main", pkg, name)
			}
			build := exec.CommandContext(t.Context(), goTool, "build", "-tags", "lambda.norpc", "-o", os.DevNull, pkg)
			build.Dir, build.Env = repoRoot, env
			if out, err := build.CombinedOutput(); err != nil {
				t.Fatalf("go build %s: %v\n%s", pkg, err, out)
			}
		})
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
			for name := range f.Environment {
				if slices.Contains(required, name) {
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
	tpl := loadRepoTemplate(t)
	values := standInValues(tpl)
	for _, id := range config.Functions() {
		t.Run(id, func(t *testing.T) {
			env := map[string]string{}
			for name, tmpl := range tpl.Functions()[id].Environment {
				v, err := Resolve(tmpl, values)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				env[name] = v
			}
			if _, err := config.Load(id, func(k string) string { return env[k] }); err != nil {
				t.Errorf("config.Load with the template's defaults: %v", err)
			}
		})
	}
}

// standInValues gives every parameter its default and every resource (and
// the attributes the template uses) a recognisable fake value.
func standInValues(tpl *Template) map[string]string {
	values := map[string]string{
		"AWS::Region":    "eu-west-1",
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
		},
		config.BroadcastFunction: {
			config.EnvConnectionsTable:   "${ConnectionsTable}",
			config.EnvManagementEndpoint: "https://${WebSocketApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${StageName}",
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

func TestRepoHTTPRoutes(t *testing.T) {
	fns := loadRepoTemplate(t).Functions()
	want := map[string][]HTTPRoute{
		config.ItemsReadFunction: {
			{Method: "ANY", Path: "/rooms/{room}/items"},
			{Method: "GET", Path: "/rooms/{room}/items"},
			{Method: "ANY", Path: "/rooms/{room}/items/{id}"},
			{Method: "GET", Path: "/rooms/{room}/items/{id}"},
		},
		config.ItemsWriteFunction: {
			{Method: "DELETE", Path: "/rooms/{room}/items/{id}"},
			{Method: "PUT", Path: "/rooms/{room}/items/{id}"},
		},
		config.ConnectionFunction: nil,
		config.BroadcastFunction:  nil,
	}
	seen := map[HTTPRoute]string{}
	for id, routes := range want {
		var got []HTTPRoute
		for _, r := range fns[id].HTTPRoutes {
			if r.API != "HttpApi" {
				t.Errorf("%s route %s %s is on API %q, want HttpApi", id, r.Method, r.Path, r.API)
			}
			key := HTTPRoute{Method: r.Method, Path: r.Path}
			if other, dup := seen[key]; dup {
				t.Errorf("route %s %s on both %s and %s", r.Method, r.Path, other, id)
			}
			seen[key] = id
			got = append(got, key)
		}
		if !reflect.DeepEqual(got, routes) {
			t.Errorf("%s routes\n got %v\nwant %v", id, got, routes)
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
		},
	}
	if !reflect.DeepEqual(tables, want) {
		t.Errorf("Tables()\n got %+v\nwant %+v", tables, want)
	}
}

// TestRepoLeastPrivilege holds each function's inline policy to what its
// code needs: every action in the allowed set, nothing outside it, no
// wildcard resource, no managed policy or SAM policy template.
func TestRepoLeastPrivilege(t *testing.T) {
	tpl := loadRepoTemplate(t)
	tests := []struct {
		function string
		required []string // each must be granted
		allowed  []string // beyond required, may be granted
	}{
		{
			function: config.ConnectionFunction,
			required: []string{"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
				"dynamodb:Query", "dynamodb:BatchWriteItem", "execute-api:ManageConnections"},
			allowed: []string{"dynamodb:ConditionCheckItem"},
		},
		{
			function: config.BroadcastFunction,
			required: []string{"dynamodb:Query", "dynamodb:DeleteItem", "execute-api:ManageConnections"},
			allowed:  []string{"dynamodb:GetItem", "dynamodb:BatchWriteItem"},
		},
		{
			function: config.ItemsReadFunction,
			required: []string{"dynamodb:GetItem", "dynamodb:Query"},
		},
		{
			function: config.ItemsWriteFunction,
			required: []string{"dynamodb:GetItem", "dynamodb:UpdateItem", "sns:Publish"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.function, func(t *testing.T) {
			granted, err := inlineActions(tpl, tc.function)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range tc.required {
				if !slices.Contains(granted, a) {
					t.Errorf("%s not granted", a)
				}
			}
			for _, a := range granted {
				if !slices.Contains(tc.required, a) && !slices.Contains(tc.allowed, a) {
					t.Errorf("%s granted but not needed", a)
				}
			}
		})
	}
}

// inlineActions lists the actions of a function's inline policy statements,
// rejecting anything it cannot hold to least privilege.
func inlineActions(tpl *Template, function string) ([]string, error) {
	r, ok := tpl.resources[function]
	if !ok {
		return nil, fmt.Errorf("%s not in template", function)
	}
	if _, ok := r.Properties["Role"]; ok {
		return nil, errors.New("a Role is set: the inline policies are not the whole story")
	}
	policies, ok := r.Properties["Policies"].([]any)
	if !ok {
		return nil, errors.New("Policies is not a list")
	}
	var actions []string
	for _, p := range policies {
		doc, ok := p.(map[string]any)
		statements, sok := doc["Statement"].([]any)
		if !ok || !sok || len(doc) != 1 {
			return nil, errors.New("policy entry is not an inline {Statement: […]} (managed policy or SAM template?)")
		}
		for _, s := range statements {
			st, _ := s.(map[string]any)
			if st["Effect"] != "Allow" {
				continue
			}
			for _, res := range listOf(st["Resource"]) {
				if res == "*" {
					return nil, errors.New("statement with Resource *")
				}
			}
			for _, a := range listOf(st["Action"]) {
				s, ok := a.(string)
				if !ok || strings.Contains(s, "*") {
					return nil, fmt.Errorf("action %s is not a single named action", render(a))
				}
				actions = append(actions, s)
			}
		}
	}
	return actions, nil
}

func listOf(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return []any{v}
}

// TestRepoCfnLint runs cfn-lint with the informational rules on too, and
// wants no finding at all.
func TestRepoCfnLint(t *testing.T) {
	cfnLint := requireTool(t, "cfn-lint")
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
	python := requireTool(t, "python3")
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
`
	cmd := exec.CommandContext(t.Context(), python, "-c", script, "samconfig.toml")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("samconfig.toml: %v\n%s", err, out)
	}
}
