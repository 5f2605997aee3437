package kilntest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// NATSReadyTimeout bounds how long StartNATS waits for the client port.
const NATSReadyTimeout = 20 * time.Second

// NATS is a nats-server with JetStream that the test started on 127.0.0.1:
// the coordination service of a kiln cluster (-cluster.nats-url=URL()).
// It is configured by a file the harness writes (ConfPath), with TLS and
// authorization when options ask for them. Restart brings it back on the
// same port, configuration and store directory, as a restarted server with
// a persistent volume comes back.
type NATS struct {
	*Proc
	Bin      string
	Port     int
	StoreDir string // JetStream file store, kept across restarts
	ConfPath string // the nats-server configuration file

	cfg  natsConfig
	runs int
}

// natsConfig is what the NATSOptions ask of the server.
type natsConfig struct {
	ca            *CA
	verifyClients bool
	user, pass    string
	token         string
	extra         []string
}

// NATSOption changes how StartNATS configures nats-server.
type NATSOption func(*natsConfig)

// NATSTLS serves TLS only, with a certificate for localhost and 127.0.0.1
// issued by ca; with verifyClients the server also requires client
// certificates and verifies them against ca.
func NATSTLS(ca *CA, verifyClients bool) NATSOption {
	return func(c *natsConfig) { c.ca, c.verifyClients = ca, verifyClients }
}

// NATSUser admits only clients that give user and password.
func NATSUser(user, password string) NATSOption {
	return func(c *natsConfig) { c.user, c.pass = user, password }
}

// NATSToken admits only clients that give token.
func NATSToken(token string) NATSOption {
	return func(c *natsConfig) { c.token = token }
}

// NATSConfig appends lines to the configuration file, for example the
// operator, resolver and preloaded accounts of decentralized (JWT)
// authorization (package natsjwt).
func NATSConfig(lines ...string) NATSOption {
	return func(c *natsConfig) { c.extra = append(c.extra, lines...) }
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
// store directory, configured by opts, and waits until the port accepts.
// It is killed at the end of the test.
func StartNATS(t testing.TB, opts ...NATSOption) *NATS {
	t.Helper()
	n := &NATS{Bin: NATSBin(t), Port: FreePort(t), StoreDir: t.TempDir()}
	for _, o := range opts {
		o(&n.cfg)
	}
	n.ConfPath = filepath.Join(t.TempDir(), "nats-server.conf")
	if err := os.WriteFile(n.ConfPath, []byte(n.config(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	n.start(t)
	return n
}

// TLS reports whether the server speaks TLS only.
func (n *NATS) TLS() bool { return n.cfg.ca != nil }

// URL is nats://127.0.0.1:PORT, or tls://127.0.0.1:PORT when it speaks TLS.
func (n *NATS) URL() string {
	if n.TLS() {
		return "tls://" + n.Addr()
	}
	return "nats://" + n.Addr()
}

// Addr is 127.0.0.1:PORT.
func (n *NATS) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.Port)) }

// config is the text of the configuration file (nats-server's format,
// strings quoted as JSON, which it reads).
func (n *NATS) config(t testing.TB) string {
	t.Helper()
	q := strconv.Quote
	lines := []string{
		"listen: " + q(n.Addr()),
		"jetstream {",
		"  store_dir: " + q(n.StoreDir),
		"}",
	}
	if c := n.cfg; c.ca != nil {
		cert := c.ca.Issue(t, fmt.Sprintf("nats-server-%d", n.Port), CertOptions{})
		lines = append(lines, "tls {",
			"  cert_file: "+q(cert.CertPath),
			"  key_file: "+q(cert.KeyPath),
			"  ca_file: "+q(c.ca.CAPath),
			"  verify: "+strconv.FormatBool(c.verifyClients),
			"  timeout: 5",
			"}")
	}
	switch c := n.cfg; {
	case c.user != "" && c.token != "":
		t.Fatal("StartNATS: NATSUser and NATSToken exclude each other")
	case c.user != "":
		lines = append(lines, "authorization {", "  user: "+q(c.user), "  password: "+q(c.pass), "}")
	case c.token != "":
		lines = append(lines, "authorization {", "  token: "+q(c.token), "}")
	}
	lines = append(lines, n.cfg.extra...)
	return strings.Join(lines, "\n") + "\n"
}

func (n *NATS) start(t testing.TB) {
	t.Helper()
	n.runs++
	name := fmt.Sprintf("nats#%d", n.runs)
	args := []string{"-js", "-c", n.ConfPath}
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
