package keycloak

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts Keycloak in its own process group, so Close can signal
// everything kc.sh started, and has the kernel kill it if the test binary
// dies without cleaning up (a panic, or go test's -timeout).
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func signalGroup(pid int, sig syscall.Signal) error { return syscall.Kill(-pid, sig) }
