package kilntest

import (
	"crypto/tls"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
)

const (
	// DefaultReadyTimeout bounds how long Start waits for GET /ready to
	// answer 200 and the gRPC ports to accept (ReadyTimeout changes it).
	DefaultReadyTimeout = 20 * time.Second
	// ReadyPoll is the interval of the readiness polls.
	ReadyPoll = 50 * time.Millisecond
	// StopGrace is how long Stop waits after SIGTERM before SIGKILL.
	StopGrace = 5 * time.Second
	// TerminateTimeout is how long Terminate waits for a clean exit after
	// SIGTERM (the heads are flushed first).
	TerminateTimeout = 30 * time.Second
	// RequestTimeout bounds one request of a test (ReqCtx, TenantClient).
	RequestTimeout = 10 * time.Second
)

// Server is one kiln process started by the test. Its Proc gives the
// process, its exit state and its Log.
type Server struct {
	*Proc
	Storage  string // -storage.path, kept across Restart
	HTTPAddr string // 127.0.0.1:P
	GRPCAddr string // 127.0.0.1:G
	OTLPAddr string // 127.0.0.1:O with OTLPOnLoopback, else ""
	// Listeners are the addresses given to the listeners other than HTTP
	// and gRPC (by name X of -server.X-listen-port): "internal-grpc" (the
	// cluster plane) always, the others with OTLPOnLoopback or
	// OtherListenersOnLoopback.
	Listeners map[string]string

	cfg      config
	tls      *tls.Config // the harness's HTTPS client config (WithHTTPTLS); nil = plain HTTP
	signaled atomic.Bool // the test (or Stop) sent SIGTERM or SIGKILL
	hung     atomic.Bool // a request timed out and /ready did not answer either
}

// otlpMode says what Start does about the OTLP gRPC listener.
type otlpMode int

const (
	otlpDefault  otlpMode = iota // no flag: the binary's default or KILN_SERVER_OTLP_*
	otlpOff                      // -server.otlp-grpc-listen-port=-1
	otlpLoopback                 // 127.0.0.1 and a free port; Start waits for it
)

type config struct {
	storage        string
	args           []string
	logLevel       string
	readyTimeout   time.Duration
	otlp           otlpMode
	otherListeners bool
	ignoreEnvArgs  bool
	env            []string
	numbered       bool
	killAtCleanup  bool
	target         string
	name           string
	ports          []int // HTTP and gRPC ports to reuse (KeepPorts), else free ones
	keepPorts      bool
	portRetries    int
	httpTLS        *httpTLS // WithHTTPTLS
}

// Option changes how Start runs kiln.
type Option func(*config)

// Storage runs kiln on dir (default: a new t.TempDir()), for example to
// start it again on the storage of an earlier run.
func Storage(dir string) Option { return func(c *config) { c.storage = dir } }

// Env adds KEY=value entries to kiln's environment (after the test's own).
func Env(kv ...string) Option { return func(c *config) { c.env = append(c.env, kv...) } }

// Args appends flags to kiln's command line, after the harness's own flags
// and before KILN_EXTRA_ARGS.
func Args(args ...string) Option {
	return func(c *config) { c.args = append(c.args, args...) }
}

// LogLevel sets -log.level (default warn).
func LogLevel(level string) Option { return func(c *config) { c.logLevel = level } }

// ReadyTimeout changes how long Start waits for the server to be ready
// (default DefaultReadyTimeout), for example when it replays a WAL first.
func ReadyTimeout(d time.Duration) Option { return func(c *config) { c.readyTimeout = d } }

// OTLPOff turns the OTLP gRPC listener off (-server.otlp-grpc-listen-port=-1,
// when the binary has the flag) so that parallel servers do not compete for
// its port.
func OTLPOff() Option { return func(c *config) { c.otlp = otlpOff } }

// OTLPOnLoopback puts the OTLP gRPC listener on 127.0.0.1 and a free port
// (Server.OTLPAddr); Start waits until it accepts.
func OTLPOnLoopback() Option { return func(c *config) { c.otlp = otlpLoopback } }

