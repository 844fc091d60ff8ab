//go:build unix && !linux

package keycloak

import (
	"os/exec"
	"syscall"
)

// setProcAttr puts Keycloak in its own process group, so Close can signal
// everything kc.sh started.
func setProcAttr(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }

func signalGroup(pid int, sig syscall.Signal) error { return syscall.Kill(-pid, sig) }
