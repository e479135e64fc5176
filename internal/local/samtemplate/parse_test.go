package samtemplate

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeYAMLIntrinsics(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want any
	}{
		{"ref", "a: !Ref Foo", map[string]any{"a": map[string]any{"Ref": "Foo"}}},
		{"ref quoted pseudo parameter", "a: !Ref 'AWS::Region'", map[string]any{"a": map[string]any{"Ref": "AWS::Region"}}},
		{"getatt short form", "a: !GetAtt Table.Arn", map[string]any{"a": map[string]any{"Fn::GetAtt": []any{"Table", "Arn"}}}},
		{"getatt dotted attribute", "a: !GetAtt Db.Endpoint.Address", map[string]any{"a": map[string]any{"Fn::GetAtt": []any{"Db", "Endpoint.Address"}}}},
		{"getatt list form", "a: !GetAtt [Table, Arn]", map[string]any{"a": map[string]any{"Fn::GetAtt": []any{"Table", "Arn"}}}},
		{"sub string", "a: !Sub 'x-${Y}'", map[string]any{"a": map[string]any{"Fn::Sub": "x-${Y}"}}},
		{
			"sub with variables and nested tag",
			"a: !Sub\n  - 'x-${Y}'\n  - Y: !Ref Z\n",
			map[string]any{"a": map[string]any{"Fn::Sub": []any{"x-${Y}", map[string]any{"Y": map[string]any{"Ref": "Z"}}}}},
		},
		{
			"if in flow sequence",
			"a: !If [IsProd, !Ref A, !Ref 'AWS::NoValue']",
			map[string]any{"a": map[string]any{"Fn::If": []any{"IsProd", map[string]any{"Ref": "A"}, map[string]any{"Ref": "AWS::NoValue"}}}},
		},
		{"join", "a: !Join ['', [x, !Ref Y]]", map[string]any{"a": map[string]any{"Fn::Join": []any{"", []any{"x", map[string]any{"Ref": "Y"}}}}}},
		{"long form untouched", "a:\n  Fn::GetAtt: [T, Arn]", map[string]any{"a": map[string]any{"Fn::GetAtt": []any{"T", "Arn"}}}},
		{"standard tag applies", "a: !!str 5", map[string]any{"a": "5"}},
		{"scalars", "a: 5\nb: '5'\nc: true\nd: 2h10m\ne:\nf: 1.5", map[string]any{"a": uint64(5), "b": "5", "c": true, "d": "2h10m", "e": nil, "f": 1.5}},
		{"literal block", "a: |\n  line\n", map[string]any{"a": "line\n"}},
		{"sequence of mappings", "a:\n  - x: 1\n  - y: !Ref Q", map[string]any{"a": []any{map[string]any{"x": uint64(1)}, map[string]any{"y": map[string]any{"Ref": "Q"}}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeYAML([]byte(tc.src))
			if err != nil {
				t.Fatalf("decodeYAML: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("decodeYAML(%q)\n got %#v\nwant %#v", tc.src, got, tc.want)
			}
		})
	}
}

func TestDecodeYAMLRejects(t *testing.T) {
	tests := []struct {
		name        string
		src         string
		unsupported bool
	}{
		{"anchor and alias", "a: &x 1\nb: *x", true},
		{"merge key", "a: {x: 1}\nb:\n  <<: {y: 2}", true},
		{"unknown tag", "a: !Reff Foo", true},
		{"two documents", "a: 1\n---\nb: 2", true},
		{"duplicate key", "a: 1\na: 2", false},
		{"getatt without attribute", "a: !GetAtt Table", false},
		{"syntax error", "a: [1, 2", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeYAML([]byte(tc.src))
			if err == nil {
				t.Fatalf("decodeYAML(%q) succeeded, want an error", tc.src)
			}
			if got := errors.Is(err, ErrUnsupportedYAML); got != tc.unsupported {
				t.Errorf("errors.Is(%v, ErrUnsupportedYAML) = %v, want %v", err, got, tc.unsupported)
			}
		})
	}
}

