package kilntest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// NATSReadyTimeout bounds how long StartNATS waits for the client port.
const NATSReadyTimeout = 20 * time.Second

// NATS is a nats-server with JetStream that the test started on 127.0.0.1:
// the coordination service of a kiln cluster (-cluster.nats-url=URL()).
// Restart brings it back on the same port and store directory, as a
// restarted server with a persistent volume comes back.
type NATS struct {
	*Proc
	Bin      string
	Port     int
	StoreDir string // JetStream file store (-sd), kept across restarts

	runs int
}

// NATSBin returns the nats-server binary: $KILN_NATS_SERVER, else the
// first nats-server on $PATH, /usr/sbin or /usr/local/sbin; the test is
// skipped when there is none.
func NATSBin(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("KILN_NATS_SERVER"); bin != "" {
		return bin
	}
	if bin, err := exec.LookPath("nats-server"); err == nil {
		return bin
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin"} {
		bin := filepath.Join(dir, "nats-server")
		if st, err := os.Stat(bin); err == nil && st.Mode()&0o111 != 0 {
			return bin
		}
	}
	t.Skip("nats-server is not installed (set KILN_NATS_SERVER)")
	return ""
}

// StartNATS starts nats-server -js on 127.0.0.1, a free port and a new
// store directory, and waits until the port accepts. It is killed at the
// end of the test.
func StartNATS(t testing.TB) *NATS {
	t.Helper()
	n := &NATS{Bin: NATSBin(t), Port: FreePort(t), StoreDir: t.TempDir()}
	n.start(t)
	return n
}

// URL is nats://127.0.0.1:PORT.
func (n *NATS) URL() string { return "nats://" + n.Addr() }

// Addr is 127.0.0.1:PORT.
func (n *NATS) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.Port)) }

func (n *NATS) start(t testing.TB) {
	t.Helper()
	n.runs++
	name := fmt.Sprintf("nats#%d", n.runs)
	args := []string{"-js", "-a", "127.0.0.1", "-p", strconv.Itoa(n.Port), "-sd", n.StoreDir}
	t.Logf("%s: starting %s %v", name, n.Bin, args)
	p, err := StartProc(t, name, exec.Command(n.Bin, args...))
	if err != nil {
		t.Fatalf("start nats-server: %v", err)
	}
	n.Proc = p
	t.Cleanup(func() {
		if !p.Exited() {
			_ = p.Cmd.Process.Kill()
			<-p.Done()
		}
	})
	t0 := time.Now()
	for {
		if p.Exited() {
			t.Fatalf("%s exited before accepting: %s\n%s", name, p.ExitDescription(), p.Log.Tail(20))
		}
		c, err := net.DialTimeout("tcp", n.Addr(), time.Second)
		if err == nil {
			_ = c.Close()
			break
		}
		if time.Since(t0) > NATSReadyTimeout {
			t.Fatalf("%s: %s not accepting after %v: %v", name, n.Addr(), NATSReadyTimeout, err)
		}
		time.Sleep(ReadyPoll)
	}
	t.Logf("%s accepting on %s in %v", name, n.Addr(), time.Since(t0).Round(time.Millisecond))
}

// Stop sends SIGTERM (nats-server shuts down cleanly, its store kept),
// then SIGKILL after StopGrace, and waits for the process to be gone.
func (n *NATS) Stop(t testing.TB) {
	t.Helper()
	if n.StopWithin(StopGrace) {
		t.Logf("%s did not exit within %v of SIGTERM; sent SIGKILL", n.Name, StopGrace)
	}
	t.Logf("%s stopped: %s", n.Name, n.ExitDescription())
}

// Kill sends SIGKILL and waits for the process to be gone.
func (n *NATS) Kill(t testing.TB) {
	t.Helper()
	_ = n.Cmd.Process.Signal(syscall.SIGKILL)
	<-n.Done()
	t.Logf("%s: %s", n.Name, n.ExitDescription())
}

// Restart starts nats-server again on the same port and store directory
// (the running one is stopped first).
func (n *NATS) Restart(t testing.TB) {
	t.Helper()
	if !n.Exited() {
		n.Stop(t)
	}
	n.start(t)
}
