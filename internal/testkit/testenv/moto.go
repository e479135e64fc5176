package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// EnvMotoEndpoint holds the base URL of a running moto_server. The test
// command may start one moto for the whole run and set it; otherwise
// MotoMain starts one per test binary and sets it for that binary's run.
const EnvMotoEndpoint = "PUSHGATE_MOTO_ENDPOINT"

// MotoBinary is the executable MotoMain and StartMoto run.
const MotoBinary = "moto_server"

const (
	motoStartTimeout = 30 * time.Second
	motoStopTimeout  = 5 * time.Second
)

// MotoMain runs m with a moto_server available at EnvMotoEndpoint; call it
// from TestMain: func TestMain(m *testing.M) { os.Exit(testenv.MotoMain(m)) }.
// It reuses an endpoint already set in the environment, and otherwise
// starts one moto for the whole test binary and stops it after m.Run. When
// moto cannot be started the run fails under CI and continues elsewhere, so
// Moto skips the tests that need it.
func MotoMain(m *testing.M) int {
	if os.Getenv(EnvMotoEndpoint) != "" {
		return m.Run()
	}
	srv, err := startMoto(context.Background())
	if err != nil {
		fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		if InCI() {
			return 1
		}
		return m.Run()
	}
	code := 0
	func() {
		defer func() {
			if err := srv.stop(); err != nil {
				fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
			}
		}()
		if err := os.Setenv(EnvMotoEndpoint, srv.url); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
			code = 1
			return
		}
		defer os.Unsetenv(EnvMotoEndpoint)
		code = m.Run()
	}()
	return code
}

// Moto returns the base URL (http://127.0.0.1:PORT) of the moto_server
// MotoMain or the test command started. A test binary without MotoMain in
// its TestMain, or a moto that does not answer, ends the test: a failure
// under CI, a skip elsewhere.
//
// The moto is shared by every test of the run, possibly by several test
// binaries at once: name resources with Unique and never reset it; a test
// that needs a moto of its own uses StartMoto.
func Moto(t testing.TB) string {
	t.Helper()
	url := strings.TrimRight(os.Getenv(EnvMotoEndpoint), "/")
	if url == "" {
		Unavailable(t, "testenv: %s is not set: start moto with testenv.MotoMain in TestMain or set it", EnvMotoEndpoint)
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ping(ctx, url); err != nil {
		Unavailable(t, "testenv: moto at %s does not answer: %v", url, err)
	}
	return url
}

// StartMoto starts a moto_server for this test alone, stopped when the test
// ends; for tests that reset moto or need its state to themselves.
func StartMoto(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath(MotoBinary); err != nil {
		Unavailable(t, "testenv: %s is required: %v", MotoBinary, err)
	}
	srv, err := startMoto(context.Background())
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.stop(); err != nil {
			t.Errorf("testenv: %v", err)
		}
	})
	return srv.url
}

type motoServer struct {
	url  string
	cmd  *exec.Cmd
	done chan struct{}
	out  *motoOutput
}

// startMoto runs moto_server on a port the kernel picks (-p 0), learns the
// port from its banner and waits until it answers. Choosing a free port
// first and handing it over would race with every other process binding
// ports, and a lost race could point tests at somebody else's server.
func startMoto(ctx context.Context) (*motoServer, error) {
	bin, err := exec.LookPath(MotoBinary)
	if err != nil {
		return nil, fmt.Errorf("%s is not on PATH: %w", MotoBinary, err)
	}
	out := &motoOutput{bound: make(chan string, 1)}
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", "0")
	cmd.Stdout = out
	cmd.Stderr = out
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", MotoBinary, err)
	}
	srv := &motoServer{cmd: cmd, done: make(chan struct{}), out: out}
	go func() {
		_ = cmd.Wait()
		close(srv.done)
	}()

	wait, cancel := context.WithTimeout(ctx, motoStartTimeout)
	defer cancel()
	select {
	case srv.url = <-out.bound:
	case <-srv.done:
		return nil, fmt.Errorf("%s exited early: %s", MotoBinary, out.String())
	case <-wait.Done():
		_ = srv.stop()
		return nil, fmt.Errorf("%s printed no address within %v: %s", MotoBinary, motoStartTimeout, out.String())
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := ping(wait, srv.url); err == nil {
			return srv, nil
		}
		select {
		case <-srv.done:
			return nil, fmt.Errorf("%s on %s exited early: %s", MotoBinary, srv.url, out.String())
		case <-wait.Done():
			_ = srv.stop()
			return nil, fmt.Errorf("%s on %s did not answer within %v: %s", MotoBinary, srv.url, motoStartTimeout, out.String())
		case <-tick.C:
		}
	}
}

// stop ends moto (its whole process group), politely first.
func (s *motoServer) stop() error {
	select {
	case <-s.done:
		return nil
	default:
	}
	terminate(s.cmd)
	select {
	case <-s.done:
		return nil
	case <-time.After(motoStopTimeout):
	}
	kill(s.cmd)
	select {
	case <-s.done:
		return nil
	case <-time.After(motoStopTimeout):
		return fmt.Errorf("%s (pid %d) did not exit", MotoBinary, s.cmd.Process.Pid)
	}
}

// ping succeeds on any HTTP answer: moto is up once it speaks HTTP.
func ping(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/moto-api/", nil)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 2 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	return resp.Body.Close()
}

// motoOutput collects moto's output for error messages, and reports the
// address in its "Running on http://127.0.0.1:PORT" banner once.
type motoOutput struct {
	mu       sync.Mutex
	buf      bytes.Buffer
	bound    chan string
	reported bool
}

const maxMotoOutput = 16 << 10

var motoBanner = regexp.MustCompile(`Running on (http://127\.0\.0\.1:[0-9]+)`)

func (o *motoOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if room := maxMotoOutput - o.buf.Len(); room > 0 {
		o.buf.Write(p[:min(len(p), room)])
	}
	if !o.reported {
		if m := motoBanner.FindSubmatch(o.buf.Bytes()); m != nil {
			o.reported = true
			o.bound <- string(m[1])
		}
	}
	return len(p), nil
}

func (o *motoOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}
