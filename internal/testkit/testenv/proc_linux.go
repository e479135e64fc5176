package testenv

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts the child in its own process group, so stopping it
// also stops anything it spawned (moto may be a shim around python), and
// has the kernel kill it should the test binary die without cleaning up
// (a -timeout panic skips every deferred stop).
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func terminate(cmd *exec.Cmd) { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }

func kill(cmd *exec.Cmd) { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
