package ingest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/net/http2"

	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
)

const (
	readyTimeout   = 20 * time.Second
	readyPoll      = 50 * time.Millisecond
	stopGrace      = 5 * time.Second
	requestTimeout = 10 * time.Second
	// requestIDHeader tags each request so that statusRecorder can report
	// the HTTP status and Content-Type the server answered it with.
	requestIDHeader = "X-Peer-Request-Id"
)

// kilnServer is one running kiln process, started by the test itself.
type kilnServer struct {
	cmd      *exec.Cmd
	httpAddr string // 127.0.0.1:P
	grpcAddr string // 127.0.0.1:G
	done     chan struct{}
	state    *os.ProcessState // valid after done is closed
	waitErr  error
	stopping atomic.Bool
	hung     atomic.Bool // a request timed out and /ready did not answer either
	log      *lineLogger
}

// requireEnv returns KILN_BIN and KILN_TESTDATA, skipping the test when the
// binary is not configured.
func requireEnv(t *testing.T) (bin, testdata string) {
	t.Helper()
	bin = os.Getenv("KILN_BIN")
	if bin == "" {
		t.Skip("KILN_BIN is not set; skipping the peer test")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("KILN_BIN=%s: %v", bin, err)
	}
	testdata = os.Getenv("KILN_TESTDATA")
	if testdata == "" {
		t.Fatal("KILN_TESTDATA is not set")
	}
	if _, err := os.Stat(testdata); err != nil {
		t.Fatalf("KILN_TESTDATA=%s: %v", testdata, err)
	}
	return bin, testdata
}

// freePort binds 127.0.0.1:0, notes the port and closes the listener.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	return port
}

// lineLogger forwards the server's output, line by line, to the test log
// while the test runs and to stderr afterwards.
type lineLogger struct {
	mu     sync.Mutex
	t      *testing.T
	prefix string
	buf    bytes.Buffer
	closed bool
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	for {
		line, err := l.buf.ReadString('\n')
		if err != nil {
			// Incomplete line: keep it for the next write.
			l.buf.Reset()
			l.buf.WriteString(line)
			break
		}
		l.emit(strings.TrimRight(line, "\n"))
	}
	return len(p), nil
}

func (l *lineLogger) emit(line string) {
	if l.closed {
		fmt.Fprintf(os.Stderr, "%s%s\n", l.prefix, line)
		return
	}
	l.t.Logf("%s%s", l.prefix, line)
}

func (l *lineLogger) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() > 0 {
		l.emit(l.buf.String())
		l.buf.Reset()
	}
	l.closed = true
}

// helpText caches the binary's -help output, to pass optional flags only to
// binaries that know them.
var (
	helpOnce sync.Once
	helpText string
)

// hasFlag reports whether the kiln binary lists flag in its -help output.
func hasFlag(bin, flag string) bool {
	helpOnce.Do(func() {
		out, _ := exec.Command(bin, "-help").CombinedOutput()
		helpText = string(out)
	})
	return strings.Contains(helpText, flag)
}