// OtherListenersOnLoopback puts every listener that kiln -help lists
// besides HTTP and gRPC (each -server.X-listen-port that has a
// -server.X-listen-address; OTLP gRPC, 4317 on every address by default)
// on 127.0.0.1 and a free port, so that servers of parallel tests do not
// collide. The test fails when -help lists no -server.http-listen-port.
func OtherListenersOnLoopback() Option { return func(c *config) { c.otherListeners = true } }

// IgnoreEnvArgs does not append KILN_EXTRA_ARGS, for tests that depend on
// exactly the flags they pass (for example the log level of lines they
// search).
func IgnoreEnvArgs() Option { return func(c *config) { c.ignoreEnvArgs = true } }

// Numbered names the server "kiln#N" (N counting the servers the test
// binary started) instead of "kiln", in messages and as the log prefix,
// to tell apart runs on one storage.
func Numbered() Option { return func(c *config) { c.numbered = true } }

// KillAtCleanup makes the end-of-test cleanup SIGKILL a server still
// running, without checking how it exits (the test checks the exits it
// cares about with Terminate). By default the cleanup is Stop.
func KillAtCleanup() Option { return func(c *config) { c.killAtCleanup = true } }

// Target runs kiln with -target=name (default all), for example one
// process of a cluster (-cluster.nats-url in Args).
func Target(name string) Option { return func(c *config) { c.target = name } }

// Name names the server in messages and as its log prefix (default "kiln",
// or "kiln#N" with Numbered).
func Name(name string) Option { return func(c *config) { c.name = name } }

// KeepPorts makes Restart listen on the HTTP and gRPC ports of the server
// it restarts, as a pod restarted at the same address does (the other
// processes of a cluster then dial the address they knew).
func KeepPorts() Option { return func(c *config) { c.keepPorts = true } }

var serverCount atomic.Int64

// Start starts kiln (-target=all) with HTTP and gRPC on 127.0.0.1 and free
// ports and a private storage directory, waits until GET /ready answers 200
// and the gRPC port accepts, and registers the end-of-test cleanup: Stop
// (a crash or an exit on its own fails the test), or with KillAtCleanup a
// SIGKILL. The test is skipped without KILN_BIN.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	cfg := config{logLevel: "warn", readyTimeout: DefaultReadyTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	return start(t, cfg)
}

// Restart starts a new server on the storage of s with the options of s
// plus opts; s is terminated first (Terminate) if it still runs.
func (s *Server) Restart(t testing.TB, opts ...Option) *Server {
	t.Helper()
	if !s.Exited() {
		s.Terminate(t)
	}
	cfg := s.cfg
	cfg.args = slices.Clone(cfg.args)
	cfg.storage = s.Storage
	cfg.keepPorts = false
	for _, o := range opts {
		o(&cfg)
	}
	cfg.ports = nil
	if cfg.keepPorts {
		cfg.ports = slices.Clone(s.cfg.ports) // HTTP, gRPC and the cluster plane's
	}
	return start(t, cfg)
}

