package mgmtapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/apigatewaymanagementapi"
)

// sdkPost is PostToConnection through the SDK's own client: the reference
// the thin client is held to, and the baseline of the post benchmark.
type sdkPost struct {
	api *apigatewaymanagementapi.Client
}

func newSDKPost(cfg aws.Config, endpoint string) *sdkPost {
	return &sdkPost{apigatewaymanagementapi.NewFromConfig(cfg, func(o *apigatewaymanagementapi.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.Retryer = aws.NopRetryer{}
	})}
}

func (p *sdkPost) Post(ctx context.Context, id string, frame []byte) error {
	_, err := p.api.PostToConnection(ctx, &apigatewaymanagementapi.PostToConnectionInput{ConnectionId: aws.String(id), Data: frame})
	return err
}

// seen is one request as the server got it.
type seen struct {
	method, path, contentType, signedHeaders, authorization, amzDate string
	verified                                                         string // the Authorization the server computes
	body                                                             []byte
}

// TestRequestsAreTheSDKs: for ids an API Gateway can hand out, the thin
// client sends what the SDK's client sends (method, escaped path, content
// type, signed headers but the SDK's own, body), and the server, signing again what it
// received, computes the very Authorization header each sent, as API
// Gateway checks it.
func TestRequestsAreTheSDKs(t *testing.T) {
	cfg := testConfig()
	var mu sync.Mutex
	var got []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s := seen{
			method: r.Method, path: r.URL.EscapedPath(), contentType: r.Header.Get("Content-Type"),
			authorization: r.Header.Get("Authorization"), amzDate: r.Header.Get("X-Amz-Date"), body: body,
		}
		_, signed, _ := strings.Cut(s.authorization, "SignedHeaders=")
		s.signedHeaders, _, _ = strings.Cut(signed, ",")
		// Sign again, from what arrived, only the headers the client signed.
		again, _ := http.NewRequest(r.Method, "http://"+r.Host+r.RequestURI, bytes.NewReader(body))
		for _, h := range strings.Split(s.signedHeaders, ";") {
			if h != "host" {
				again.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
			}
		}
		at, _ := time.Parse("20060102T150405Z", s.amzDate)
		creds, _ := cfg.Credentials.Retrieve(r.Context())
		sum := sha256.Sum256(body)
		if err := v4.NewSigner().SignHTTP(r.Context(), creds, again, hex.EncodeToString(sum[:]), "execute-api", cfg.Region, at); err == nil {
			s.verified = again.Header.Get("Authorization")
		}
		mu.Lock()
		got = append(got, s)
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	thin := newClient(t, srv.URL+"/prod", 2)
	sdk := newSDKPost(cfg, srv.URL+"/prod")
	for _, id := range []string{"L0SM9cOFvHcCIhw=", "-a_b=", "abc+/d==", "x y"} {
		for _, frame := range [][]byte{[]byte(`{"action":"event","data":{"t":"<&>é"}}`), []byte("\xff\x00")} {
			got = nil
			if err := sdk.Post(context.Background(), id, frame); err != nil {
				t.Fatal(err)
			}
			if err := thin.Post(context.Background(), id, frame); err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 {
				t.Fatalf("%d requests", len(got))
			}
			want, have := got[0], got[1]
			// The SDK also signs its own bookkeeping headers (invocation id,
			// attempt), which carry nothing API Gateway needs.
			want.signedHeaders = strings.TrimPrefix(want.signedHeaders, "amz-sdk-invocation-id;amz-sdk-request;")
			if have.method != want.method || have.path != want.path || have.contentType != want.contentType ||
				have.signedHeaders != want.signedHeaders || !bytes.Equal(have.body, want.body) {
				t.Errorf("id %q: thin client sent %s %s %q signed %q, the SDK %s %s %q signed %q",
					id, have.method, have.path, have.contentType, have.signedHeaders, want.method, want.path, want.contentType, want.signedHeaders)
			}
			for who, s := range map[string]seen{"SDK": want, "thin client": have} {
				if s.verified == "" || s.verified != s.authorization {
					t.Errorf("id %q: the %s's signature does not verify:\n sent     %s\n computed %s", id, who, s.authorization, s.verified)
				}
			}
		}
	}
}