// startServer starts kiln on free ports with a private storage directory
// (plus extra flags), waits until /ready answers 200 and registers the
// shutdown and crash check. The OTLP gRPC listener, when the binary has
// one, is turned off so that parallel test servers do not compete for it.
func startServer(t *testing.T, extra ...string) *kilnServer {
	t.Helper()
	bin, _ := requireEnv(t)
	httpPort, grpcPort := freePort(t), freePort(t)
	for grpcPort == httpPort {
		grpcPort = freePort(t)
	}
	args := []string{
		"-target=all",
		"-server.http-listen-address=127.0.0.1",
		"-server.http-listen-port=" + strconv.Itoa(httpPort),
		"-server.grpc-listen-address=127.0.0.1",
		"-server.grpc-listen-port=" + strconv.Itoa(grpcPort),
		"-storage.path=" + t.TempDir(),
		"-log.level=warn",
	}
	if hasFlag(bin, "server.otlp-grpc-listen-port") {
		args = append(args, "-server.otlp-grpc-listen-port=-1")
	}
	args = append(args, extra...)
	if env := strings.Fields(os.Getenv("KILN_EXTRA_ARGS")); len(env) > 0 {
		args = append(args, env...)
	}
	s := &kilnServer{
		httpAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort)),
		grpcAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(grpcPort)),
		done:     make(chan struct{}),
		log:      &lineLogger{t: t, prefix: "kiln| "},
	}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout = s.log
	s.cmd.Stderr = s.log
	killWithParent(s.cmd)
	t.Logf("starting %s %s", bin, strings.Join(args, " "))
	started := make(chan error, 1)
	go func() {
		// The parent-death signal is tied to the thread that started the
		// child: keep this goroutine on its thread while the child runs.
		runtime.LockOSThread()
		if err := s.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		s.waitErr = s.cmd.Wait()
		s.state = s.cmd.ProcessState
		close(s.done)
	}()
	if err := <-started; err != nil {
		t.Fatalf("start kiln: %v", err)
	}
	t.Cleanup(func() { s.stop(t) })

	deadline := time.Now().Add(readyTimeout)
	client := &http.Client{Timeout: time.Second}
	var lastErr error
	for {
		select {
		case <-s.done:
			t.Fatalf("kiln exited before becoming ready: %s", s.exitDescription())
		default:
		}
		resp, err := client.Get(s.httpURL() + "/ready")
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
			t.Fatalf("kiln not ready after %v: %v", readyTimeout, lastErr)
		}
		time.Sleep(readyPoll)
	}
	// The gRPC listener is a separate server; make sure it accepts too.
	for {
		c, err := net.DialTimeout("tcp", s.grpcAddr, time.Second)
		if err == nil {
			_ = c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kiln gRPC port %s not accepting after %v: %v", s.grpcAddr, readyTimeout, err)
		}
		time.Sleep(readyPoll)
	}
	t.Logf("kiln ready: http=%s grpc=%s", s.httpAddr, s.grpcAddr)
	return s
}

func (s *kilnServer) httpURL() string { return "http://" + s.httpAddr }
func (s *kilnServer) grpcURL() string { return "http://" + s.grpcAddr }

func (s *kilnServer) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *kilnServer) exitDescription() string {
	if s.state == nil {
		return fmt.Sprintf("wait error %v", s.waitErr)
	}
	if ws, ok := s.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		desc := fmt.Sprintf("killed by signal %v", ws.Signal())
		if ws.CoreDump() {
			desc += " (core dumped)"
		}
		return desc
	}
	return fmt.Sprintf("exit code %d", s.state.ExitCode())
}

// requireAlive fails the test at once when the server is gone; call it after
// a request failed so that a crash is reported as such.
func (s *kilnServer) requireAlive(t *testing.T) {
	t.Helper()
	if s.exited() && !s.stopping.Load() {
		t.Fatalf("kiln died: %s", s.exitDescription())
	}
	if s.hung.Load() {
		t.Fatalf("kiln is hung: a request timed out after %v and GET /ready did not answer", requestTimeout)
	}
}

// checkAfterError is called after a request failed: when the failure looks
// like a lost connection it gives the process a moment to be reaped, then
// fails the test at once if the server is gone.
func (s *kilnServer) checkAfterError(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	switch connectCode(err) {
	case connect.CodeUnavailable, connect.CodeUnknown, connect.CodeInternal:
		select {
		case <-s.done:
		case <-time.After(300 * time.Millisecond):
		}
	case connect.CodeDeadlineExceeded:
		if !s.exited() && !s.readyWithin(2*time.Second) {
			s.hung.Store(true)
		}
	}
	s.requireAlive(t)
}

// stop sends SIGTERM, then SIGKILL after stopGrace, and fails the test when
// the process crashed (died of a signal it was not sent) at any point.
func (s *kilnServer) stop(t *testing.T) {
	defer s.log.close()
	if s.exited() {
		t.Errorf("kiln exited on its own during the test: %s", s.exitDescription())
		return
	}
	s.stopping.Store(true)
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	killed := false
	select {
	case <-s.done:
	case <-time.After(stopGrace):
		t.Logf("kiln did not exit within %v of SIGTERM; sending SIGKILL", stopGrace)
		killed = true
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	if s.state == nil {
		t.Errorf("kiln: %v", s.waitErr)
		return
	}
	if ws, ok := s.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		sig := ws.Signal()
		if sig == syscall.SIGTERM || (killed && sig == syscall.SIGKILL) {
			t.Logf("kiln stopped: %s", s.exitDescription())
			return
		}
		t.Errorf("kiln crashed: %s", s.exitDescription())
		return
	}
	if code := s.state.ExitCode(); code != 0 {
		t.Errorf("kiln exited with code %d after SIGTERM (expected 0)", code)
		return
	}
	t.Logf("kiln stopped: %s", s.exitDescription())
}