func TestRender(t *testing.T) {
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"literal", "plain", "plain"},
		{"literal dollar brace is escaped", "a${b}", "a${!b}"},
		{"number", uint64(32), "32"},
		{"negative number", int64(-1), "-1"},
		{"float", 1.5, "1.5"},
		{"bool", true, "true"},
		{"ref", map[string]any{"Ref": "ConnectionsTable"}, "${ConnectionsTable}"},
		{"pseudo parameter", map[string]any{"Ref": "AWS::Region"}, "${AWS::Region}"},
		{"getatt", map[string]any{"Fn::GetAtt": []any{"Q", "Arn"}}, "${Q.Arn}"},
		{"sub", map[string]any{"Fn::Sub": "https://${Api}.x/${Stage}"}, "https://${Api}.x/${Stage}"},
		{
			"sub with variables",
			map[string]any{"Fn::Sub": []any{"${A}-${B}-${!C}", map[string]any{"A": map[string]any{"Ref": "R"}, "B": "lit"}}},
			"${R}-lit-${!C}",
		},
		{"join", map[string]any{"Fn::Join": []any{"/", []any{"integrations", map[string]any{"Ref": "I"}}}}, "integrations/${I}"},
		{"unsupported intrinsic", map[string]any{"Fn::If": []any{"C", "a", "b"}}, "${Fn::If}"},
		{"malformed ref", map[string]any{"Ref": []any{"x"}}, "${Ref}"},
		{"plain map", map[string]any{"a": 1, "b": 2}, "${?}"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := render(tc.in); got != tc.want {
				t.Errorf("render(%#v) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	values := map[string]string{"Api": "abc123", "AWS::Region": "eu-west-1", "Stage": "prod", "Empty": ""}
	tests := []struct {
		name    string
		tmpl    string
		want    string
		missing bool
	}{
		{"no placeholders", "plain", "plain", false},
		{"placeholders", "https://${Api}.execute-api.${AWS::Region}.amazonaws.com/${Stage}", "https://abc123.execute-api.eu-west-1.amazonaws.com/prod", false},
		{"empty value", "[${Empty}]", "[]", false},
		{"escape becomes literal", "${!Api}-${Api}", "${Api}-abc123", false},
		{"unterminated is literal", "a${Api", "a${Api", false},
		{"missing", "${Api}/${Nope}", "", true},
		{"unsupported intrinsic", "${Fn::If}", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Resolve(tc.tmpl, values)
			if tc.missing {
				if !errors.Is(err, ErrUnresolved) {
					t.Fatalf("Resolve(%q) = %q, %v; want ErrUnresolved", tc.tmpl, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("Resolve(%q) = %q, %v; want %q", tc.tmpl, got, err, tc.want)
			}
		})
	}
}

func TestRenderResolveRoundTrip(t *testing.T) {
	// A literal that looks like a placeholder survives render then Resolve.
	for _, lit := range []string{"a${b}c", "${!x}", "no braces", "$", "${", "${a${b}", "}${x}{"} {
		got, err := Resolve(render(lit), nil)
		if err != nil || got != lit {
			t.Errorf("Resolve(render(%q)) = %q, %v", lit, got, err)
		}
	}
}

func TestMergeGlobals(t *testing.T) {
	tests := []struct {
		name          string
		global, local any
		want          any
	}{
		{"scalar overridden", uint64(10), uint64(60), uint64(60)},
		{"scalar inherited", uint64(10), nil, uint64(10)},
		{"lists appended", []any{"a"}, []any{"b"}, []any{"a", "b"}},
		{
			"maps merged deeply",
			map[string]any{"Environment": map[string]any{"Variables": map[string]any{"A": "1", "B": "g"}}, "Timeout": uint64(10)},
			map[string]any{"Environment": map[string]any{"Variables": map[string]any{"B": "f", "C": "3"}}},
			map[string]any{"Environment": map[string]any{"Variables": map[string]any{"A": "1", "B": "f", "C": "3"}}, "Timeout": uint64(10)},
		},
		{"no globals", map[string]any(nil), map[string]any{"A": "1"}, map[string]any{"A": "1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := mergeGlobals(tc.global, tc.local); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("mergeGlobals = %#v, want %#v", got, tc.want)
			}
		})
	}
}

const inlineFunctions = `
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: provided.al2023
    Environment:
      Variables:
        SHARED: from-globals
        OVERRIDDEN: from-globals
Resources:
  Topic:
    Type: AWS::SNS::Topic
  Fn:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: go1.x
    Properties:
      CodeUri: cmd/fn
      Runtime: provided.al2
      Environment:
        Variables:
          OVERRIDDEN: from-function
          TOPIC: !Ref Topic
          NUMBER: 7
      Events:
        Catchall:
          Type: HttpApi
        Put:
          Type: HttpApi
          Properties:
            Method: put
            Path: /b
        Get:
          Type: HttpApi
          Properties:
            ApiId: !Ref Api
            Method: GET
            Path: /a
        Ref:
          Type: SNS
          Properties:
            Topic: !Ref Topic
        Literal:
          Type: SNS
          Properties:
            Topic: arn:aws:sns:eu-west-1:123456789012:other
`

func TestFunctionsInline(t *testing.T) {
	tpl, err := Parse([]byte(inlineFunctions))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	fns := tpl.Functions()
	if len(fns) != 1 {
		t.Fatalf("Functions() = %v, want only Fn", fns)
	}
	want := Function{
		LogicalID:   "Fn",
		CodeURI:     "cmd/fn",
		Runtime:     "provided.al2",
		BuildMethod: "go1.x",
		Environment: map[string]string{
			"SHARED":     "from-globals",
			"OVERRIDDEN": "from-function",
			"TOPIC":      "${Topic}",
			"NUMBER":     "7",
		},
		HTTPRoutes: []HTTPRoute{
			{Method: "ANY", Path: "$default", Event: "Catchall"},
			{Method: "GET", Path: "/a", API: "Api", Event: "Get"},
			{Method: "PUT", Path: "/b", Event: "Put"},
		},
		SNSTopics: []string{"Topic", "arn:aws:sns:eu-west-1:123456789012:other"},
	}
	if got := fns["Fn"]; !reflect.DeepEqual(got, want) {
		t.Errorf("Functions()[Fn]\n got %+v\nwant %+v", got, want)
	}
	if got := tpl.Topics(); !reflect.DeepEqual(got, []string{"Topic"}) {
		t.Errorf("Topics() = %v", got)
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct{ name, src string }{
		{"not a mapping", "- a\n- b"},
		{"no resources", "Parameters: {}"},
		{"resource without type", "Resources:\n  X:\n    Properties: {}"},
		{"resource not a mapping", "Resources:\n  X: 5"},
		{"depends on a non-name", "Resources:\n  X:\n    Type: T\n    DependsOn: [{a: 1}]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse([]byte(tc.src)); !errors.Is(err, ErrInvalidTemplate) {
				t.Errorf("Parse = %v, want ErrInvalidTemplate", err)
			}
		})
	}
}

func TestParseDependsOn(t *testing.T) {
	tests := []struct {
		name, dependsOn string
		want            []string
	}{
		{"one name", "DependsOn: A", []string{"A"}},
		{"list", "DependsOn: [A, B]", []string{"A", "B"}},
		{"none", "Properties: {}", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tpl, err := Parse([]byte("Resources:\n  X:\n    Type: T\n    " + tc.dependsOn + "\n"))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := tpl.resources["X"].DependsOn; !reflect.DeepEqual(got, tc.want) {
				t.Errorf("DependsOn = %v, want %v", got, tc.want)
			}
		})
	}
}