func start(t testing.TB, cfg config) *Server {
	t.Helper()
	bin := RequireBin(t)
	if cfg.storage == "" {
		cfg.storage = t.TempDir()
	}
	var others []string
	if cfg.otherListeners {
		others = otherListeners(t, bin)
	}
	switch {
	case cfg.otlp == otlpOff:
		others = slices.DeleteFunc(others, func(l string) bool { return l == "otlp-grpc" })
	case cfg.otlp == otlpLoopback && !slices.Contains(others, "otlp-grpc"):
		others = append(others, "otlp-grpc")
	}
	// The cluster plane (ingester.v1) of every server gets a port of its
	// own, first after HTTP and gRPC so that KeepPorts keeps it too: an
	// ingester is dialled there (Listeners["internal-grpc"]).
	kept := 2
	if HasFlag(t, "server.internal-grpc-listen-port") {
		others = slices.DeleteFunc(others, func(l string) bool { return l == "internal-grpc" })
		others = append([]string{"internal-grpc"}, others...)
		kept = 3
	}
	var ports []int
	inherited := cfg.ports != nil
	if inherited {
		// The kept ports are free too: keep them out of the others.
		ports = append(ports, cfg.ports...)
		for _, p := range freePorts(t, 2+len(others)+2) {
			if len(ports) < 2+len(others) && !slices.Contains(ports, p) {
				ports = append(ports, p)
			}
		}
	} else {
		ports = freePorts(t, 2+len(others))
	}
	cfg.ports = ports[:kept:kept]
	s := &Server{
		Storage:   cfg.storage,
		HTTPAddr:  net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])),
		GRPCAddr:  net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1])),
		Listeners: map[string]string{},
		cfg:       cfg,
	}
	target := cfg.target
	if target == "" {
		target = "all"
	}
	args := []string{
		"-target=" + target,
		"-server.http-listen-address=127.0.0.1",
		"-server.http-listen-port=" + strconv.Itoa(ports[0]),
		"-server.grpc-listen-address=127.0.0.1",
		"-server.grpc-listen-port=" + strconv.Itoa(ports[1]),
	}
	for i, l := range others {
		port := strconv.Itoa(ports[2+i])
		s.Listeners[l] = net.JoinHostPort("127.0.0.1", port)
		args = append(args,
			"-server."+l+"-listen-address=127.0.0.1",
			"-server."+l+"-listen-port="+port)
	}
	if cfg.otlp == otlpLoopback {
		s.OTLPAddr = s.Listeners["otlp-grpc"]
	}
	if cfg.otlp == otlpOff && HasFlag(t, "server.otlp-grpc-listen-port") {
		args = append(args, "-server.otlp-grpc-listen-port=-1")
	}
	if cfg.httpTLS != nil {
		args = append(args, cfg.httpTLS.args()...)
		s.tls = cfg.httpTLS.clientConfig(t)
	}
	args = append(args, "-storage.path="+cfg.storage, "-log.level="+cfg.logLevel)
	args = append(args, cfg.args...)
	if !cfg.ignoreEnvArgs {
		args = append(args, strings.Fields(os.Getenv("KILN_EXTRA_ARGS"))...)
	}

	name := "kiln"
	if cfg.name != "" {
		name = cfg.name
	}
	if n := serverCount.Add(1); cfg.numbered {
		name = fmt.Sprintf("%s#%d", name, n)
	}
	t.Logf("%s: starting %s %s", name, bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	if len(cfg.env) > 0 {
		cmd.Env = append(os.Environ(), cfg.env...)
	}
	p, err := StartProc(t, name, cmd)
	if err != nil {
		t.Fatalf("start kiln: %v", err)
	}
	s.Proc = p
	err = s.waitReady(t)
	if err != nil && !inherited && lostPortRace(s) && cfg.portRetries < maxPortRetries {
		// Another process took a free port between our probe and kiln's
		// bind: start again on new ports (unless they were kept).
		s.signaled.Store(true)
		t.Logf("%s: a port was taken before kiln bound it; retrying on new ports", name)
		cfg.portRetries++
		cfg.ports = nil
		return start(t, cfg)
	}
	t.Cleanup(func() { s.cleanup(t) })
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// maxPortRetries bounds the restarts after a lost port race.
const maxPortRetries = 3

// lostPortRace reports whether s exited because a listen port was in use
// (gRPC core does not say why a bind failed, so any listen failure counts).
func lostPortRace(s *Server) bool {
	return s.Exited() && len(s.Log.Grep("cannot listen on")) > 0
}

// waitReady polls GET /ready until it answers 200, then the gRPC ports
// until they accept, all within the ready timeout.
func (s *Server) waitReady(t testing.TB) error {
	t.Helper()
	t0 := time.Now()
	deadline := t0.Add(s.cfg.readyTimeout)
	client := &http.Client{Transport: s.NewHTTPTransport(), Timeout: time.Second}
	defer client.CloseIdleConnections()
	var lastErr error
	for {
		if s.Exited() {
			return fmt.Errorf("%s exited before becoming ready: %s", s.Name, s.ExitDescription())
		}
		resp, err := client.Get(s.HTTPURL() + "/ready")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
			lastErr = fmt.Errorf("GET /ready: HTTP %d", resp.StatusCode)
		} else {
			lastErr = err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v: %v", s.Name, s.cfg.readyTimeout, lastErr)
		}
		time.Sleep(ReadyPoll)
	}
	// The gRPC listeners are separate servers; make sure they accept too.
	addrs := []string{s.GRPCAddr}
	if s.OTLPAddr != "" {
		addrs = append(addrs, s.OTLPAddr)
	}
	for _, addr := range addrs {
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				_ = c.Close()
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s gRPC port %s not accepting after %v: %v", s.Name, addr, s.cfg.readyTimeout, err)
			}
			time.Sleep(ReadyPoll)
		}
	}
	ready := fmt.Sprintf("%s ready in %v: http=%s grpc=%s", s.Name, time.Since(t0).Round(time.Millisecond), s.HTTPAddr, s.GRPCAddr)
	for _, l := range slices.Sorted(maps.Keys(s.Listeners)) {
		ready += " " + l + "=" + s.Listeners[l]
	}
	t.Log(ready)
	return nil
}

