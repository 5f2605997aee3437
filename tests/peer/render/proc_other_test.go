//go:build !linux

package render

import "os/exec"

func killWithParent(*exec.Cmd) {}
