package otlppeer

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
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
)

const (
	readyTimeout   = 20 * time.Second
	readyPoll      = 50 * time.Millisecond
	stopGrace      = 5 * time.Second
	requestTimeout = 10 * time.Second
)

// kilnServer is one running kiln process, started by the test itself.
type kilnServer struct {
	cmd      *exec.Cmd
	httpAddr string // 127.0.0.1:P
	grpcAddr string // 127.0.0.1:G
	otlpAddr string // 127.0.0.1:O, the OTLP gRPC port
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

// startServer starts kiln on free ports with a private storage directory,
// waits until /ready answers 200 and registers the shutdown and crash check.
func startServer(t *testing.T) *kilnServer {
	t.Helper()
	bin, _ := requireEnv(t)
	httpPort, grpcPort, otlpPort := freePort(t), freePort(t), freePort(t)
	for grpcPort == httpPort {
		grpcPort = freePort(t)
	}
	for otlpPort == httpPort || otlpPort == grpcPort {
		otlpPort = freePort(t)
	}
	args := []string{
		"-target=all",
		"-server.http-listen-address=127.0.0.1",
		"-server.http-listen-port=" + strconv.Itoa(httpPort),
		"-server.grpc-listen-address=127.0.0.1",
		"-server.grpc-listen-port=" + strconv.Itoa(grpcPort),
		"-server.otlp-grpc-listen-address=127.0.0.1",
		"-server.otlp-grpc-listen-port=" + strconv.Itoa(otlpPort),
		"-storage.path=" + t.TempDir(),
		"-log.level=warn",
	}
	if extra := strings.Fields(os.Getenv("KILN_EXTRA_ARGS")); len(extra) > 0 {
		args = append(args, extra...)
	}
	s := &kilnServer{
		httpAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort)),
		grpcAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(grpcPort)),
		otlpAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(otlpPort)),
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
	// The gRPC listeners are a separate server; make sure both accept too.
	for _, addr := range []string{s.grpcAddr, s.otlpAddr} {
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				_ = c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("kiln gRPC port %s not accepting after %v: %v", addr, readyTimeout, err)
			}
			time.Sleep(readyPoll)
		}
	}
	t.Logf("kiln ready: http=%s grpc=%s otlp=%s", s.httpAddr, s.grpcAddr, s.otlpAddr)
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

// tenantTransport adds X-Scope-OrgID, as Alloy and Grafana do with their
// configured headers.
type tenantTransport struct {
	base   http.RoundTripper
	tenant string
}

func (tt *tenantTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	if tt.tenant != "" {
		r.Header.Set("X-Scope-OrgID", tt.tenant)
	}
	return tt.base.RoundTrip(r)
}

func newH1Transport() *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     30 * time.Second,
	}
}

// tenantClient is an HTTP/1.1 client that sends X-Scope-OrgID: tenant.
func tenantClient(t *testing.T, tenant string) *http.Client {
	t.Helper()
	tr := newH1Transport()
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: &tenantTransport{base: tr, tenant: tenant}, Timeout: requestTimeout}
}

// newTenant returns a tenant ID unique to this test run.
func newTenant(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("rand: %v", err)
	}
	return prefix + "-" + hex.EncodeToString(b)
}

func reqCtx(t *testing.T) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), requestTimeout)
}
