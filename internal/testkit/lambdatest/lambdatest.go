// Package lambdatest builds pushgate's Lambda functions as they are deployed
// (a static linux "bootstrap" per function) and runs them under the AWS
// Lambda Runtime Interface Emulator, so tests can invoke the real artifacts.
package lambdatest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushgate/pushgate/internal/config"
	"github.com/pushgate/pushgate/internal/testkit/testenv"
)

// Function is one deployable Lambda.
type Function struct {
	// Name is the function's logical id in template.yaml.
	Name string
	// Dir is its main package, relative to the module root.
	Dir string
	// Events are the sample events in events/ (EventsDir) meant for it.
	Events []string
}

// EventsDir holds the sample events, relative to the module root.
const EventsDir = "events"

// Functions returns every function pushgate deploys.
func Functions() []Function {
	return []Function{
		{Name: config.ConnectionFunction, Dir: "cmd/connection", Events: []string{
			"ws-connect.json", "ws-subscribe.json", "ws-ping.json", "ws-update.json",
			"ws-unsubscribe.json", "ws-invalid.json", "ws-unknown-action.json", "ws-disconnect.json",
		}},
		{Name: config.BroadcastFunction, Dir: "cmd/broadcast", Events: []string{"sns-item-put.json", "broadcast-share.json"}},
		{Name: config.ItemsReadFunction, Dir: "cmd/items-read", Events: []string{"http-get.json", "http-list.json", "http-events.json"}},
		{Name: config.ItemsWriteFunction, Dir: "cmd/items-write", Events: []string{
			"http-put.json", "http-put-base64.json", "http-delete.json",
		}},
		{Name: config.AuthorizerFunction, Dir: "cmd/authorizer", Events: []string{"authorizer-connect.json", "authorizer-http.json"}},
		{Name: config.OutboxFunction, Dir: "cmd/outbox", Events: []string{"outbox-schedule.json"}},
	}
}

// RIEPackage is the emulator's main package, pinned by tools/go.mod.
const RIEPackage = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"

// InvokePath is where the emulator accepts invocations.
const InvokePath = "/2015-03-31/functions/function/invocations"

const (
	buildTimeout  = 10 * time.Minute
	startTimeout  = 20 * time.Second
	stopTimeout   = 5 * time.Second
	invokeTimeout = 60 * time.Second
	startTries    = 3
	// FunctionTimeout (seconds) bounds one invocation inside the emulator,
	// so a hung function fails its test instead of stalling the run.
	FunctionTimeout = "30"
	maxOutputBytes  = 4 << 20
)

// RepoRoot returns the module root: the nearest directory at or above the
// working directory that holds go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("lambdatest: working directory: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("lambdatest: no go.mod above the working directory")
		}
		dir = parent
	}
}

// Build compiles fns the way the Makefile does (CGO off, GOOS linux, -tags
// lambda.norpc, -trimpath, no VCS stamp) for goarch, each to outDir/<Name>/bootstrap,
// and returns those paths by function name. One go command builds them
// all, so they link in parallel.
func Build(t testing.TB, root, outDir, goarch string, fns ...Function) map[string]string {
	t.Helper()
	goBin := testenv.Required(t, "go")
	staging := filepath.Join(outDir, "staging-"+goarch)
	if err := os.MkdirAll(staging, 0o755); err != nil {
		t.Fatalf("lambdatest: %v", err)
	}
	args := []string{"build", "-tags", "lambda.norpc", "-trimpath", "-buildvcs=false", "-o", staging + string(filepath.Separator)}
	for _, fn := range fns {
		args = append(args, "./"+filepath.ToSlash(fn.Dir))
	}
	run(t, root, goBin, args, "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)

	paths := make(map[string]string, len(fns))
	for _, fn := range fns {
		dir := filepath.Join(outDir, fn.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatalf("lambdatest: %v", err)
		}
		// go build names each binary after its package directory.
		bootstrap := filepath.Join(dir, "bootstrap")
		if err := os.Rename(filepath.Join(staging, filepath.Base(fn.Dir)), bootstrap); err != nil {
			t.Fatalf("lambdatest: %s: %v", fn.Name, err)
		}
		paths[fn.Name] = bootstrap
	}
	return paths
}

// BuildRIE compiles aws-lambda-rie for this machine from the version
// tools/go.mod pins, to outDir/aws-lambda-rie.
func BuildRIE(t testing.TB, root, outDir string) string {
	t.Helper()
	goBin := testenv.Required(t, "go")
	out := filepath.Join(outDir, "aws-lambda-rie")
	run(t, root, goBin, []string{"build", "-modfile=" + filepath.Join(root, "tools", "go.mod"), "-o", out, RIEPackage},
		"CGO_ENABLED=0")
	return out
}

func run(t testing.TB, dir, bin string, args []string, env ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	// Later entries win, so the target settings override the caller's.
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("lambdatest: %s %v (%v): %v\n%s", bin, args, env, err, out)
	}
}

// BaseEnv is the environment every function needs under the emulator: the
// region, dummy credentials, DynamoDB and SNS at moto, Lambda too (so a
// share handed off by mistake fails there, not at AWS; tests of sharing
// point it at a lambdafake), no instance metadata lookups, and a home
// directory of its own so no shared AWS config of the machine leaks in.
// Callers add the function's variables.
func BaseEnv(moto, home string) map[string]string {
	return map[string]string{
		"AWS_REGION":                "us-east-1",
		"AWS_DEFAULT_REGION":        "us-east-1",
		"AWS_ACCESS_KEY_ID":         "test",
		"AWS_SECRET_ACCESS_KEY":     "test",
		"AWS_ENDPOINT_URL_DYNAMODB": moto,
		"AWS_ENDPOINT_URL_SNS":      moto,
		"AWS_ENDPOINT_URL_LAMBDA":   moto,
		// Secrets Manager's endpoint variable, by its SDK service id.
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": moto,
		"AWS_EC2_METADATA_DISABLED":        "true",
		"AWS_LAMBDA_FUNCTION_TIMEOUT":      FunctionTimeout,
		"HOME":                             home,
	}
}

