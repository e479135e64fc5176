package browsertest_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushgate/pushgate/internal/local"
	"github.com/pushgate/pushgate/internal/testkit/faultproxy"
	"github.com/pushgate/pushgate/internal/testkit/localtest"
	"github.com/pushgate/pushgate/internal/testkit/testenv"
)

// The chaos run's size; the environment variables make it bigger for the
// benchmark (docs/benchmarks.md).
const (
	envChaosWrites  = "PUSHGATE_CHAOS_WRITES"
	envChaosClients = "PUSHGATE_CHAOS_CLIENTS"
	envChaosRooms   = "PUSHGATE_CHAOS_ROOMS"
)

// TestNoLostUpdatesUnderChaos runs chaos.test.mjs: pushgate.js clients
// (Node's WebSocket, the real client) in several rooms each, while 1,000
// writes go to 20 rooms and their sockets are reset (TCP RST through a
// proxy), closed by the server (Management API DELETE), cut when idle
// (the stack's idle timeout, 2 s here), and the Management API answers
// storms of 429 and 500. At the end every client holds every item of its
// rooms at its final version, having applied each room's events once each,
// in seq order.
func TestNoLostUpdatesUnderChaos(t *testing.T) {
	node := testenv.Required(t, "node")
	wsAddr := testenv.FreeAddr(t)
	_, portText, _ := net.SplitHostPort(wsAddr)
	wsPort, _ := strconv.Atoi(portText)
	mgmt := faultproxy.Start(t, "http://"+wsAddr)
	storm := &storms{}
	mgmt.SetRule(storm.rule)
	stack, _ := localtest.Start(t, func(o *local.Options) {
		o.WSPort = wsPort
		o.ManagementEndpoint = mgmt.URL + "/prod"
		o.IdleTimeout = 2 * time.Second
	})
	_, stage, _ := strings.Cut(strings.TrimPrefix(stack.WebSocketURL(), "ws://"), "/")
	resets := startResettingProxy(t, wsAddr)
	ids := func(context.Context) ([]string, error) { return stack.ConnectionIDs(), nil }
	control := httptest.NewServer(chaosControl(ids, stack.ManagementURL(), resets, storm, nil))
	t.Cleanup(control.Close)
	runNode(t, node, []string{
		"PUSHGATE_HTTP_URL=" + stack.HTTPURL(),
		"PUSHGATE_CHAOS_WS_URL=ws://" + resets.ln.Addr().String() + "/" + stage,
		"PUSHGATE_CONTROL_URL=" + control.URL,
		"PUSHGATE_TOKEN=" + localtest.Token(t, stack, "chaos"),
		envChaosWrites + "=" + envOr(envChaosWrites, "1000"),
		envChaosClients + "=" + envOr(envChaosClients, "8"),
		envChaosRooms + "=" + envOr(envChaosRooms, "20"),
	}, "chaos.test.mjs")
	const posts = "execute-api:PostToConnection"
	t.Logf("Management API: %d posts, %d answered with a storm's 429 or 500", mgmt.Seen(posts), mgmt.Faulted(posts))
	if mgmt.Faulted(posts) == 0 {
		t.Error("no storm reached a post")
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// storms fail about half the Management API's posts with one status
// until a time.
type storms struct {
	mu    sync.Mutex
	until time.Time
	fault *faultproxy.Fault
}

func (s *storms) start(status int, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = faultproxy.ManagementDown
	if status == http.StatusTooManyRequests {
		s.fault = faultproxy.ManagementThrottled
	}
	s.until = time.Now().Add(d)
}

func (s *storms) rule(op string) *faultproxy.Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	if op != "execute-api:PostToConnection" || time.Now().After(s.until) || mathrand.IntN(2) == 0 {
		return nil
	}
	return s.fault
}

// chaosControl is what chaos.test.mjs asks of the server side:
//
//	POST /reset            resets one proxied socket (TCP RST); {"reset": bool}
//	POST /kick-one         closes one open socket with the Management API's
//	                       DELETE; {"kicked": bool}
//	POST /storm?status=&ms= fails about half the posts with 429 or 500 for ms
//	POST /restart          kills the stack and starts it again (when restart
//	                       is not nil); answers once it serves again
//
// ids lists the open sockets, managementURL is the stack's own Management
// API.
func chaosControl(ids func(context.Context) ([]string, error), managementURL string, resets *tcpProxy, storm *storms, restart func() error) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /restart", func(w http.ResponseWriter, _ *http.Request) {
		if restart == nil {
			http.Error(w, "this stack is not restarted", http.StatusNotFound)
			return
		}
		start := time.Now()
		if err := restart(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, map[string]int64{"downMs": time.Since(start).Milliseconds()})
	})
	mux.HandleFunc("POST /reset", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]bool{"reset": resets.resetOne()})
	})
	mux.HandleFunc("POST /kick-one", func(w http.ResponseWriter, r *http.Request) {
		open, err := ids(r.Context())
		if err != nil || len(open) == 0 {
			writeJSON(w, map[string]bool{"kicked": false})
			return
		}
		gone, err := disconnect(r.Context(), managementURL, open[mathrand.IntN(len(open))])
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		writeJSON(w, map[string]bool{"kicked": !gone})
	})
	mux.HandleFunc("POST /storm", func(w http.ResponseWriter, r *http.Request) {
		status, _ := strconv.Atoi(r.URL.Query().Get("status"))
		ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
		storm.start(status, time.Duration(ms)*time.Millisecond)
		writeJSON(w, map[string]int{"status": status})
	})
	return mux
}

