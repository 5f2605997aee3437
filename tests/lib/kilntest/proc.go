package kilntest

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// Proc is a child process started by the test, its output in a Log.
type Proc struct {
	Name string    // for messages and the log prefix ("<Name>| ")
	Cmd  *exec.Cmd // started
	Log  *Log      // stdout and stderr, line by line

	done    chan struct{}
	state   *os.ProcessState // valid once done is closed
	waitErr error
}

// StartProc starts cmd with its stdout and stderr in a Log prefixed
// "<name>| ", to be killed with the test binary (KillWithParent). The log
// is closed when the process exits, and at the end of the test at the
// latest. StartProc does not stop the process: the caller registers the
// cleanup that does.
func StartProc(t testing.TB, name string, cmd *exec.Cmd) (*Proc, error) {
	t.Helper()
	p := &Proc{Name: name, Cmd: cmd, Log: NewLog(t, name+"| "), done: make(chan struct{})}
	cmd.Stdout = p.Log
	cmd.Stderr = p.Log
	KillWithParent(cmd)
	started := make(chan error, 1)
	go func() {
		// The parent-death signal is tied to the thread that started the
		// child: keep this goroutine on its thread while the child runs.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.waitErr = cmd.Wait()
		p.state = cmd.ProcessState
		p.Log.Close()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	t.Cleanup(p.Log.Close)
	return p, nil
}

// Done is closed once the process has exited and its output is logged.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// State is the exit state: nil while the process runs, or when waiting for
// it failed (WaitErr).
func (p *Proc) State() *os.ProcessState {
	if !p.Exited() {
		return nil
	}
	return p.state
}

// WaitErr is what cmd.Wait returned (nil while the process runs).
func (p *Proc) WaitErr() error {
	if !p.Exited() {
		return nil
	}
	return p.waitErr
}

// ExitDescription says how the process ended: "exit code N", "killed by
// signal S" (with " (core dumped)") or the wait error.
func (p *Proc) ExitDescription() string {
	if !p.Exited() {
		return "running"
	}
	if p.state == nil {
		return fmt.Sprintf("wait error %v", p.waitErr)
	}
	if ws, ok := p.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		desc := fmt.Sprintf("killed by signal %v", ws.Signal())
		if ws.CoreDump() {
			desc += " (core dumped)"
		}
		return desc
	}
	return fmt.Sprintf("exit code %d", p.state.ExitCode())
}

// StopWithin sends SIGTERM, then SIGKILL when the process has not exited
// within grace, and waits for it; killed reports whether SIGKILL was sent.
func (p *Proc) StopWithin(grace time.Duration) (killed bool) {
	if p.Exited() {
		return false
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		killed = true
		_ = p.Cmd.Process.Kill()
		<-p.done
	}
	return killed
}
