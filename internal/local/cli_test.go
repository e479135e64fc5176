package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pushgate/pushgate/internal/testkit/testenv"
	"github.com/pushgate/pushgate/internal/testkit/wsclient"
)

func TestInvokeCommand(t *testing.T) {
	shortKey := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(shortKey, []byte("too short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		wantStatus float64
		wantErr    string
	}{
		{"put", []string{"invoke", "ItemsWriteFunction", "-e", "../../events/http-put.json"}, 201, ""},
		{"function after flags", []string{"invoke", "-e", "../../events/http-list.json", "-function", "ItemsReadFunction"}, 200, ""},
		{"ws frame", []string{"invoke", "ConnectionFunction", "-e", "../../events/ws-unknown-action.json"}, 200, ""},
		{"unknown function", []string{"invoke", "NoSuchFunction", "-e", "../../events/http-put.json"}, 0, `no function "NoSuchFunction"; the template has ConnectionFunction`},
		{"no event", []string{"invoke", "ItemsReadFunction"}, 0, "-e"},
		{"missing file", []string{"invoke", "ItemsReadFunction", "-e", "nope.json"}, 0, "no such file"},
		{"bad flag", []string{"-no-such-flag"}, 0, "not defined"},
		{"authorizer with the start-up key", []string{"invoke", "AuthorizerFunction", "-e", "../../events/authorizer-connect.json"}, 0, "Unauthorized"},
		{"a key file too short", []string{"invoke", "AuthorizerFunction", "-e", "x", "-signing-key-file", shortKey}, 0, "a signing key needs at least 32"},
		{"no authorizer with auth off", []string{"invoke", "AuthorizerFunction", "-e", "../../events/authorizer-connect.json", "-auth", "none"}, 0, `no function "AuthorizerFunction"`},
		{"a write with auth off", []string{"invoke", "ItemsWriteFunction", "-e", "../../events/http-put.json", "-auth", "none"}, 201, ""},
		{"an unknown auth mode", []string{"-auth", "maybe"}, 0, "want key, oidc or none"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			// No -template: it is found in a parent directory.
			err := Main(context.Background(), tc.args, strings.NewReader(""), &out, &errb, os.Getenv)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, errb.String())
			}
			var resp struct {
				StatusCode float64 `json:"statusCode"`
			}
			if err := json.Unmarshal(out.Bytes(), &resp); err != nil || resp.StatusCode != tc.wantStatus {
				t.Errorf("output %s (%v), want status %v", out.String(), err, tc.wantStatus)
			}
		})
	}
}

// TestInvokeAuthorizer: with the sample key, the authorizer allows the
// sample event's $connect and hands on its grants.
func TestInvokeAuthorizer(t *testing.T) {
	var out, errb bytes.Buffer
	err := Main(context.Background(), []string{"invoke", "AuthorizerFunction", "-e", "../../events/authorizer-connect.json",
		"-signing-key-file", "../../events/sample-signing-key.txt"}, nil, &out, &errb, os.Getenv)
	if err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	var resp struct {
		PrincipalID    string         `json:"principalId"`
		PolicyDocument map[string]any `json:"policyDocument"`
		Context        map[string]any `json:"context"`
	}
	if err := json.Unmarshal(out.Bytes(), &resp); err != nil || resp.PrincipalID != "sample-user" ||
		!strings.Contains(out.String(), `"Effect":"Allow"`) || resp.Context["join"] != "demo game-*" {
		t.Fatalf("output %s (%v)", out.String(), err)
	}
}

// TestInvokesChainThroughAStoreThatOutlivesThem: each invoke starts a stack
// of its own, so only an external store carries a write to a later read.
func TestInvokesChainThroughAStoreThatOutlivesThem(t *testing.T) {
	moto := testenv.StartMoto(t)
	invoke := func(fn, event string) map[string]any {
		var out, errb bytes.Buffer
		err := Main(context.Background(), []string{"invoke", fn, "-e", "../../events/" + event, "-dynamodb-endpoint", moto},
			nil, &out, &errb, func(string) string { return "" })
		if err != nil {
			t.Fatalf("invoke %s: %v\n%s", fn, err, errb.String())
		}
		var resp map[string]any
		if err := json.Unmarshal(out.Bytes(), &resp); err != nil {
			t.Fatalf("%s: %v", out.String(), err)
		}
		return resp
	}
	if r := invoke("ItemsWriteFunction", "http-put.json"); r["statusCode"] != float64(201) {
		t.Fatalf("put: %v", r)
	}
	if r := invoke("ItemsReadFunction", "http-get.json"); r["statusCode"] != float64(200) {
		t.Errorf("get after the put, in another invoke: %v", r)
	}
}

