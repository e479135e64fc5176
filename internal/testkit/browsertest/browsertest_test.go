package browsertest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pushgate/pushgate/internal/local"
	"github.com/pushgate/pushgate/internal/testkit/localtest"
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

// TestPushgateClientOnNodeWebSocket runs nodews.test.mjs: pushgate.js on
// Node's built-in WebSocket, whose refused connections fire "error" and
// never "close", first against a port nothing listens on, then, once the
// test asks for it, the stack behind that port.
func TestPushgateClientOnNodeWebSocket(t *testing.T) {
	node := testenv.Required(t, "node")
	stack, _ := localtest.Start(t, nil)
	late := newLateProxy(t, stack)
	control := httptest.NewServer(controlHandler(stack, late))
	t.Cleanup(control.Close)
	runNode(t, node, []string{
		"PUSHGATE_HTTP_URL=" + stack.HTTPURL(),
		"PUSHGATE_LATE_WS_URL=" + late.url,
		"PUSHGATE_CONTROL_URL=" + control.URL,
		"PUSHGATE_TOKEN=" + localtest.Token(t, stack, "node"),
	}, "nodews.test.mjs")
}

// lateProxy is a WebSocket URL that refuses connections until listen is
// called, and from then on forwards them to the stack: a stack that comes
// up after its clients.
type lateProxy struct {
	url, addr, to string
	mu            sync.Mutex
	proxy         *tcpProxy
}

func newLateProxy(t *testing.T, stack *local.Stack) *lateProxy {
	hostPort, stage, _ := strings.Cut(strings.TrimPrefix(stack.WebSocketURL(), "ws://"), "/")
	l := &lateProxy{addr: testenv.FreeAddr(t), to: hostPort}
	l.url = "ws://" + l.addr + "/" + stage
	t.Cleanup(func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.proxy != nil {
			l.proxy.Close()
		}
	})
	return l
}

func (l *lateProxy) listen() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.proxy != nil {
		return errors.New("listening already")
	}
	p, err := listenProxy(l.addr, l.to)
	l.proxy = p
	return err
}

// tcpProxy forwards every connection on its address to another, and can
// end one abruptly: the client's side with a reset, as a dropped network
// does.
type tcpProxy struct {
	ln    net.Listener
	to    string
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]net.Conn // client side → upstream side
}

func listenProxy(addr, to string) (*tcpProxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &tcpProxy{ln: ln, to: to, conns: map[net.Conn]net.Conn{}}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Go(func() { p.forward(c) })
		}
	})
	return p, nil
}

func (p *tcpProxy) forward(c net.Conn) {
	defer c.Close()
	up, err := net.Dial("tcp", p.to)
	if err != nil {
		return
	}
	defer up.Close()
	p.mu.Lock()
	p.conns[c] = up
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
	}()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
}

// resetOne resets a random open connection; false when there is none.
func (p *tcpProxy) resetOne() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c, up := range p.conns { // map order is random enough
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // close sends RST
		}
		c.Close()
		up.Close()
		delete(p.conns, c)
		return true
	}
	return false
}

// Close stops listening, ends the open connections and waits for their
// goroutines.
func (p *tcpProxy) Close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for c, up := range p.conns {
		c.Close()
		up.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
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

	stack, _ := localtest.Start(t, nil)
	late := newLateProxy(t, stack)
	control := httptest.NewServer(controlHandler(stack, late))
	t.Cleanup(control.Close)

	runNode(t, node, []string{
		"PUSHGATE_HTTP_URL=" + stack.HTTPURL(),
		"PUSHGATE_WS_URL=" + stack.WebSocketURL(),
		"PUSHGATE_CONTROL_URL=" + control.URL,
		"PUSHGATE_LATE_WS_URL=" + late.url,
		"PUSHGATE_TOKEN=" + localtest.Token(t, stack, "browser-tests"),
		"PUSHGATE_ROOM_A_TOKEN=" + roomToken(t, stack, "room-a"),
		EnvChromium + "=" + chromium,
	}, "browser.test.mjs")
}

// roomToken joins and writes room only.
func roomToken(t *testing.T, stack *local.Stack, room string) string {
	t.Helper()
	tok, err := stack.Token(local.TokenRequest{User: "only-" + room, Join: []string{room}, Write: []string{room}})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// controlHandler lets the Node tests act on the stack as only the server
// side can:
//
//	POST /kick[?room=R]  closes every open socket (or R's) through the
//	                     Management API's DELETE; answers {"kicked": n}.
//	POST /hostile?room=R joins R and sends what no browser can send (see
//	                     sendHostile); answers what came back.
//	POST /listen         makes PUSHGATE_LATE_WS_URL, which refused
//	                     connections so far, forward them to the stack.
//	POST /mute?room=&id= takes a connection out of a room's members (broadcasts
//	                     miss it); POST /unmute puts it back.
//	GET /connections     {"ids": [...]}, the open sockets.
func controlHandler(stack *local.Stack, late *lateProxy) http.Handler {
	hostileToken, _ := stack.Token(local.TokenRequest{User: "hostile", Join: []string{"*"}, Write: []string{"*"}})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /listen", func(w http.ResponseWriter, _ *http.Request) {
		if err := late.listen(); err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		writeJSON(w, map[string]string{"listening": late.url})
	})
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
	mux.HandleFunc("POST /hostile", func(w http.ResponseWriter, r *http.Request) {
		u := stack.WebSocketURL() + "?room=" + url.QueryEscape(r.URL.Query().Get("room")) + "&token=" + url.QueryEscape(hostileToken)
		answers, err := sendHostile(r.Context(), u)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		writeJSON(w, answers)
	})
	// POST /mute?room=R&id=C takes connection C out of room R's members
	// (its record keeps the room), so broadcasts miss it; /unmute puts it
	// back: a gap in what it hears.
	mux.HandleFunc("POST /mute", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if err := stack.Connections().Leave(r.Context(), q.Get("id"), q.Get("room")); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, map[string]bool{"muted": true})
	})
	mux.HandleFunc("POST /unmute", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if err := stack.Connections().Join(r.Context(), q.Get("id"), q.Get("room"), time.Now().Add(time.Hour)); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, map[string]bool{"muted": false})
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

