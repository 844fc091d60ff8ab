//go:build !unix

package keycloak

import (
	"os/exec"
	"syscall"
)

// setProcAttr does nothing: kc.sh needs a Unix shell, so Launch fails
// before a process group would matter.
func setProcAttr(*exec.Cmd) {}

func signalGroup(int, syscall.Signal) error { return syscall.EWINDOWS }
