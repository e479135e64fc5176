// Package localtest starts local stacks for tests: on free 127.0.0.1 ports,
// wired from the repository's template.yaml and web/, and stopped when the
// test ends, their logs shown if it failed.
package localtest

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/pushgate/pushgate/internal/local"
	"github.com/pushgate/pushgate/internal/testkit/testenv"
)

// Root is the repository's root directory.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// Start starts a stack with in-memory stores unless tweak says otherwise,
// and returns it with the buffer its JSON log goes to.
func Start(t testing.TB, tweak func(*local.Options)) (*local.Stack, *testenv.Buffer) {
	t.Helper()
	logs := &testenv.Buffer{}
	o := local.Options{
		HTTPPort: -1, WSPort: -1,
		TemplatePath: filepath.Join(Root(), "template.yaml"),
		WebDir:       filepath.Join(Root(), "web"),
		Log:          slog.New(slog.NewJSONHandler(logs, nil)),
	}
	if tweak != nil {
		tweak(&o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := local.Start(ctx, o)
	if err != nil {
		t.Fatalf("start the local stack: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("close the local stack: %v", err)
		}
		if t.Failed() {
			t.Logf("local stack logs:\n%s", logs.String())
		}
	})
	return s, logs
}

// Token mints a token the stack accepts for user, joining and writing
// every room.
func Token(t testing.TB, s *local.Stack, user string) string {
	t.Helper()
	tok, err := s.Token(local.TokenRequest{User: user, Join: []string{"*"}, Write: []string{"*"}})
	if err != nil {
		t.Fatalf("mint a token: %v", err)
	}
	return tok
}

// WebSocketURL is the stack's WebSocket URL with an every-room token and
// the query (room=…, or ""), as a client connects.
func WebSocketURL(t testing.TB, s *local.Stack, query string) string {
	t.Helper()
	u := s.WebSocketURL() + "?token=" + url.QueryEscape(Token(t, s, "test-client"))
	if query != "" {
		u += "&" + query
	}
	return u
}

// Authorize gives req the stack's every-room token as a bearer token.
func Authorize(t testing.TB, s *local.Stack, req *http.Request) *http.Request {
	t.Helper()
	req.Header.Set("Authorization", "Bearer "+Token(t, s, "test-client"))
	return req
}
