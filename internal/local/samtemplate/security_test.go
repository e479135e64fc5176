package samtemplate

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pushgate/pushgate/internal/testkit/testenv"
)

// statements walks every IAM statement anywhere in v (roles, queue and
// topic policies, whatever is added later).
func statements(v any, yield func(st map[string]any)) {
	switch x := v.(type) {
	case map[string]any:
		if list, ok := x["Statement"].([]any); ok {
			for _, s := range list {
				if st, ok := s.(map[string]any); ok {
					yield(st)
				}
			}
		}
		for _, e := range x {
			statements(e, yield)
		}
	case []any:
		for _, e := range x {
			statements(e, yield)
		}
	}
}

// securityProblems describes what issue 8 keeps out of the template: a
// wildcard action or a Resource of "*" in any statement, a Lambda
// permission without SourceArn, a function without a role of its own (SAM
// would generate one with AWSLambdaBasicExecutionRole), and storage or
// messaging without encryption at rest.
func securityProblems(tpl *Template) []string {
	var problems []string
	for _, id := range slices.Sorted(maps.Keys(tpl.resources)) {
		r := tpl.resources[id]
		statements(r.Properties, func(st map[string]any) {
			for _, a := range listOf(st["Action"]) {
				if strings.Contains(render(a), "*") {
					problems = append(problems, fmt.Sprintf("%s: wildcard action %s", id, render(a)))
				}
			}
			if _, ok := st["NotAction"]; ok {
				problems = append(problems, fmt.Sprintf("%s: NotAction", id))
			}
			for _, res := range listOf(st["Resource"]) {
				if render(res) == "*" {
					problems = append(problems, fmt.Sprintf("%s: Resource \"*\"", id))
				}
			}
		})
		p := r.Properties
		switch r.Type {
		case "AWS::Lambda::Permission":
			if _, ok := p["SourceArn"]; !ok {
				problems = append(problems, fmt.Sprintf("%s: a Lambda permission without SourceArn", id))
			}
		case TypeFunction, TypeLambdaFunction:
			fn, _ := mergeGlobals(tpl.globalFunction, p).(map[string]any)
			if _, ok := fn["Role"]; !ok {
				problems = append(problems, fmt.Sprintf("%s: no Role; SAM's generated role carries AWSLambdaBasicExecutionRole", id))
			}
			if _, ok := fn["Policies"]; ok {
				problems = append(problems, fmt.Sprintf("%s: Policies would make SAM generate a role", id))
			}
		case "AWS::IAM::Role":
			if _, ok := p["ManagedPolicyArns"]; ok {
				problems = append(problems, fmt.Sprintf("%s: ManagedPolicyArns", id))
			}
		case TypeTable:
			sse, _ := p["SSESpecification"].(map[string]any)
			if !truthy(sse["SSEEnabled"]) {
				problems = append(problems, fmt.Sprintf("%s: SSESpecification.SSEEnabled is not true", id))
			}
		case TypeTopic:
			if _, ok := p["KmsMasterKeyId"]; !ok {
				problems = append(problems, fmt.Sprintf("%s: no KmsMasterKeyId", id))
			}
		case "AWS::SQS::Queue":
			if !truthy(p["SqsManagedSseEnabled"]) && p["KmsMasterKeyId"] == nil {
				problems = append(problems, fmt.Sprintf("%s: neither SqsManagedSseEnabled nor KmsMasterKeyId", id))
			}
		}
	}
	return problems
}

// TestRepoSecurity holds template.yaml, as written and as each parameter
// set deploys it, to securityProblems.
func TestRepoSecurity(t *testing.T) {
	written := loadWrittenTemplate(t)
	for _, p := range securityProblems(written) {
		t.Errorf("as written: %s", p)
	}
	for _, mode := range authModes {
		for _, p := range securityProblems(resolveWith(t, written, mode.params)) {
			t.Errorf("%s: %s", mode.name, p)
		}
	}
}

