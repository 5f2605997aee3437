package kilntest

import (
	"os/exec"
	"syscall"
)

// KillWithParent makes the kernel SIGKILL the process started from cmd if
// the test binary dies without running its cleanups (for example on a go
// test -timeout). The signal is tied to the thread that starts the child:
// StartProc keeps that thread for as long as the child runs.
func KillWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