// statusRecorder keeps the HTTP status and Content-Type of every response
// to a request tagged with requestIDHeader.
type statusRecorder struct {
	mu sync.Mutex
	m  map[string]httpOutcome
}

type httpOutcome struct {
	status      int
	contentType string
	proto       string
}

func (r *statusRecorder) set(id string, o httpOutcome) {
	if id == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]httpOutcome{}
	}
	r.m[id] = o
}

func (r *statusRecorder) get(id string) (httpOutcome, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	o, ok := r.m[id]
	return o, ok
}

// tenantTransport adds X-Scope-OrgID, as Alloy and Grafana do with their
// configured headers, and records response statuses.
type tenantTransport struct {
	base   http.RoundTripper
	tenant string
	rec    *statusRecorder
}

func (tt *tenantTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	if tt.tenant != "" {
		r.Header.Set("X-Scope-OrgID", tt.tenant)
	}
	resp, err := tt.base.RoundTrip(r)
	if err == nil && tt.rec != nil {
		tt.rec.set(req.Header.Get(requestIDHeader), httpOutcome{
			status:      resp.StatusCode,
			contentType: resp.Header.Get("Content-Type"),
			proto:       resp.Proto,
		})
	}
	return resp, err
}

// peerClients are the upstream clients bound to one tenant.
type peerClients struct {
	tenant    string
	push      pushv1connect.PusherServiceClient     // Connect, HTTP/1.1, binary proto (Alloy)
	pushGRPC  pushv1connect.PusherServiceClient     // gRPC over h2c to the gRPC port
	query     querierv1connect.QuerierServiceClient // Connect, binary proto (Grafana)
	queryJSON querierv1connect.QuerierServiceClient // Connect, JSON (Profiles Drilldown)
	h1        *http.Client
	h2c       *http.Client
	rec       *statusRecorder
}

func newH1Transport() *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     30 * time.Second,
	}
}

func newH2CTransport() *http2.Transport {
	return &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
}

func (s *kilnServer) clients(t *testing.T, tenant string) *peerClients {
	t.Helper()
	rec := &statusRecorder{}
	h1t := newH1Transport()
	h2t := newH2CTransport()
	t.Cleanup(func() {
		h1t.CloseIdleConnections()
		h2t.CloseIdleConnections()
	})
	h1 := &http.Client{Transport: &tenantTransport{base: h1t, tenant: tenant, rec: rec}}
	h2c := &http.Client{Transport: &tenantTransport{base: h2t, tenant: tenant, rec: rec}}
	return &peerClients{
		tenant:    tenant,
		push:      pushv1connect.NewPusherServiceClient(h1, s.httpURL()),
		pushGRPC:  pushv1connect.NewPusherServiceClient(h2c, s.grpcURL(), connect.WithGRPC()),
		query:     querierv1connect.NewQuerierServiceClient(h1, s.httpURL()),
		queryJSON: querierv1connect.NewQuerierServiceClient(h1, s.httpURL(), connect.WithProtoJSON()),
		h1:        h1,
		h2c:       h2c,
		rec:       rec,
	}
}

// newTenant returns a tenant ID unique to this test run.
func newTenant(t *testing.T, prefix string) string {
	t.Helper()
	return prefix + "-" + randomHex(t, 6)
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("rand: %v", err)
	}
	return hex.EncodeToString(b)
}

// newUUID returns a random (version 4) UUID string.
func newUUID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("rand: %v", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func reqCtx(t *testing.T) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), requestTimeout)
}

// readyWithin reports whether GET /ready answers 200 within d.
func (s *kilnServer) readyWithin(d time.Duration) bool {
	client := &http.Client{Timeout: d}
	resp, err := client.Get(s.httpURL() + "/ready")
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// getReady returns the HTTP status of GET /ready.
func (s *kilnServer) getReady(t *testing.T) int {
	t.Helper()
	ctx, cancel := reqCtx(t)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.httpURL()+"/ready", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.requireAlive(t)
		t.Fatalf("GET /ready: %v", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// readLines is a small helper for text files.
func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines, sc.Err()
}

// connectCode is connect.CodeOf that also says what the error was.
func connectCode(err error) connect.Code {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Code()
	}
	return connect.CodeOf(err)
}
