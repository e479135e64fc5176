package browsertest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/pushgate/pushgate/internal/local"
	"github.com/pushgate/pushgate/internal/testkit/testenv"
)

// Where the browser tests find their tools.
const (
	// EnvChromium overrides DefaultChromium.
	EnvChromium     = "PUSHGATE_CHROMIUM"
	DefaultChromium = "/usr/bin/chromium"
	// nodeTimeout bounds one node run; each Node test has its own, shorter
	// bound.
	nodeTimeout = 3 * time.Minute
)

// TestPushgateClient runs the browserless unit tests of web/pushgate.js:
// backoff, pings, re-subscription and rotation on a fake WebSocket.
func TestPushgateClient(t *testing.T) {
	node := testenv.Required(t, "node")
	runNode(t, node, nil, "pushgate.test.mjs")
}

// TestBrowser runs browser.test.mjs: the demo board and the game page in
// headless Chromium against a local stack started here.
func TestBrowser(t *testing.T) {
	node := testenv.Required(t, "node")
	chromium := os.Getenv(EnvChromium)
	if chromium == "" {
		chromium = DefaultChromium
	}
	if _, err := os.Stat(chromium); err != nil {
		testenv.Unavailable(t, "browsertest: no Chromium at %s (install it with `apt-get install -y chromium`, or set %s): %v",
			chromium, EnvChromium, err)
	}
	if _, err := os.Stat(filepath.Join("node_modules", "playwright-core", "package.json")); err != nil {
		testenv.Unavailable(t, "browsertest: playwright-core is not installed (run `npm ci --prefix internal/browsertest`): %v", err)
	}

	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	logs := &testenv.Buffer{}
	ctx := t.Context()
	stack, err := local.Start(ctx, local.Options{
		HTTPPort:     -1,
		WSPort:       -1,
		TemplatePath: filepath.Join(root, "template.yaml"),
		WebDir:       filepath.Join(root, "web"),
		Log:          slog.New(slog.NewJSONHandler(logs, nil)),
	})
	if err != nil {
		t.Fatalf("start the local stack: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := stack.Close(ctx); err != nil {
			t.Errorf("close the local stack: %v", err)
		}
		if t.Failed() {
			t.Logf("local stack logs:\n%s", logs.String())
		}
	})
	control := httptest.NewServer(controlHandler(stack))
	t.Cleanup(control.Close)

	runNode(t, node, []string{
		"PUSHGATE_HTTP_URL=" + stack.HTTPURL(),
		"PUSHGATE_WS_URL=" + stack.WebSocketURL(),
		"PUSHGATE_CONTROL_URL=" + control.URL,
		EnvChromium + "=" + chromium,
	}, "browser.test.mjs")
}

// controlHandler lets the Node tests act on the stack as only the server
// side can:
//
//	POST /kick[?room=R]  closes every open socket (or R's) through the
//	                     Management API's DELETE; answers {"kicked": n}.
//	GET /connections     {"ids": [...]}, the open sockets.
func controlHandler(stack *local.Stack) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /kick", func(w http.ResponseWriter, r *http.Request) {
		ids := stack.ConnectionIDs()
		if room := r.URL.Query().Get("room"); room != "" {
			var err error
			if ids, err = members(r.Context(), stack, room); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		kicked := 0
		for _, id := range ids {
			gone, err := disconnect(r.Context(), stack.ManagementURL(), id)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			if !gone {
				kicked++
			}
		}
		writeJSON(w, map[string]int{"kicked": kicked})
	})
	mux.HandleFunc("GET /connections", func(w http.ResponseWriter, _ *http.Request) {
		ids := stack.ConnectionIDs()
		if ids == nil {
			ids = []string{}
		}
		writeJSON(w, map[string][]string{"ids": ids})
	})
	return mux
}

func members(ctx context.Context, stack *local.Stack, room string) ([]string, error) {
	var ids []string
	for page, err := range stack.Connections().Members(ctx, room) {
		if err != nil {
			return nil, fmt.Errorf("members of %s: %w", room, err)
		}
		ids = append(ids, page...)
	}
	return ids, nil
}

// disconnect closes one socket as a backend would, with the Management
// API's DELETE @connections/{id}; gone reports a socket already closed.
func disconnect(ctx context.Context, endpoint, id string) (gone bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, endpoint+"/@connections/"+url.PathEscape(id), nil)
	if err != nil {
		return false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, fmt.Errorf("delete connection %s: %w", id, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusGone:
		return true, nil
	case resp.StatusCode >= 300:
		return false, fmt.Errorf("delete connection %s: %s", id, resp.Status)
	}
	return false, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// runNode runs node's test runner on script in this directory and fails
// the test, with node's output, if it fails.
func runNode(t *testing.T, node string, env []string, script string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), nodeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--disable-warning=ExperimentalWarning", "--test", "--test-reporter=spec", script)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	inOwnGroup(cmd)
	cmd.WaitDelay = 15 * time.Second
	start := time.Now()
	err := cmd.Run()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("node %s did not finish within %s:\n%s", script, nodeTimeout, out.String())
	}
	if err != nil {
		t.Fatalf("node %s: %v\n%s", script, err, out.String())
	}
	t.Logf("node %s passed in %s:\n%s", script, time.Since(start).Round(time.Millisecond), out.String())
}
