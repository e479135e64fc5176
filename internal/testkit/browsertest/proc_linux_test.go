package browsertest_test

import (
	"os/exec"
	"syscall"
)

// inOwnGroup puts node in its own process group, so stopping it reaches the
// test runner's children too, and has the kernel kill it should the test
// binary die without cleaning up.
func inOwnGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// SIGTERM, not SIGKILL: Playwright closes the browsers it launched when
	// node is terminated, and cannot when it is killed.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
}