// webSocketTemplate is a minimal WebSocket API; the tests below break one
// link of it at a time.
const webSocketTemplate = `
Resources:
  Fn:
    Type: AWS::Serverless::Function
  Api:
    Type: AWS::ApiGatewayV2::Api
    Properties:
      ProtocolType: WEBSOCKET
      RouteSelectionExpression: $request.body.type
  Integration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Api
      IntegrationType: AWS_PROXY
      IntegrationUri: !Sub arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${Fn.Arn}/invocations
  Connect:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: $connect
      Target: !Join [/, [integrations, !Ref Integration]]
  Echo:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: echo
      Target: !Sub integrations/${Integration}
      RouteResponseSelectionExpression: $default
  EchoResponse:
    Type: AWS::ApiGatewayV2::RouteResponse
    Properties:
      ApiId: !Ref Api
      RouteId: !Ref Echo
      RouteResponseKey: $default
  OtherApi:
    Type: AWS::ApiGatewayV2::Api
    Properties:
      ProtocolType: HTTP
  OtherRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref OtherApi
      RouteKey: GET /x
`

func TestWebSocketInline(t *testing.T) {
	tpl, err := Parse([]byte(webSocketTemplate))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	got, err := tpl.WebSocket()
	if err != nil {
		t.Fatalf("WebSocket: %v", err)
	}
	want := WebSocketAPI{
		LogicalID:                "Api",
		RouteSelectionExpression: "$request.body.type",
		Routes: map[string]WebSocketRoute{
			"$connect": {LogicalID: "Connect", Key: "$connect", Function: "Fn"},
			"echo":     {LogicalID: "Echo", Key: "echo", Function: "Fn", RouteResponseSelectionExpression: "$default", RouteResponse: true},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("WebSocket()\n got %+v\nwant %+v", got, want)
	}
}

func TestWebSocketBrokenLinks(t *testing.T) {
	tests := []struct {
		name     string
		old, new string
	}{
		{"no websocket api", "ProtocolType: WEBSOCKET", "ProtocolType: HTTP"},
		{"target not an integration", "Target: !Sub integrations/${Integration}", "Target: !Sub integrations/${Fn}"},
		{"target malformed", "Target: !Sub integrations/${Integration}", "Target: somewhere"},
		{"integration not proxy", "IntegrationType: AWS_PROXY", "IntegrationType: AWS"},
		{"uri without function", "${Fn.Arn}", "fixed"},
		{"uri names a non-function", "${Fn.Arn}", "${Api.Arn}"},
		{"duplicate route key", "RouteKey: echo", "RouteKey: $connect"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := replaceOnce(t, webSocketTemplate, tc.old, tc.new)
			tpl, err := Parse([]byte(src))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if _, err := tpl.WebSocket(); !errors.Is(err, ErrInvalidTemplate) {
				t.Errorf("WebSocket() error = %v, want ErrInvalidTemplate", err)
			}
		})
	}
}

func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("%q not in template", old)
	}
	return strings.Replace(s, old, new, 1)
}

func TestTablesInline(t *testing.T) {
	src := `
Resources:
  T:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub ${AWS::StackName}-t
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {AttributeName: k, AttributeType: N}
      KeySchema:
        - {AttributeName: k, KeyType: HASH}
      TimeToLiveSpecification: {AttributeName: ttl, Enabled: false}
`
	tpl, err := Parse([]byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := Table{
		LogicalID:     "T",
		TableName:     "${AWS::StackName}-t",
		HashKey:       KeyAttribute{Name: "k", Type: "N"},
		BillingMode:   "PAY_PER_REQUEST",
		KeySchemaSize: 1,
	}
	if got := tpl.Tables()["T"]; !reflect.DeepEqual(got, want) {
		t.Errorf("Tables()[T]\n got %+v\nwant %+v", got, want)
	}
}
