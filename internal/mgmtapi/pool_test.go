package mgmtapi

import (
	"bufio"
	"context"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/pushgate/pushgate/internal/domain"
)

func testClient(t *testing.T, endpoint string) *Client {
	t.Helper()
	c, err := New(aws.Config{Region: "us-east-1", Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "a", SecretAccessKey: "b", SessionToken: "session"}, nil
	})}, endpoint, 4)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestReadAnswer(t *testing.T) {
	tests := []struct {
		name, raw      string
		status         int
		errType, body  string
		close, wantErr bool
	}{
		{"ok, empty", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 200, "", "", false, false},
		{"ok with a body read away", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, "", "", false, false},
		{"gone", "HTTP/1.1 410 Gone\r\nx-amzn-ErrorType: GoneException:http://internal.amazon.com/\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"message\":null}", 410, "GoneException", `{"message":null}`, false, false},
		{"chunked error", "HTTP/1.1 429 Too Many Requests\r\nTransfer-Encoding: chunked\r\nX-Amzn-Errortype: LimitExceededException\r\n\r\n5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n", 429, "LimitExceededException", `{"a":1}`, false, false},
		{"connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 200, "", "", true, false},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 200, "", "", true, false},
		{"until the end", "HTTP/1.1 500 Internal Server Error\r\n\r\noops", 500, "", "oops", true, false},
		{"no content", "HTTP/1.1 204 No Content\r\n\r\n", 204, "", "", false, false},
		{"not HTTP", "SSH-2.0-OpenSSH\r\n\r\n", 0, "", "", false, true},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -4\r\n\r\n", 200, "", "", false, true},
		{"cut short", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 200, "", "", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A second answer behind the first: what a kept connection
			// would read next must be where it starts.
			next := "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
			if tc.wantErr || tc.close {
				next = "" // the answer runs to the connection's end, or is cut short
			}
			r := bufio.NewReader(strings.NewReader(tc.raw + next))
			a, err := readAnswer(r)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				return
			}
			if a.status != tc.status || a.errorType != tc.errType || string(a.body) != tc.body || a.close != tc.close {
				t.Fatalf("answer %+v (body %q)", a, a.body)
			}
			if next, err := readAnswer(r); !tc.close && (err != nil || next.status != 200) {
				t.Fatalf("the next answer on the connection: %+v %v", next, err)
			}
		})
	}
}

// TestPostsOverTLS: an https endpoint gets TLS, and its connections are
// kept between posts.
func TestPostsOverTLS(t *testing.T) {
	var opened atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amz-Security-Token") != "session" || !strings.Contains(r.Header.Get("Authorization"), "x-amz-security-token") {
			w.WriteHeader(http.StatusForbidden)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.StartTLS()
	defer srv.Close()
	c := testClient(t, srv.URL+"/prod")
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	c.pool.tlsConfig.RootCAs = roots
	for range 20 {
		if err := c.Post(context.Background(), "c=", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	if n := opened.Load(); n != 1 {
		t.Errorf("20 posts one after another opened %d connections", n)
	}
}

// TestPostsSurviveTheServerClosingConnections: a server that closes kept
// connections (idle timeout, Connection: close) costs nothing but a new
// connection.
func TestPostsSurviveTheServerClosingConnections(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%3 == 0 {
			w.Header().Set("Connection", "close")
		}
	}))
	srv.Config.IdleTimeout = 20 * time.Millisecond
	srv.Start()
	defer srv.Close()
	c := testClient(t, srv.URL+"/prod")
	for i := range 12 {
		if i%4 == 0 {
			time.Sleep(60 * time.Millisecond) // past the idle timeout: the server closes
		}
		if err := c.Post(context.Background(), "c", []byte(`{}`)); err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
	}
}

// TestPostEndsWithItsContext: a server that never answers holds a post no
// longer than its context; the failure is a transport one (retryable).
func TestPostEndsWithItsContext(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	c := testClient(t, srv.URL+"/prod")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	err := c.Post(ctx, "c", []byte(`{}`))
	var pe *domain.PostError
	if !errors.As(err, &pe) || !pe.Retryable() || pe.Status != 0 || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want a retryable transport failure", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the post took %v", d)
	}
}

func TestNewRefusesEndpointsThatAreNoURL(t *testing.T) {
	for _, ep := range []string{"ftp://host/prod", "host/prod", "://"} {
		if _, err := New(aws.Config{}, ep, 1); err == nil {
			t.Errorf("New(%q) accepted it", ep)
		}
	}
}
