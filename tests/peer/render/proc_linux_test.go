package render

import (
	"os/exec"
	"syscall"
)

// killWithParent makes the kernel SIGKILL the server if the test binary
// dies without running its cleanups (for example on a go test -timeout).
func killWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
