package agents

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
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
	done     chan struct{}
	state    *os.ProcessState // valid after done is closed
	waitErr  error
	stopping atomic.Bool
	hung     atomic.Bool // a request timed out and /ready did not answer either
	log      *lineLogger
}

// requireEnv returns KILN_BIN, skipping the test when the binary is not
// configured. The agent tests need no test data, so KILN_TESTDATA is not
// read.
func requireEnv(t *testing.T) (bin string) {
	t.Helper()
	bin = os.Getenv("KILN_BIN")
	if bin == "" {
		t.Skip("KILN_BIN is not set; skipping the peer test")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("KILN_BIN=%s: %v", bin, err)
	}
	return bin
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

var (
	listenersOnce sync.Once
	listenersList []string
	listenersErr  error
)

// otherListeners returns the names X of the -server.X-listen-port flags
// that kiln -help lists, other than http and grpc, for which it also lists
// -server.X-listen-address.
func otherListeners(t *testing.T, bin string) []string {
	t.Helper()
	listenersOnce.Do(func() {
		// -help may exit non-zero; only its text matters.
		out, err := exec.Command(bin, "-help").CombinedOutput()
		text := string(out)
		if !strings.Contains(text, "-server.http-listen-port") {
			listenersErr = fmt.Errorf("%s -help does not list -server.http-listen-port (%v): %s", bin, err, text)
			return
		}
		for _, f := range strings.Fields(text) {
			name, ok := strings.CutPrefix(f, "-server.")
			if !ok {
				continue
			}
			name, ok = strings.CutSuffix(name, "-listen-port")
			if !ok || name == "http" || name == "grpc" || slices.Contains(listenersList, name) {
				continue
			}
			if strings.Contains(text, "-server."+name+"-listen-address") {
				listenersList = append(listenersList, name)
			}
		}
	})
	if listenersErr != nil {
		t.Fatal(listenersErr)
	}
	return listenersList
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
	bin := requireEnv(t)
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
	// Listeners other than HTTP and gRPC (for example OTLP gRPC, 4317 by
	// default, on every address) go to 127.0.0.1 and a free port too, so
	// that servers of parallel tests do not collide.
	for _, l := range otherListeners(t, bin) {
		args = append(args,
			"-server."+l+"-listen-address=127.0.0.1",
			"-server."+l+"-listen-port="+strconv.Itoa(freePort(t)))
	}
	if extra := strings.Fields(os.Getenv("KILN_EXTRA_ARGS")); len(extra) > 0 {
		args = append(args, extra...)
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

// queryClient returns the upstream querier client as Grafana's data source
// uses it: Connect unary, binary proto, plain HTTP/1.1, no tenant header
// (the agents send none either, so both sides are tenant "anonymous").
func (s *kilnServer) queryClient(t *testing.T) querierv1connect.QuerierServiceClient {
	t.Helper()
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return querierv1connect.NewQuerierServiceClient(&http.Client{Transport: tr}, s.httpURL())
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("rand: %v", err)
	}
	return hex.EncodeToString(b)
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

// connectCode is connect.CodeOf that also says what the error was.
func connectCode(err error) connect.Code {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Code()
	}
	return connect.CodeOf(err)
}