// otherListeners returns the names X of the -server.X-listen-port flags
// that kiln -help lists, other than http and grpc, for which it also lists
// -server.X-listen-address.
func otherListeners(t testing.TB, bin string) []string {
	t.Helper()
	text, err := helpText(bin)
	if !strings.Contains(text, "-server.http-listen-port") {
		t.Fatalf("%s -help does not list -server.http-listen-port (%v): %s", bin, err, text)
	}
	var names []string
	for _, f := range strings.Fields(text) {
		name, ok := strings.CutPrefix(f, "-server.")
		if !ok {
			continue
		}
		name, ok = strings.CutSuffix(name, "-listen-port")
		if !ok || name == "http" || name == "grpc" || slices.Contains(names, name) {
			continue
		}
		if strings.Contains(text, "-server."+name+"-listen-address") {
			names = append(names, name)
		}
	}
	return names
}

// HTTPURL is http://127.0.0.1:P, the HTTP (Connect, /ready) base URL, or
// https://127.0.0.1:P with WithHTTPTLS.
func (s *Server) HTTPURL() string {
	if s.tls != nil {
		return "https://" + s.HTTPAddr
	}
	return "http://" + s.HTTPAddr
}

// GRPCURL is http://127.0.0.1:G, the gRPC (h2c) base URL.
func (s *Server) GRPCURL() string { return "http://" + s.GRPCAddr }

// RequireAlive fails the test at once when the server exited without being
// told to, or hung (CheckAfterError); call it after a request failed so
// that a crash is reported as such.
func (s *Server) RequireAlive(t testing.TB) {
	t.Helper()
	if s.Exited() && !s.signaled.Load() {
		t.Fatalf("%s died: %s", s.Name, s.ExitDescription())
	}
	if s.hung.Load() {
		t.Fatalf("%s is hung: a request timed out after %v and GET /ready did not answer", s.Name, RequestTimeout)
	}
}

// CheckAfterError is called after a request failed: when the failure looks
// like a lost connection it gives the process a moment to be reaped; when
// it is a timeout and GET /ready does not answer within 2 s either, the
// server counts as hung. Then it fails the test at once if the server is
// gone or hung (RequireAlive). A nil err does nothing.
func (s *Server) CheckAfterError(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		return
	}
	switch ConnectCode(err) {
	case connect.CodeUnavailable, connect.CodeUnknown, connect.CodeInternal:
		select {
		case <-s.Done():
		case <-time.After(300 * time.Millisecond):
		}
	case connect.CodeDeadlineExceeded:
		if !s.Exited() && !s.ReadyWithin(2*time.Second) {
			s.hung.Store(true)
		}
	}
	s.RequireAlive(t)
}

