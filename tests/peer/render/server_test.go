package render

import (
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
	"syscall"
	"testing"
	"time"

	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
)

const (
	readyTimeout   = 20 * time.Second
	stopGrace      = 5 * time.Second
	requestTimeout = 15 * time.Second
)

// kilnServer is one running kiln process, started by the test itself.
type kilnServer struct {
	cmd      *exec.Cmd
	httpAddr string
	done     chan struct{}
	state    *os.ProcessState
	waitErr  error
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

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// lineLogger forwards the server's output, line by line, to the test log
// while the test runs and to stderr afterwards.
type lineLogger struct {
	mu     sync.Mutex
	t      *testing.T
	buf    []byte
	closed bool
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := strings.IndexByte(string(l.buf), '\n')
		if i < 0 {
			break
		}
		l.emit(string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
	return len(p), nil
}

func (l *lineLogger) emit(line string) {
	if l.closed {
		fmt.Fprintf(os.Stderr, "kiln| %s\n", line)
		return
	}
	l.t.Logf("kiln| %s", line)
}

func (l *lineLogger) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.emit(string(l.buf))
		l.buf = nil
	}
	l.closed = true
}

// startServer starts kiln (target all) on free ports with a private storage
// directory, accepting old profiles, any ingestion rate and any query range,
// and waits until /ready answers 200.
func startServer(t *testing.T) *kilnServer {
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
		"-validation.reject-older-than=0",
		"-distributor.ingestion-rate-limit-mb=0",
		// The files are years old, and one query spans both.
		"-querier.max-query-lookback=0",
		"-querier.max-query-length=0",
	}
	args = append(args, strings.Fields(os.Getenv("KILN_EXTRA_ARGS"))...)
	s := &kilnServer{
		httpAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort)),
		done:     make(chan struct{}),
		log:      &lineLogger{t: t},
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
	s.waitReady(t)
	return s
}

func (s *kilnServer) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(readyTimeout)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case <-s.done:
			t.Fatalf("kiln exited before becoming ready: %v", s.state)
		default:
		}
		resp, err := client.Get(s.url() + "/ready")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("kiln not ready after %v (last error %v)", readyTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *kilnServer) url() string { return "http://" + s.httpAddr }

// stop sends SIGTERM, then SIGKILL after stopGrace, and fails the test when
// the process died on its own or of a signal it was not sent.
func (s *kilnServer) stop(t *testing.T) {
	defer s.log.close()
	select {
	case <-s.done:
		t.Errorf("kiln exited on its own during the test: %v", s.state)
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	killed := false
	select {
	case <-s.done:
	case <-time.After(stopGrace):
		killed = true
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	if s.state == nil {
		t.Errorf("kiln: %v", s.waitErr)
		return
	}
	if ws, ok := s.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		if sig := ws.Signal(); sig != syscall.SIGTERM && !(killed && sig == syscall.SIGKILL) {
			t.Errorf("kiln crashed: %v", s.state)
		}
		return
	}
	if code := s.state.ExitCode(); code != 0 {
		t.Errorf("kiln exited with code %d after SIGTERM", code)
	}
}

// tenantTransport adds X-Scope-OrgID to every request.
type tenantTransport struct {
	base   http.RoundTripper
	tenant string
}

func (tt *tenantTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Header.Set("X-Scope-OrgID", tt.tenant)
	return tt.base.RoundTrip(r)
}

// clients are the upstream Connect clients and a plain HTTP client, all
// bound to one tenant.
type clients struct {
	tenant string
	http   *http.Client
	push   pushv1connect.PusherServiceClient
	query  querierv1connect.QuerierServiceClient
}

func (s *kilnServer) clients(t *testing.T, tenant string) *clients {
	t.Helper()
	base := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 8, IdleConnTimeout: 30 * time.Second}
	t.Cleanup(base.CloseIdleConnections)
	h := &http.Client{Transport: &tenantTransport{base: base, tenant: tenant}}
	return &clients{
		tenant: tenant,
		http:   h,
		push:   pushv1connect.NewPusherServiceClient(h, s.url()),
		query:  querierv1connect.NewQuerierServiceClient(h, s.url()),
	}
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
	h := randomHex(t, 16)
	b := []byte(h)
	b[12] = '4'
	b[16] = "89ab"[int(b[16])%4]
	h = string(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func reqCtx(t *testing.T) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), requestTimeout)
}