func TestHelp(t *testing.T) {
	tests := []struct {
		args      []string
		want, not []string
	}{
		{[]string{"-h"}, []string{"-http-port", "-dynamodb-endpoint", "-idle-timeout", "-auth", "-signing-key-file", "local invoke -h", "local connections -h", "local token -h"}, []string{"-function"}},
		{[]string{"invoke", "-h"}, []string{"-e ", "-function", "-template", "-dynamodb-endpoint", "ConnectionFunction, BroadcastFunction, ItemsReadFunction, ItemsWriteFunction"}, []string{"-http-port", "-idle-timeout"}},
		{[]string{"connections", "-h"}, []string{"-http-port", "-json", connectionsPath}, []string{"-template", "-function"}},
		{[]string{"token", "-h"}, []string{"-user", "-join", "-write", "-ttl", tokenPath, "last line"}, []string{"-template", "-function"}},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			err := Main(context.Background(), tc.args, strings.NewReader(""), &out, &errb, os.Getenv)
			if !errors.Is(err, flag.ErrHelp) {
				t.Errorf("err = %v, want flag.ErrHelp", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("help lacks %q:\n%s", w, errb.String())
				}
			}
			for _, n := range tc.not {
				if strings.Contains(errb.String(), n) {
					t.Errorf("help has another command's %q:\n%s", n, errb.String())
				}
			}
		})
	}
}

// TestServeAndConnections runs the command as `make local` does, lists
// its sockets with `local connections`, and stops it as Ctrl-C would.
func TestServeAndConnections(t *testing.T) {
	httpPort, wsPort := testenv.FreePort(t), testenv.FreePort(t)
	ctx, stop := context.WithCancel(context.Background())
	var stderr testenv.Buffer
	done := make(chan error, 1)
	go func() {
		done <- Main(ctx, []string{"-http-port", strconv.Itoa(httpPort), "-ws-port", strconv.Itoa(wsPort)},
			strings.NewReader(""), io.Discard, &stderr, func(string) string { return "" })
	}()
	var c *wsclient.Client
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), "Ctrl-C stops it.") {
		if time.Now().After(deadline) {
			t.Fatalf("the stack did not start:\n%s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A token from `local token`, as the README's tour gets one: printed
	// as the last line.
	var tokOut, tokErr bytes.Buffer
	if err := Main(context.Background(), []string{"token", "-http-port", strconv.Itoa(httpPort), "--user", "cli-user", "--join", "cli", "--write", "cli"},
		nil, &tokOut, &tokErr, os.Getenv); err != nil {
		t.Fatalf("token: %v\n%s", err, tokErr.String())
	}
	lines := strings.Split(strings.TrimSpace(tokOut.String()), "\n")
	token := lines[len(lines)-1]
	wsURL := fmt.Sprintf("ws://127.0.0.1:%d/prod?room=cli&token=%s", wsPort, token)
	// Refused: no token, and this token's room is cli only.
	for _, u := range []string{fmt.Sprintf("ws://127.0.0.1:%d/prod?room=cli", wsPort), fmt.Sprintf("ws://127.0.0.1:%d/prod?room=other&token=%s", wsPort, token)} {
		if _, resp, err := websocket.Dial(t.Context(), u, nil); err == nil || resp == nil || (resp.StatusCode != 401 && resp.StatusCode != 403) {
			t.Errorf("dial %s: %v %v; want 401 or 403", u, resp, err)
		}
	}
	c = wsclient.Dial(t, wsURL)
	c.Send(`{"action":"whoami"}`)
	id := c.Next()["connectionId"].(string)

	var out, errb bytes.Buffer
	if err := Main(context.Background(), []string{"connections", "-http-port", strconv.Itoa(httpPort)}, nil, &out, &errb, os.Getenv); err != nil {
		t.Fatalf("connections: %v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), "CONNECTION ID") || !strings.Contains(out.String(), id) || !strings.Contains(out.String(), "cli-user") {
		t.Errorf("connections printed:\n%s\nwant %s of cli-user in room cli", out.String(), id)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(stderr.String(), "pushgate local stack stopped\n") {
		t.Errorf("last output line is not the stop line:\n%s", stderr.String())
	}
	if code := c.Closed(); code != websocket.StatusGoingAway {
		t.Errorf("socket closed with %d, want 1001", code)
	}
	// Nothing listens any more.
	err := Main(context.Background(), []string{"connections", "-http-port", strconv.Itoa(httpPort)}, nil, &out, &errb, os.Getenv)
	if err == nil || !strings.Contains(err.Error(), "no local stack answers") {
		t.Errorf("connections to a stopped stack: %v", err)
	}
}
