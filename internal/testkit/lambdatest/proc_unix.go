//go:build unix

package lambdatest

import (
	"os/exec"
	"syscall"
)

// setProcessGroup gives the emulator a process group of its own, so
// stopping it reaches whatever else the group holds. The function itself
// runs in a group the emulator makes for it; the emulator stops it on
// SIGTERM, and an orphaned one exits once the Runtime API is gone.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

func terminate(cmd *exec.Cmd) { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }

func kill(cmd *exec.Cmd) { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