// ReadyWithin reports whether GET /ready answers 200 within d.
func (s *Server) ReadyWithin(d time.Duration) bool {
	return s.readyStatus(d) == http.StatusOK
}

// ReadyStatus returns the status of GET /ready, 0 when it does not answer
// within 3 s.
func (s *Server) ReadyStatus() int { return s.readyStatus(3 * time.Second) }

func (s *Server) readyStatus(d time.Duration) int {
	client := &http.Client{Transport: s.NewHTTPTransport(), Timeout: d}
	defer client.CloseIdleConnections()
	resp, err := client.Get(s.HTTPURL() + "/ready")
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// GetReady returns the HTTP status of GET /ready and fails the test when
// the request fails (as a crash, if the server is gone).
func (s *Server) GetReady(t testing.TB) int {
	t.Helper()
	ctx, cancel := ReqCtx(t)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.HTTPURL()+"/ready", nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: s.NewHTTPTransport()}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		s.RequireAlive(t)
		t.Fatalf("GET /ready: %v", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// Stop sends SIGTERM, then SIGKILL after StopGrace, and fails the test
// (without stopping it) when the process exited on its own before, crashed
// (died of a signal it was not sent) or exited non-zero. It is the default
// end-of-test cleanup.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if s.Exited() {
		if !s.signaled.Load() {
			t.Errorf("%s exited on its own during the test: %s", s.Name, s.ExitDescription())
		}
		return
	}
	s.signaled.Store(true)
	killed := s.StopWithin(StopGrace)
	if killed {
		t.Logf("%s did not exit within %v of SIGTERM; sent SIGKILL", s.Name, StopGrace)
	}
	state := s.State()
	if state == nil {
		t.Errorf("%s: %v", s.Name, s.WaitErr())
		return
	}
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		sig := ws.Signal()
		if sig == syscall.SIGTERM || (killed && sig == syscall.SIGKILL) {
			t.Logf("%s stopped: %s", s.Name, s.ExitDescription())
			return
		}
		t.Errorf("%s crashed: %s", s.Name, s.ExitDescription())
		return
	}
	if code := state.ExitCode(); code != 0 {
		t.Errorf("%s exited with code %d after SIGTERM (expected 0)", s.Name, code)
		return
	}
	t.Logf("%s stopped: %s", s.Name, s.ExitDescription())
}

// Terminate sends SIGTERM (the heads are flushed as blocks) and requires a
// clean exit 0 within TerminateTimeout; the test fails at once otherwise.
func (s *Server) Terminate(t testing.TB) {
	t.Helper()
	s.RequireAlive(t)
	s.signaled.Store(true)
	t0 := time.Now()
	if s.StopWithin(TerminateTimeout) {
		t.Fatalf("%s did not exit within %v of SIGTERM (killed)", s.Name, TerminateTimeout)
	}
	if state := s.State(); state == nil || state.ExitCode() != 0 {
		t.Fatalf("%s: after SIGTERM: %s (want exit code 0)", s.Name, s.ExitDescription())
	}
	t.Logf("%s stopped by SIGTERM in %v", s.Name, time.Since(t0).Round(time.Millisecond))
}

// Kill sends SIGKILL (a crash, as far as the server can tell) and waits for
// the process to be gone.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	s.RequireAlive(t)
	s.signaled.Store(true)
	if err := s.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("%s: SIGKILL: %v", s.Name, err)
	}
	<-s.Done()
	t.Logf("%s: %s", s.Name, s.ExitDescription())
}

// cleanup ends a server at the end of the test: Stop, or with KillAtCleanup
// a SIGKILL when it still runs (and an error when it exited on its own).
func (s *Server) cleanup(t testing.TB) {
	if !s.cfg.killAtCleanup {
		s.Stop(t)
		return
	}
	if s.Exited() {
		if !s.signaled.Load() {
			t.Errorf("%s exited on its own during the test: %s", s.Name, s.ExitDescription())
		}
		return
	}
	s.signaled.Store(true)
	_ = s.Cmd.Process.Kill()
	<-s.Done()
}