// hostileAnswers is what the stack sent back to sendHostile's sockets.
type hostileAnswers struct {
	// Replies are the frames answering the text frames, in order.
	Replies []json.RawMessage `json:"replies"`
	// BinaryClose is the close code the binary frame's socket got.
	BinaryClose int `json:"binaryClose"`
}

// sendHostile joins a room as two clients and sends what would break the
// room's browsers if it were relayed: text frames that are not UTF-8 (a
// browser fails the connection on one) and a frame naming a 30,000-byte
// action, then a binary frame from the second client.
func sendHostile(ctx context.Context, wsURL string) (hostileAnswers, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var out hostileAnswers
	c, _, err := websocket.Dial(ctx, wsURL, nil)
	if err != nil {
		return out, err
	}
	defer c.CloseNow()
	for _, frame := range []string{
		"{\"action\":\"update\",\"target\":\"*\",\"data\":\"\xff\xfe\"}",
		"{\"action\":\"update\",\"target\":\"*\",\"number\":1,\"data\":{\"text\":\"caf\xc3\"}}",
		`{"action":"` + strings.Repeat("<", 30000) + `"}`,
	} {
		if err := c.Write(ctx, websocket.MessageText, []byte(frame)); err != nil {
			return out, err
		}
		_, reply, err := c.Read(ctx)
		if err != nil {
			return out, err
		}
		out.Replies = append(out.Replies, reply)
	}
	b, _, err := websocket.Dial(ctx, wsURL, nil)
	if err != nil {
		return out, err
	}
	defer b.CloseNow()
	if err := b.Write(ctx, websocket.MessageBinary, []byte("{\"action\":\"update\",\"target\":\"*\",\"data\":\"\xff\"}")); err != nil {
		return out, err
	}
	_, _, err = b.Read(ctx)
	out.BinaryClose = int(websocket.CloseStatus(err))
	return out, nil
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
	args := []string{"--disable-warning=ExperimentalWarning", "--test", "--test-reporter=spec", script}
	if nodeMajor(t, node) < 22 {
		// Node 20 has its WebSocket behind a flag (22 turns it on).
		args = append([]string{"--experimental-websocket"}, args...)
	}
	cmd := exec.CommandContext(ctx, node, args...)
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

// nodeMajor is node's major version.
func nodeMajor(t *testing.T, node string) int {
	t.Helper()
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		t.Fatalf("node --version: %v", err)
	}
	major, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimSpace(string(out)), "v"), ".")
	n, err := strconv.Atoi(major)
	if err != nil {
		t.Fatalf("node --version said %q", out)
	}
	return n
}

// TestMintTokenExample runs docs/examples/mint-token.mjs, the backend
// example of docs/security.md, with jose: its token opens a socket and
// writes an item on a stack with the same key, and docs/security.md shows
// the file as it is.
func TestMintTokenExample(t *testing.T) {
	node := testenv.Required(t, "node")
	root := localtest.Root()
	example, err := os.ReadFile(filepath.Join(root, "docs", "examples", "mint-token.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "security.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(doc, example) {
		t.Error("docs/security.md does not show docs/examples/mint-token.mjs as it is")
	}
	// Beside this package's node_modules, where jose is.
	dir := t.TempDir()
	script := filepath.Join(dir, "mint-token.mjs")
	if err := os.WriteFile(script, example, 0o644); err != nil {
		t.Fatal(err)
	}
	modules, _ := filepath.Abs("node_modules")
	if err := os.Symlink(modules, filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
	key := "a backend's key from Secrets Manager, 48 bytes"
	stack, _ := localtest.Start(t, func(o *local.Options) { o.SigningKey = []byte(key) })
	cmd := exec.CommandContext(t.Context(), node, script, "ann", "notes", "notes")
	cmd.Env = append(os.Environ(), "PUSHGATE_SIGNING_KEY="+key)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node mint-token.mjs: %v", err)
	}
	token := strings.TrimSpace(string(out))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, stack.WebSocketURL()+"?room=notes&token="+url.QueryEscape(token), nil)
	if err != nil {
		t.Fatalf("dial with the example's token: %v", err)
	}
	c.CloseNow()
	req, _ := http.NewRequest(http.MethodPut, stack.HTTPURL()+"/rooms/notes/items/n1", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT with the example's token: %s", resp.Status)
	}
	if _, _, err := websocket.Dial(ctx, stack.WebSocketURL()+"?room=elsewhere&token="+url.QueryEscape(token), nil); err == nil {
		t.Fatal("the token for notes opened room elsewhere")
	}
}
