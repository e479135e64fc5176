// Package readme_test runs the README's tour as written: the shell blocks
// marked <!-- tour --> run in order, in one shell, against a local stack
// with a socket in the tour's room standing in for the browser.
package readme_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pushgate/pushgate/internal/local"
	"github.com/pushgate/pushgate/internal/testkit/testenv"
	"github.com/pushgate/pushgate/internal/testkit/wsclient"
)

var tourBlock = regexp.MustCompile("(?s)<!-- tour -->\\s*```sh\\n(.*?)```")

func TestReadmeTourRunsAsWritten(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq", "aws", "go"} {
		testenv.Required(t, tool)
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..", "..")
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, tour, ok := strings.Cut(string(readme), "\n## A short tour\n")
	if !ok {
		t.Fatal("README.md has no \"## A short tour\" section")
	}
	tour, _, _ = strings.Cut(tour, "\n## ")
	blocks := tourBlock.FindAllStringSubmatch(tour, -1)
	if len(blocks) < 3 {
		t.Fatalf("the tour has %d blocks marked <!-- tour -->", len(blocks))
	}

	logs := &testenv.Buffer{}
	s, err := local.Start(t.Context(), local.Options{
		HTTPPort: -1, WSPort: -1,
		TemplatePath: filepath.Join(root, "template.yaml"),
		WebDir:       filepath.Join(root, "web"),
		Log:          slog.New(slog.NewJSONHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
		if t.Failed() {
			t.Logf("stack logs:\n%s", logs.String())
		}
	})
	board := wsclient.Dial(t, s.WebSocketURL()+"?room=demo")
	board.Send(`{"action":"whoami"}`)
	id, _ := board.Next()["connectionId"].(string)

	// The tour names the default ports; this stack has free ones.
	_, httpPort, _ := strings.Cut(strings.TrimPrefix(s.HTTPURL(), "http://"), ":")
	ports := strings.NewReplacer(
		"http://127.0.0.1:3000", s.HTTPURL(),
		"http://127.0.0.1:3001/prod", s.ManagementURL(),
		"go run ./cmd/local connections", "go run ./cmd/local connections -http-port "+httpPort,
	)
	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	for _, b := range blocks {
		script.WriteString(ports.Replace(b[1]))
		script.WriteString("\n")
	}
	cmd := exec.CommandContext(t.Context(), "bash", "-c", script.String())
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("the tour failed: %v\nscript:\n%s\nstdout:\n%s\nstderr:\n%s", err, script.String(), stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{`"version":1`, `"code":"precondition_failed"`, `"version":2`, "CONNECTION ID", id, `"version":3`, `"statusCode":201`} {
		if !strings.Contains(out, want) {
			t.Errorf("the tour's output lacks %s:\n%s", want, out)
		}
	}
	// What the board saw, in order.
	for _, want := range []string{`"type":"item.put","room":"demo","id":"note-1","version":1`, `"version":2`, `{"hello":"from a backend"}`, `"type":"item.deleted"`} {
		if f := board.NextFrame(); !strings.Contains(string(f.Data), want) {
			t.Errorf("the board got %s, want %s", f.Data, want)
		}
	}
	board.Quiet() // the invoke ran in a stack of its own
}