// RIE is a running emulator serving one function.
type RIE struct {
	// URL is the emulator's base URL, http://127.0.0.1:PORT.
	URL string

	cmd    *exec.Cmd
	exited chan struct{}
	out    *testenv.Buffer
	client *http.Client
	// invoke serialises invocations: the emulator fails, or wedges, on a
	// second one while the first runs.
	invoke   sync.Mutex
	stopOnce sync.Once
	stopErr  error
}

// StartRIE runs bootstrap under the emulator at rie with exactly env (the
// emulator hands its whole environment to the function), both of its
// listeners on free 127.0.0.1 ports. The emulator is stopped when the test
// ends.
func StartRIE(t testing.TB, rie, bootstrap string, env map[string]string) *RIE {
	t.Helper()
	var errs []error
	for range startTries {
		r, err := startRIE(rie, bootstrap, env)
		if err == nil {
			t.Cleanup(func() {
				if err := r.Stop(); err != nil {
					t.Errorf("lambdatest: %v", err)
				}
			})
			return r
		}
		errs = append(errs, err)
	}
	t.Fatalf("lambdatest: start %s: %v", rie, errors.Join(errs...))
	return nil
}

func startRIE(rie, bootstrap string, env map[string]string) (*RIE, error) {
	// Two free ports: picking and binding are separate steps, so a lost
	// race shows as an early exit and the caller retries.
	invokeAddr, err := testenv.LoopbackAddr()
	if err != nil {
		return nil, err
	}
	runtimeAddr, err := testenv.LoopbackAddr()
	if err != nil {
		return nil, err
	}
	out := &testenv.Buffer{Max: maxOutputBytes}
	// Without --runtime-interface-emulator-address the emulator would
	// listen on 0.0.0.0:8080, and without --runtime-api-address its
	// Runtime API would take the fixed 127.0.0.1:9001.
	cmd := exec.Command(rie,
		"--runtime-interface-emulator-address", invokeAddr,
		"--runtime-api-address", runtimeAddr,
		bootstrap)
	cmd.Dir = filepath.Dir(bootstrap)
	cmd.Env = envList(env)
	cmd.Stdout = out
	cmd.Stderr = out
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r := &RIE{
		URL:    "http://" + invokeAddr,
		cmd:    cmd,
		exited: make(chan struct{}),
		out:    out,
		// No proxy: every request goes to 127.0.0.1.
		client: &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: invokeTimeout},
	}
	go func() {
		_ = cmd.Wait()
		close(r.exited)
	}()

	deadline := time.Now().Add(startTimeout)
	for {
		conn, err := net.DialTimeout("tcp", invokeAddr, time.Second)
		if err == nil {
			_ = conn.Close()
			return r, nil
		}
		select {
		case <-r.exited:
			return nil, fmt.Errorf("emulator on %s exited early: %s", invokeAddr, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = r.Stop()
			return nil, fmt.Errorf("emulator on %s did not listen within %v: %s", invokeAddr, startTimeout, out.String())
		}
	}
}

func envList(env map[string]string) []string {
	list := make([]string, 0, len(env))
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	sort.Strings(list)
	return list
}

// Invoke sends event to the function and returns the emulator's status and
// the function's response payload. Invocations are serialised.
func (r *RIE) Invoke(t testing.TB, event []byte) (int, []byte) {
	t.Helper()
	status, body, err := r.Call(t.Context(), event)
	if err != nil {
		t.Fatalf("lambdatest: %v", err)
	}
	return status, body
}

// Call is Invoke for other goroutines than the test's: it returns its
// failure instead of ending the test.
func (r *RIE) Call(ctx context.Context, event []byte) (int, []byte, error) {
	r.invoke.Lock()
	defer r.invoke.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL+InvokePath, bytes.NewReader(event))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("invoke %s: %w\nemulator output:\n%s", r.URL, err, r.Output())
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, fmt.Errorf("read the invocation response: %w", err)
	}
	return resp.StatusCode, body, nil
}

// Output returns what the emulator and the function wrote so far (the
// function's log lines among them).
func (r *RIE) Output() string { return r.out.String() }

// OutputHas reports whether the output holds s, waiting up to two seconds
// for it: the function's log reaches the emulator's output on its own
// schedule, not before the invocation's answer.
func (r *RIE) OutputHas(s string) bool {
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if strings.Contains(r.Output(), s) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// Stop ends the emulator and its process group, politely first; the
// emulator's SIGTERM handling also stops the function it started.
func (r *RIE) Stop() error {
	r.stopOnce.Do(func() {
		select {
		case <-r.exited:
			return
		default:
		}
		terminate(r.cmd)
		select {
		case <-r.exited:
			return
		case <-time.After(stopTimeout):
		}
		kill(r.cmd)
		select {
		case <-r.exited:
		case <-time.After(stopTimeout):
			r.stopErr = fmt.Errorf("aws-lambda-rie (pid %d) did not exit", r.cmd.Process.Pid)
		}
	})
	return r.stopErr
}

// ErrorLogs returns the function's log lines at level ERROR.
func (r *RIE) ErrorLogs() []string {
	var lines []string
	for line := range bytes.Lines([]byte(r.Output())) {
		if bytes.Contains(line, []byte(`"level":"ERROR"`)) {
			lines = append(lines, string(bytes.TrimSpace(line)))
		}
	}
	return lines
}