// startResettingProxy is a tcpProxy to the stack for the test's length.
func startResettingProxy(t *testing.T, to string) *tcpProxy {
	t.Helper()
	p, err := listenProxy("127.0.0.1:0", to)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// TestRecoveryAfterTheStackIsKilled: the local stack runs as its own
// process on moto, and chaos.test.mjs has it killed (SIGKILL: no socket
// closed, no $disconnect, broadcasts cut off mid-way, publishes never made)
// halfway through its writes, then started again on the same ports and
// signing key. Its clients reconnect and recover from the history in moto;
// events whose publish the kill prevented go out through the outbox. Every
// client ends with every item, each event applied once, in order.
func TestRecoveryAfterTheStackIsKilled(t *testing.T) {
	node := testenv.Required(t, "node")
	moto := testenv.StartMoto(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "local")
	build := exec.Command("go", "build", "-o", bin, "./cmd/local")
	build.Dir = localtest.Root()
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/local: %v\n%s", err, out)
	}
	key := make([]byte, 48)
	rand.Read(key)
	keyFile := filepath.Join(dir, "signing.key")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	httpPort, wsPort := testenv.FreePort(t), testenv.FreePort(t)
	wsAddr := fmt.Sprintf("127.0.0.1:%d", wsPort)
	mgmt := faultproxy.Start(t, "http://"+wsAddr)
	storm := &storms{}
	mgmt.SetRule(storm.rule)
	p := &localProcess{bin: bin, dir: localtest.Root(), httpURL: fmt.Sprintf("http://127.0.0.1:%d", httpPort), args: []string{
		"-http-port", strconv.Itoa(httpPort), "-ws-port", strconv.Itoa(wsPort),
		"-dynamodb-endpoint", moto, "-sns-endpoint", moto, "-signing-key-file", keyFile,
		"-management-endpoint", mgmt.URL + "/prod", "-idle-timeout", "2s",
		"-schedule-every", "1s", "-parameter", "OutboxGrace=1s",
	}}
	p.start(t)
	t.Cleanup(p.kill)
	token := p.token(t)
	resets := startResettingProxy(t, wsAddr)
	ids := func(ctx context.Context) ([]string, error) { return p.connectionIDs(ctx) }
	restart := func() error {
		p.kill()
		return p.startErr()
	}
	control := httptest.NewServer(chaosControl(ids, "http://"+wsAddr+"/prod", resets, storm, restart))
	t.Cleanup(control.Close)
	runNode(t, node, []string{
		"PUSHGATE_HTTP_URL=" + p.httpURL,
		"PUSHGATE_CHAOS_WS_URL=ws://" + resets.ln.Addr().String() + "/prod",
		"PUSHGATE_CONTROL_URL=" + control.URL,
		"PUSHGATE_TOKEN=" + token,
		"PUSHGATE_CHAOS_RESTART=1",
		envChaosWrites + "=" + envOr(envChaosWrites, "120"),
		envChaosClients + "=" + envOr(envChaosClients, "6"),
		envChaosRooms + "=" + envOr(envChaosRooms, "10"),
	}, "chaos.test.mjs")
	// The killed stack's connection records outlive it: the restarted one's
	// first posts to them answer 410 — a storm of gone connections, pruned.
	if !regexp.MustCompile(`"msg":"broadcast".*"gone":[1-9]`).MatchString(p.out.String()) {
		t.Error("no broadcast after the restart met gone connections")
	}
	if t.Failed() {
		t.Logf("local stack output:\n%s", p.out.String())
	}
}

// localProcess is `go run ./cmd/local` as its own process, so it can be
// killed outright.
type localProcess struct {
	bin, dir, httpURL string
	args              []string
	out               testenv.Buffer
	mu                sync.Mutex
	cmd               *exec.Cmd
}

func (p *localProcess) start(t *testing.T) {
	t.Helper()
	if err := p.startErr(); err != nil {
		t.Fatalf("%v\n%s", err, p.out.String())
	}
}

// startErr starts the process and waits until it serves.
func (p *localProcess) startErr() error {
	p.mu.Lock()
	cmd := exec.Command(p.bin, p.args...)
	cmd.Dir = p.dir
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		return fmt.Errorf("start the local stack: %w", err)
	}
	p.cmd = cmd
	p.mu.Unlock()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(p.httpURL + "/config.json")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("the local stack did not serve %s within 30 s", p.httpURL)
}

// kill ends the process at once, as a crash or kill -9 would.
func (p *localProcess) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
	p.cmd = nil
}

func (p *localProcess) token(t *testing.T) string {
	t.Helper()
	resp, err := http.Post(p.httpURL+"/_local/token", "application/json", strings.NewReader(`{"user":"chaos","join":["*"],"write":["*"]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Token == "" {
		t.Fatalf("no token from the stack: %v", err)
	}
	return body.Token
}

func (p *localProcess) connectionIDs(ctx context.Context) ([]string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.httpURL+"/_local/connections", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Connections []struct {
			ConnectionID string `json:"connectionId"`
		} `json:"connections"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	var ids []string
	for _, c := range body.Connections {
		ids = append(ids, c.ConnectionID)
	}
	return ids, nil
}
