package local

import (
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pushgate/pushgate/internal/testkit/testenv"
)

// TestMakeLocalStopsCleanlyOnCtrlC: Ctrl-C sends SIGINT to the terminal's
// whole foreground group, make included. The stack must get it, close and
// say so, and make must have no error to report.
func TestMakeLocalStopsCleanlyOnCtrlC(t *testing.T) {
	makeBin := testenv.Required(t, "make")
	args := "-http-port " + strconv.Itoa(testenv.FreePort(t)) + " -ws-port " + strconv.Itoa(testenv.FreePort(t))
	cmd := exec.Command(makeBin, "-C", "../..", "local", "ARGS="+args)
	var out testenv.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.After(2 * time.Minute) // the first go build may take a while
	for !strings.Contains(out.String(), "Ctrl-C stops it.") {
		select {
		case err := <-done:
			t.Fatalf("make local ended early: %v\n%s", err, out.String())
		case <-deadline:
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			t.Fatalf("make local did not start:\n%s", out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		t.Fatalf("make local did not stop on SIGINT:\n%s", out.String())
	}
	got := out.String()
	if !strings.HasSuffix(got, "pushgate local stack stopped\n") {
		t.Errorf("the stop line is not the last output:\n%s", got)
	}
	if strings.Contains(got, "make: ***") {
		t.Errorf("make reported an error:\n%s", got)
	}
}
