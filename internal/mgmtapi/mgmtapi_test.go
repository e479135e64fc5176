package mgmtapi_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/pushgate/pushgate/internal/domain"
	"github.com/pushgate/pushgate/internal/fanout"
	"github.com/pushgate/pushgate/internal/local/mgmtserver"
	"github.com/pushgate/pushgate/internal/mgmtapi"
)

func testConfig() aws.Config {
	return aws.Config{
		Region: "us-east-1",
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "test", SecretAccessKey: "test"}, nil
		}),
	}
}

func newClient(t testing.TB, endpoint string, conns int) *mgmtapi.Client {
	t.Helper()
	c, err := mgmtapi.New(testConfig(), endpoint, conns)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPostClassifiesStatus(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		errType   string
		wantErr   bool
		gone      bool
		retryable bool
	}{
		{"ok", 200, "", false, false, false},
		{"gone", 410, "GoneException", true, true, false},
		{"throttled", 429, "LimitExceededException", true, false, true},
		{"server fault", 500, "InternalServerErrorException", true, false, true},
		{"unavailable", 503, "", true, false, true},
		{"forbidden", 403, "ForbiddenException", true, false, false},
		{"too large", 413, "PayloadTooLargeException", true, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var gotPath string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				gotPath = r.URL.EscapedPath()
				if tc.errType != "" {
					w.Header().Set("X-Amzn-Errortype", tc.errType)
				}
				w.WriteHeader(tc.status)
				if tc.status >= 300 {
					_, _ = w.Write([]byte(`{"message":"x"}`))
				}
			}))
			defer srv.Close()
			c := newClient(t, srv.URL+"/prod", 4)
			err := c.Post(context.Background(), "abc=", []byte(`{}`))
			if gotPath != "/prod/%40connections/abc%3D" && gotPath != "/prod/@connections/abc%3D" {
				t.Errorf("path = %q", gotPath)
			}
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if err == nil {
				return
			}
			var pe *domain.PostError
			if !errors.As(err, &pe) {
				t.Fatalf("err %T is not a *domain.PostError", err)
			}
			if pe.Gone() != tc.gone || pe.Retryable() != tc.retryable || pe.ConnectionID != "abc=" {
				t.Errorf("status %d: gone=%v retryable=%v id=%q", pe.Status, pe.Gone(), pe.Retryable(), pe.ConnectionID)
			}
		})
	}
}

func TestPostAndDeleteThroughManagementServer(t *testing.T) {
	rec := mgmtserver.NewRecorder("c1")
	srv := httptest.NewServer(mgmtserver.Handler(rec))
	defer srv.Close()
	c := newClient(t, srv.URL+"/dev", 2)
	ctx := context.Background()
	if err := c.Post(ctx, "c1", []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	if got := rec.Frames("c1"); len(got) != 1 || string(got[0]) != `{"a":1}` {
		t.Fatalf("frames = %q", got)
	}
	var pe *domain.PostError
	if err := c.Post(ctx, "nope", []byte(`{}`)); !errors.As(err, &pe) || !pe.Gone() {
		t.Fatalf("post to unknown: %v, want gone", err)
	}
	if err := c.Delete(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, "c1"); err != nil {
		t.Fatalf("deleting a gone connection: %v", err)
	}
	if err := c.Post(ctx, "c1", []byte(`{}`)); !errors.As(err, &pe) || !pe.Gone() {
		t.Fatalf("post after delete: %v, want gone", err)
	}
}

// TestPostsReuseConnections checks that a broadcast's posts share a few
// kept-alive connections rather than opening one each: at 100,000
// recipients a handshake per post would dominate. A worker may open a
// second connection while its first is on its way back to the pool, hence
// the slack; without the pool sized to the workers it is dozens.
func TestPostsReuseConnections(t *testing.T) {
	var mu sync.Mutex
	opened := 0
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			opened++
			mu.Unlock()
		}
	}
	srv.Start()
	defer srv.Close()
	const workers = 4
	c := newClient(t, srv.URL+"/prod", workers)
	ids := make([]string, 200)
	for i := range ids {
		ids[i] = fmt.Sprint("c", i)
	}
	f := fanout.New(c, nil, fanout.Options{Workers: workers})
	res, err := f.To(context.Background(), []byte(`{}`), ids...)
	if err != nil || res.Delivered != len(ids) {
		t.Fatalf("%+v %v", res, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if opened > 2*workers {
		t.Errorf("%d posts opened %d connections; want at most %d (about one per worker)", len(ids), opened, 2*workers)
	}
}
