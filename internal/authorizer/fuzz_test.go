package authorizer_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/pushgate/pushgate/internal/auth"
)

// FuzzAuthorizer hands the authorizer any event. It never panics; a
// WebSocket policy allows only with a valid token, and an HTTP answer is
// authorized only with one; every context it hands on reads back as a
// Principal.
func FuzzAuthorizer(f *testing.F) {
	for _, name := range []string{"authorizer-connect.json", "authorizer-http.json"} {
		raw, err := os.ReadFile(filepath.Join("..", "..", "events", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte(`{"type":"REQUEST","methodArn":"arn","queryStringParameters":{"token":"x"}}`))
	f.Add([]byte(`{"version":"2.0","routeArn":"arn","headers":{"authorization":"Bearer "}}`))
	a, _ := newAuthorizer(f, nil, nil)
	f.Fuzz(func(t *testing.T, payload []byte) {
		out, err := a.Invoke(context.Background(), payload)
		if err != nil {
			return
		}
		raw, _ := json.Marshal(out)
		switch r := out.(type) {
		case events.APIGatewayCustomAuthorizerResponse:
			if _, err := auth.FromContext(r.Context); err != nil {
				t.Fatalf("policy %s with an unreadable context: %v", raw, err)
			}
		case events.APIGatewayV2CustomAuthorizerSimpleResponse:
			if r.IsAuthorized {
				if _, err := auth.FromContext(r.Context); err != nil {
					t.Fatalf("answer %s with an unreadable context: %v", raw, err)
				}
			}
		default:
			t.Fatalf("answer %T %s", out, raw)
		}
	})
}