// TestSecurityCheckCatches shows the check failing on each shape it keeps
// out.
func TestSecurityCheckCatches(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(repoRoot, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, old, new string }{
		{"wildcard action", "Action: sns:Publish", "Action: sns:*"},
		{"wildcard resource", "Resource: !Ref PushTopic", "Resource: '*'"},
		{"a permission without SourceArn", "      SourceArn: !Sub arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${HttpApi}/*\n", ""},
		{"SAM's generated role", "      Role: !GetAtt ItemsReadFunctionRole.Arn\n", ""},
		{"a managed policy", "      Policies:\n        - PolicyName: ItemsReadFunction\n", "      ManagedPolicyArns:\n        - arn:aws:iam::aws:policy/AdministratorAccess\n      Policies:\n        - PolicyName: ItemsReadFunction\n"},
		{"an unencrypted table", "      SSESpecification:\n        SSEEnabled: true\n", ""},
		{"an unencrypted topic", "      KmsMasterKeyId: alias/aws/sns\n", ""},
		{"an unencrypted queue", "      SqsManagedSseEnabled: true\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tpl, err := Parse([]byte(replaceOnce(t, string(src), tc.old, tc.new)))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if problems := securityProblems(tpl); len(problems) == 0 {
				t.Fatal("no problem found")
			} else {
				t.Logf("found: %v", problems)
			}
		})
	}
}

// samPython is the interpreter of the SAM CLI on PATH, whose libraries
// (samtranslator, samcli) the checks below use as `sam` itself would.
func samPython(t *testing.T) string {
	t.Helper()
	sam := testenv.Required(t, "sam")
	real, err := filepath.EvalSymlinks(sam)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"python3", "python"} {
		if p := filepath.Join(filepath.Dir(real), name); fileExists(p) {
			return p
		}
	}
	testenv.Unavailable(t, "no python beside %s", real)
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// TestRepoGuidedDeployAsksNoAuthQuestion runs the check `sam deploy
// --guided` runs before it asks "<function> has no authentication. Is this
// okay?" (and aborts on the default answer), on the template with its
// defaults, and on a variant with an unauthenticated SAM HttpApi event to
// show the check would ask.
func TestRepoGuidedDeployAsksNoAuthQuestion(t *testing.T) {
	const script = `
import json, sys
from samcli.commands.deploy.auth_utils import auth_per_resource
from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider
stacks, _ = SamLocalStackProvider.get_stacks(sys.argv[1], parameter_overrides={}, global_parameter_overrides={"AWS::Region": "us-east-1"})
print(json.dumps(auth_per_resource(stacks)))
`
	src, err := os.ReadFile(filepath.Join(repoRoot, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	open := replaceOnce(t, string(src), "      Role: !GetAtt ItemsReadFunctionRole.Arn\n",
		"      Role: !GetAtt ItemsReadFunctionRole.Arn\n      Events:\n        Open:\n          Type: HttpApi\n")
	for _, tc := range []struct {
		name, src string
		asks      bool
	}{{"template.yaml", string(src), false}, {"with an open HttpApi event", open, true}} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "template.yaml")
			if err := os.WriteFile(path, []byte(tc.src), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.CommandContext(t.Context(), samPython(t), "-c", script, path)
			cmd.Env = append(os.Environ(), "SAM_CLI_TELEMETRY=0")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("auth_per_resource: %v\n%s", err, out)
			}
			var answers [][]any
			if err := json.Unmarshal(out, &answers); err != nil {
				t.Fatalf("%s: %v", out, err)
			}
			asks := slices.ContainsFunc(answers, func(a []any) bool { return len(a) == 2 && a[1] == false })
			if asks != tc.asks {
				t.Errorf("sam deploy --guided checks %v: asks %v, want %v", answers, asks, tc.asks)
			}
		})
	}
}

// TestRepoTransformedTemplate runs SAM's own transform on template.yaml
// and checks the resources SAM generates (the SNS subscription's
// permission, roles) against securityProblems too: a SAM property can add
// what the written template does not show.
func TestRepoTransformedTemplate(t *testing.T) {
	const script = `
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse
class NoManagedPolicies:
    def load(self):
        return {}
with open(sys.argv[1]) as f:
    doc = yaml_parse(f.read())
# As sam package leaves it: the code uploaded.
doc["Globals"]["Function"]["CodeUri"] = "s3://bucket/code.zip"
print(json.dumps(transform(doc, {}, NoManagedPolicies())))
`
	cmd := exec.CommandContext(t.Context(), samPython(t), "-c", script, "template.yaml")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "AWS_DEFAULT_REGION=us-east-1")
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("transform: %v\n%s", err, stderr)
	}
	tpl, err := Parse(out)
	if err != nil {
		t.Fatalf("parse the transformed template: %v", err)
	}
	for _, p := range securityProblems(tpl) {
		t.Error(p)
	}
	permissions := 0
	for _, r := range tpl.resources {
		if r.Type == "AWS::Lambda::Permission" {
			permissions++
		}
	}
	// Written: the WebSocket and HTTP integrations and both authorizers;
	// generated: the SNS subscription's and the outbox schedule's.
	if permissions != 7 {
		t.Errorf("%d Lambda permissions after the transform, want 7", permissions)
	}
}
