// Package readme_test runs the README's tour as written: the shell blocks
// marked <!-- tour --> run in order, in one shell, against a local stack
// with a socket in the tour's room standing in for the browser.
package readme_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pushgate/pushgate/internal/testkit/localtest"
	"github.com/pushgate/pushgate/internal/testkit/testenv"
	"github.com/pushgate/pushgate/internal/testkit/wsclient"
)

var tourBlock = regexp.MustCompile("(?s)<!-- tour -->\\s*```sh\\n(.*?)```")

func TestReadmeTourRunsAsWritten(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq", "aws", "go"} {
		testenv.Required(t, tool)
	}
	root := localtest.Root()
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

	s, _ := localtest.Start(t, nil)
	board := wsclient.Dial(t, localtest.WebSocketURL(t, s, "room=demo"))
	board.Send(`{"action":"whoami"}`)
	id, _ := board.Next()["connectionId"].(string)

	// The tour names the default ports; this stack has free ones.
	_, httpPort, _ := strings.Cut(strings.TrimPrefix(s.HTTPURL(), "http://"), ":")
	ports := strings.NewReplacer(
		"http://127.0.0.1:3000", s.HTTPURL(),
		// The Management API, and the WebSocket upgrade, on the stack's port.
		"http://127.0.0.1:3001/prod", s.ManagementURL(),
		"go run ./cmd/local connections", "go run ./cmd/local connections -http-port "+httpPort,
		"go run ./cmd/local token", "go run ./cmd/local token -http-port "+httpPort,
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
	for _, want := range []string{`"version":1`, `"code":"precondition_failed"`, `"version":2`, `{"message":"Unauthorized"}`,
		`"code":"forbidden"`, `"seq":2,"type":"item.put"`, `"last":2}`, "\n401\n", "CONNECTION ID", id, `"version":3`, `"statusCode":201`} {
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
