//go:build !linux

package kilntest

import "os/exec"

// KillWithParent does nothing where there is no parent-death signal.
func KillWithParent(*exec.Cmd) {}
