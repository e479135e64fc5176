package lambdatest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushgate/pushgate/internal/auth"
	"github.com/pushgate/pushgate/internal/config"
	"github.com/pushgate/pushgate/internal/domain"
)

// sampleSigningKey signs the tokens in the sample events (events/README.md
// says so: it is a sample, not a secret).
var sampleSigningKey = []byte("pushgate-sample-signing-key-not-a-secret")

// withField returns the JSON event raw with one field, at a dotted path,
// set to v (nil deletes it).
func withField(t *testing.T, raw []byte, path string, v any) []byte {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	keys := strings.Split(path, ".")
	m := ev
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			t.Fatalf("%s: no object %s", path, k)
		}
		m = next
	}
	if v == nil {
		delete(m, keys[len(keys)-1])
	} else {
		m[keys[len(keys)-1]] = v
	}
	out, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mintSample(t *testing.T, edit func(*auth.Token)) string {
	t.Helper()
	tok := auth.Token{Issuer: "pushgate", Audience: "pushgate", User: "rie-user", Join: []string{"demo"}, Write: []string{"demo"}, TTL: time.Hour}
	if edit != nil {
		edit(&tok)
	}
	s, err := auth.Mint(sampleSigningKey, tok)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rawInvoke runs event and returns the emulator's body: the response, or
// the function's error as {"errorMessage", "errorType"}.
func rawInvoke(t *testing.T, r *RIE, event []byte) []byte {
	t.Helper()
	status, body := r.Invoke(t, event)
	if status != http.StatusOK {
		t.Fatalf("emulator answered %d: %s", status, body)
	}
	return body
}

// testAuthorizerFunction runs the built authorizer, its key in (moto's)
// Secrets Manager, on the sample events and on broken tokens.
func testAuthorizerFunction(t *testing.T, a artifacts) {
	s := newStack(t)
	r := s.start(t, a, config.AuthorizerFunction)
	connect := readEvent(t, a.root, "authorizer-connect.json")
	httpEv := readEvent(t, a.root, "authorizer-http.json")

	t.Run("authorizer-connect.json", func(t *testing.T) {
		resp := invoke[events.APIGatewayCustomAuthorizerResponse](t, r, connect)
		st := resp.PolicyDocument.Statement
		if resp.PrincipalID != "sample-user" || len(st) != 1 || st[0].Effect != "Allow" ||
			st[0].Resource[0] != "arn:aws:execute-api:us-east-1:123456789012:k3w9x2v7qa/prod/$connect" {
			t.Fatalf("response %+v; want Allow for the sample's methodArn", resp)
		}
		p, err := auth.FromContext(resp.Context)
		if err != nil || p.User != "sample-user" || !p.CanJoin("game-7") || !p.CanWrite(sampleRoom) || p.CanWrite("other") {
			t.Fatalf("context %v: %+v, %v", resp.Context, p, err)
		}
	})
	t.Run("authorizer-http.json", func(t *testing.T) {
		resp := invoke[events.APIGatewayV2CustomAuthorizerSimpleResponse](t, r, httpEv)
		if !resp.IsAuthorized || resp.Context["user"] != "sample-user" {
			t.Fatalf("response %+v; want authorized with the sample user", resp)
		}
	})
	refused := []struct{ name, token string }{
		{"expired", mintSample(t, func(k *auth.Token) { k.Now = time.Now().Add(-2 * time.Hour) })},
		{"not yet valid", mintSample(t, func(k *auth.Token) { k.Now = time.Now().Add(time.Hour) })},
		{"forged", func() string {
			tok, _ := auth.Mint([]byte("an attacker's key, 32 bytes long"), auth.Token{Issuer: "pushgate", Audience: "pushgate", User: "x", TTL: time.Hour})
			return tok
		}()},
		{"wrong issuer", mintSample(t, func(k *auth.Token) { k.Issuer = "elsewhere" })},
		{"wrong audience", mintSample(t, func(k *auth.Token) { k.Audience = "another-app" })},
		{"alg none", "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + strings.Split(mintSample(t, nil), ".")[1] + "."},
		{"oversized", strings.Repeat("A", auth.MaxTokenBytes+1)},
	}
	for _, tc := range refused {
		t.Run("connect/"+tc.name, func(t *testing.T) {
			body := rawInvoke(t, r, withField(t, connect, "queryStringParameters.token", tc.token))
			var fnErr struct{ ErrorMessage string }
			if json.Unmarshal(body, &fnErr); fnErr.ErrorMessage != "Unauthorized" {
				t.Fatalf("answer %s; want the error Unauthorized (API Gateway's 401)", body)
			}
		})
		t.Run("http/"+tc.name, func(t *testing.T) {
			resp := invoke[events.APIGatewayV2CustomAuthorizerSimpleResponse](t, r, withField(t, httpEv, "headers.authorization", "Bearer "+tc.token))
			if resp.IsAuthorized {
				t.Fatalf("authorized %+v", resp)
			}
		})
	}

	// An Origin allow-list: the sample's origin is not on it.
	s.extra = map[string]string{config.EnvAllowedOrigins: "https://app.example.com"}
	strict := s.start(t, a, config.AuthorizerFunction)
	resp := invoke[events.APIGatewayCustomAuthorizerResponse](t, strict, connect)
	if len(resp.PolicyDocument.Statement) != 1 || resp.PolicyDocument.Statement[0].Effect != "Deny" {
		t.Fatalf("origin not allowed: %+v; want Deny (403)", resp)
	}
}

// testGrants: the built functions refuse what the authorizer context does
// not grant, and store nothing.
func testGrants(t *testing.T, a artifacts) {
	s := newStack(t)
	at := time.Now().Truncate(time.Millisecond)
	conn := s.start(t, a, config.ConnectionFunction)
	write := s.start(t, a, config.ItemsWriteFunction)

	t.Run("connect without an authorizer context", func(t *testing.T) {
		ev := withField(t, connectedAt(t, readEvent(t, a.root, "ws-connect.json"), at), "requestContext.authorizer", nil)
		resp := invoke[events.APIGatewayProxyResponse](t, conn, ev)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d %s, want 401", resp.StatusCode, resp.Body)
		}
		s.requireGone(t, sampleConnectionID)
	})
	t.Run("connect to a room outside the grants", func(t *testing.T) {
		ev := withField(t, connectedAt(t, readEvent(t, a.root, "ws-connect.json"), at), "queryStringParameters.room", "secret-room")
		resp := invoke[events.APIGatewayProxyResponse](t, conn, ev)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(resp.Body, domain.CodeForbidden) {
			t.Fatalf("status %d %s, want 403 forbidden", resp.StatusCode, resp.Body)
		}
		s.requireGone(t, sampleConnectionID)
	})
	t.Run("put to a room outside the grants", func(t *testing.T) {
		ev := readEvent(t, a.root, "http-put.json")
		ev = withField(t, ev, "pathParameters.room", "secret-room")
		ev = withField(t, ev, "rawPath", "/rooms/secret-room/items/note-1")
		ev = withField(t, ev, "requestContext.http.path", "/rooms/secret-room/items/note-1")
		resp := invoke[events.APIGatewayV2HTTPResponse](t, write, ev)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(resp.Body, domain.CodeForbidden) {
			t.Fatalf("status %d %s, want 403 forbidden", resp.StatusCode, resp.Body)
		}
		if evs, _ := published(t, s.notes); len(evs) != 0 {
			t.Fatalf("published %v", evs)
		}
	})
	t.Run("put without an authorizer context", func(t *testing.T) {
		ev := withField(t, readEvent(t, a.root, "http-put.json"), "requestContext.authorizer", nil)
		resp := invoke[events.APIGatewayV2HTTPResponse](t, write, ev)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d %s, want 401", resp.StatusCode, resp.Body)
		}
	})
}
