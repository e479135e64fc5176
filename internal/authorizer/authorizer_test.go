package authorizer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushgate/pushgate/internal/auth"
	"github.com/pushgate/pushgate/internal/authorizer"
)

// sampleKey signs the tokens of the sample events in events/ (documented
// in events/README.md: a sample, not a secret).
var sampleKey = []byte("pushgate-sample-signing-key-not-a-secret")

func sample(t *testing.T, file string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "events", file))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func newAuthorizer(t testing.TB, origins []string, keys auth.Keys) (*authorizer.Authorizer, *bytes.Buffer) {
	t.Helper()
	if keys == nil {
		keys = auth.StaticKeys(sampleKey)
	}
	v, err := auth.NewVerifier(auth.VerifierConfig{Keys: keys, Issuer: "pushgate", Audience: "pushgate", Algorithms: []string{"HS256"}})
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	return authorizer.New(v, origins, slog.New(slog.NewJSONHandler(logs, nil))), logs
}

func mint(t *testing.T, key []byte, edit func(*auth.Token)) string {
	t.Helper()
	tok := auth.Token{Issuer: "pushgate", Audience: "pushgate", User: "ann", Join: []string{"demo"}, Write: []string{"demo"}, TTL: time.Hour}
	if edit != nil {
		edit(&tok)
	}
	s, err := auth.Mint(key, tok)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func invoke(t *testing.T, a *authorizer.Authorizer, ev map[string]any) (json.RawMessage, error) {
	t.Helper()
	raw, _ := json.Marshal(ev)
	out, err := a.Invoke(context.Background(), raw)
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(out)
	return b, nil
}

// connectWith is the sample $connect authorizer event with token (and,
// when origin is not "-", that Origin header).
func connectWith(t *testing.T, token, origin string) map[string]any {
	ev := sample(t, "authorizer-connect.json")
	ev["queryStringParameters"].(map[string]any)["token"] = token
	headers := ev["headers"].(map[string]any)
	switch origin {
	case "-":
	case "":
		delete(headers, "Origin")
	default:
		headers["Origin"] = origin
	}
	return ev
}

func httpWith(t *testing.T, authorization string) map[string]any {
	ev := sample(t, "authorizer-http.json")
	ev["headers"].(map[string]any)["authorization"] = authorization
	ev["identitySource"] = []string{authorization}
	return ev
}

func TestWebSocketConnect(t *testing.T) {
	good := mint(t, sampleKey, nil)
	tests := []struct {
		name    string
		origins []string
		ev      func(t *testing.T) map[string]any
		// effect is Allow or Deny; "" wants ErrUnauthorized.
		effect string
	}{
		{"the sample event", nil, func(t *testing.T) map[string]any { return sample(t, "authorizer-connect.json") }, "Allow"},
		{"a fresh token", nil, func(t *testing.T) map[string]any { return connectWith(t, good, "-") }, "Allow"},
		{"expired", nil, func(t *testing.T) map[string]any {
			return connectWith(t, mint(t, sampleKey, func(k *auth.Token) { k.Now = time.Now().Add(-2 * time.Hour) }), "-")
		}, ""},
		{"not yet valid", nil, func(t *testing.T) map[string]any {
			return connectWith(t, mint(t, sampleKey, func(k *auth.Token) { k.Now = time.Now().Add(time.Hour) }), "-")
		}, ""},
		{"forged with another key", nil, func(t *testing.T) map[string]any {
			return connectWith(t, mint(t, []byte("an attacker's key of 32 bytes..."), nil), "-")
		}, ""},
		{"wrong issuer", nil, func(t *testing.T) map[string]any {
			return connectWith(t, mint(t, sampleKey, func(k *auth.Token) { k.Issuer = "someone-else" }), "-")
		}, ""},
		{"wrong audience", nil, func(t *testing.T) map[string]any {
			return connectWith(t, mint(t, sampleKey, func(k *auth.Token) { k.Audience = "other-app" }), "-")
		}, ""},
		{"alg none", nil, func(t *testing.T) map[string]any {
			parts := strings.Split(good, ".")
			return connectWith(t, "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."+parts[1]+".", "-")
		}, ""},
		{"garbage", nil, func(t *testing.T) map[string]any { return connectWith(t, "not-a-token", "-") }, ""},
		{"oversized", nil, func(t *testing.T) map[string]any { return connectWith(t, strings.Repeat("x", 9000), "-") }, ""},
		{"empty (API Gateway would have answered 401 itself)", nil, func(t *testing.T) map[string]any { return connectWith(t, "", "-") }, ""},
		{"an allowed origin", []string{"https://demo.example.com"}, func(t *testing.T) map[string]any { return connectWith(t, good, "-") }, "Allow"},
		{"an origin not allowed", []string{"https://app.example.com"}, func(t *testing.T) map[string]any { return connectWith(t, good, "https://evil.example") }, "Deny"},
		{"no origin with an allow-list", []string{"https://app.example.com"}, func(t *testing.T) map[string]any { return connectWith(t, good, "") }, "Deny"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, logs := newAuthorizer(t, tc.origins, nil)
			ev := tc.ev(t)
			out, err := invoke(t, a, ev)
			if tc.effect == "" {
				if !errors.Is(err, authorizer.ErrUnauthorized) || err.Error() != "Unauthorized" {
					t.Fatalf("Invoke = %s, %v; want the error Unauthorized (401)", out, err)
				}
				if !strings.Contains(logs.String(), `"decision":"unauthorized"`) {
					t.Errorf("log: %s", logs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var resp events.APIGatewayCustomAuthorizerResponse
			if err := json.Unmarshal(out, &resp); err != nil {
				t.Fatal(err)
			}
			st := resp.PolicyDocument.Statement
			if len(st) != 1 || st[0].Effect != tc.effect || st[0].Resource[0] != ev["methodArn"] || st[0].Action[0] != "execute-api:Invoke" {
				t.Fatalf("policy %+v, want %s on %s", resp.PolicyDocument, tc.effect, ev["methodArn"])
			}
			p, err := auth.FromContext(resp.Context)
			if err != nil || p.User != resp.PrincipalID {
				t.Fatalf("context %v: %+v, %v", resp.Context, p, err)
			}
			if n := strings.Count(logs.String(), `"msg":"authorizer"`); n != 1 {
				t.Errorf("%d summary lines: %s", n, logs)
			}
		})
	}
}

func TestHTTP(t *testing.T) {
	good := mint(t, sampleKey, nil)
	tests := []struct {
		name          string
		authorization string
		authorized    bool
	}{
		{"the sample token", sample(t, "authorizer-http.json")["headers"].(map[string]any)["authorization"].(string), true},
		{"Bearer", "Bearer " + good, true},
		{"bearer in lower case", "bearer " + good, true},
		{"Basic", "Basic dXNlcjpwYXNz", false},
		{"no scheme", good, false},
		{"Bearer and nothing", "Bearer ", false},
		{"expired", "Bearer " + mint(t, sampleKey, func(k *auth.Token) { k.Now = time.Now().Add(-2 * time.Hour) }), false},
		{"forged", "Bearer " + mint(t, []byte("an attacker's key of 32 bytes..."), nil), false},
		{"wrong audience", "Bearer " + mint(t, sampleKey, func(k *auth.Token) { k.Audience = "x" }), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := newAuthorizer(t, nil, nil)
			out, err := invoke(t, a, httpWith(t, tc.authorization))
			if err != nil {
				t.Fatal(err)
			}
			var resp events.APIGatewayV2CustomAuthorizerSimpleResponse
			if err := json.Unmarshal(out, &resp); err != nil {
				t.Fatal(err)
			}
			if resp.IsAuthorized != tc.authorized {
				t.Fatalf("isAuthorized = %v, want %v", resp.IsAuthorized, tc.authorized)
			}
			if tc.authorized {
				if _, err := auth.FromContext(resp.Context); err != nil {
					t.Fatalf("context %v: %v", resp.Context, err)
				}
			} else if resp.Context != nil {
				t.Fatalf("a refusal carries a context: %v", resp.Context)
			}
		})
	}
}

// TestKeysUnavailableIsAnError: API Gateway answers an authorizer error
// with 500, which a client may retry, rather than 401, which says its
// token is bad.
func TestKeysUnavailableIsAnError(t *testing.T) {
	down := auth.NewHMACKeys(func(context.Context) ([][]byte, error) { return nil, errors.New("secrets manager down") })
	a, logs := newAuthorizer(t, nil, down)
	if _, err := invoke(t, a, sample(t, "authorizer-connect.json")); err == nil || errors.Is(err, authorizer.ErrUnauthorized) {
		t.Fatalf("WebSocket: %v, want an error other than Unauthorized", err)
	}
	if _, err := invoke(t, a, sample(t, "authorizer-http.json")); err == nil {
		t.Fatal("HTTP: no error")
	}
	if !strings.Contains(logs.String(), `"decision":"error"`) {
		t.Errorf("log: %s", logs)
	}
}

func TestUnknownEvents(t *testing.T) {
	a, _ := newAuthorizer(t, nil, nil)
	for _, raw := range []string{`not json`, `{}`, `{"type":"TOKEN","authorizationToken":"x","methodArn":"arn"}`, `[]`, `{"version":"2.0"}`} {
		if out, err := a.Invoke(context.Background(), json.RawMessage(raw)); err == nil {
			t.Errorf("Invoke(%s) = %v, want an error", raw, out)
		}
	}
}
