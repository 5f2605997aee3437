package durability

import (
	"bytes"
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
	readyTimeout = 30 * time.Second // start-up includes WAL replay and block opening
	readyPoll    = 50 * time.Millisecond
	termTimeout  = 30 * time.Second // SIGTERM flushes the heads first
)

// requireEnv returns KILN_BIN and KILN_TESTDATA, skipping the test when the
// binary is not configured.
func requireEnv(t *testing.T) (bin, testdata string) {
	t.Helper()
	bin = os.Getenv("KILN_BIN")
	if bin == "" {
		t.Skip("KILN_BIN is not set; skipping the durability test")
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

// serverLog keeps every line the server printed (to search it) and forwards
// each one to the test log while the test runs.
type serverLog struct {
	mu      sync.Mutex
	t       *testing.T
	prefix  string
	partial bytes.Buffer
	lines   []string
	closed  bool
	watches []logWatch
}

// logWatch signals ch (without blocking) for every line containing sub.
type logWatch struct {
	sub string
	ch  chan string
}

// watch returns a channel that receives the lines containing sub from now
// on (lines are dropped while the channel is full).
func (l *serverLog) watch(sub string) <-chan string {
	l.mu.Lock()
	defer l.mu.Unlock()
	ch := make(chan string, 16)
	l.watches = append(l.watches, logWatch{sub: sub, ch: ch})
	return ch
}

func (l *serverLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial.Write(p)
	for {
		line, err := l.partial.ReadString('\n')
		if err != nil {
			l.partial.Reset()
			l.partial.WriteString(line)
			break
		}
		l.emit(strings.TrimRight(line, "\n"))
	}
	return len(p), nil
}

func (l *serverLog) emit(line string) {
	l.lines = append(l.lines, line)
	for _, w := range l.watches {
		if strings.Contains(line, w.sub) {
			select {
			case w.ch <- line:
			default:
			}
		}
	}
	if l.closed {
		fmt.Fprintf(os.Stderr, "%s%s\n", l.prefix, line)
		return
	}
	l.t.Logf("%s%s", l.prefix, line)
}

func (l *serverLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.partial.Len() > 0 {
		l.emit(l.partial.String())
		l.partial.Reset()
	}
	l.closed = true
}

// grep returns the lines containing every one of the substrings.
func (l *serverLog) grep(subs ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
next:
	for _, line := range l.lines {
		for _, s := range subs {
			if !strings.Contains(line, s) {
				continue next
			}
		}
		out = append(out, line)
	}
	return out
}

// kiln is one run of the server process on a storage directory.
type kiln struct {
	cmd      *exec.Cmd
	name     string // "kiln#N" for the log
	storage  string
	httpAddr string
	grpcAddr string
	done     chan struct{}
	state    *os.ProcessState
	waitErr  error
	signaled atomic.Bool // the test sent SIGTERM or SIGKILL
	log      *serverLog
}

var runCounter atomic.Int64

// baseArgs are the flags every test run uses: loopback only, no OTLP port;
// the test profiles are years old and pushed in bursts, so the ingestion
// time window, the rate limit and the query length and lookback limits are
// off.
func baseArgs(storage string, httpPort, grpcPort int) []string {
	return []string{
		"-target=all",
		"-server.http-listen-address=127.0.0.1",
		"-server.http-listen-port=" + strconv.Itoa(httpPort),
		"-server.grpc-listen-address=127.0.0.1",
		"-server.grpc-listen-port=" + strconv.Itoa(grpcPort),
		"-server.otlp-grpc-listen-port=-1",
		"-storage.path=" + storage,
		"-validation.reject-older-than=0",
		"-validation.reject-newer-than=0",
		"-distributor.ingestion-rate-limit-mb=0",
		"-querier.max-query-length=0",
		"-querier.max-query-lookback=0",
		"-log.level=info",
	}
}

var (
	helpOnce sync.Once
	helpText string
)

// hasFlag reports whether the kiln binary lists -name in its -help output
// (for flags newer than some binaries the tests may run against).
func hasFlag(t *testing.T, name string) bool {
	t.Helper()
	bin, _ := requireEnv(t)
	helpOnce.Do(func() {
		out, _ := exec.Command(bin, "-help").CombinedOutput()
		helpText = string(out)
	})
	return strings.Contains(helpText, "-"+name+"\n") || strings.Contains(helpText, "-"+name+" ")
}

// startKiln starts kiln on storage (kept across runs) with extra flags and
// waits until GET /ready answers 200 and the gRPC port accepts.
func startKiln(t *testing.T, storage string, extra ...string) *kiln {
	t.Helper()
	k, err := launchKiln(t, storage, extra...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// launchKiln is startKiln returning the failure instead of failing.
func launchKiln(t *testing.T, storage string, extra ...string) (*kiln, error) {
	t.Helper()
	bin, _ := requireEnv(t)
	httpPort, grpcPort := freePort(t), freePort(t)
	for grpcPort == httpPort {
		grpcPort = freePort(t)
	}
	args := append(baseArgs(storage, httpPort, grpcPort), extra...)
	n := runCounter.Add(1)
	k := &kiln{
		name:     fmt.Sprintf("kiln#%d", n),
		storage:  storage,
		httpAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort)),
		grpcAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(grpcPort)),
		done:     make(chan struct{}),
	}
	k.log = &serverLog{t: t, prefix: k.name + "| "}
	k.cmd = exec.Command(bin, args...)
	k.cmd.Stdout = k.log
	k.cmd.Stderr = k.log
	killWithParent(k.cmd)
	t.Logf("%s: starting %s %s", k.name, bin, strings.Join(args, " "))
	started := make(chan error, 1)
	go func() {
		// The parent-death signal belongs to the thread that started the
		// child: keep this goroutine on its thread while the child runs.
		runtime.LockOSThread()
		if err := k.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		k.waitErr = k.cmd.Wait()
		k.state = k.cmd.ProcessState
		k.log.close()
		close(k.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start kiln: %v", err)
	}
	t.Cleanup(func() { k.cleanup(t) })

	deadline := time.Now().Add(readyTimeout)
	t0 := time.Now()
	client := &http.Client{Timeout: time.Second}
	var lastErr error
	for {
		if k.exited() {
			return k, fmt.Errorf("%s exited before becoming ready: %s", k.name, k.exitDescription())
		}
		resp, err := client.Get(k.httpURL() + "/ready")
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
			return k, fmt.Errorf("%s not ready after %v: %v", k.name, readyTimeout, lastErr)
		}
		time.Sleep(readyPoll)
	}
	for {
		c, err := net.DialTimeout("tcp", k.grpcAddr, time.Second)
		if err == nil {
			_ = c.Close()
			break
		}
		if time.Now().After(deadline) {
			return k, fmt.Errorf("%s gRPC port %s not accepting: %v", k.name, k.grpcAddr, err)
		}
		time.Sleep(readyPoll)
	}
	t.Logf("%s ready in %v: http=%s grpc=%s", k.name, time.Since(t0).Round(time.Millisecond), k.httpAddr, k.grpcAddr)
	return k, nil
}

func (k *kiln) httpURL() string { return "http://" + k.httpAddr }
func (k *kiln) grpcURL() string { return "http://" + k.grpcAddr }

func (k *kiln) exited() bool {
	select {
	case <-k.done:
		return true
	default:
		return false
	}
}

func (k *kiln) exitDescription() string {
	if k.state == nil {
		return fmt.Sprintf("wait error %v", k.waitErr)
	}
	if ws, ok := k.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		desc := fmt.Sprintf("killed by signal %v", ws.Signal())
		if ws.CoreDump() {
			desc += " (core dumped)"
		}
		return desc
	}
	return fmt.Sprintf("exit code %d", k.state.ExitCode())
}

// requireAlive fails the test when the server exited without being told to.
func (k *kiln) requireAlive(t *testing.T) {
	t.Helper()
	if k.exited() && !k.signaled.Load() {
		t.Fatalf("%s died: %s", k.name, k.exitDescription())
	}
}

// kill9 sends SIGKILL and waits for the process to be gone.
func (k *kiln) kill9(t *testing.T) {
	t.Helper()
	k.requireAlive(t)
	k.signaled.Store(true)
	if err := k.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("%s: SIGKILL: %v", k.name, err)
	}
	<-k.done
	t.Logf("%s: %s", k.name, k.exitDescription())
}

// terminate sends SIGTERM (the heads are flushed as blocks) and requires a
// clean exit 0 within termTimeout.
func (k *kiln) terminate(t *testing.T) {
	t.Helper()
	k.requireAlive(t)
	k.signaled.Store(true)
	t0 := time.Now()
	_ = k.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-k.done:
	case <-time.After(termTimeout):
		_ = k.cmd.Process.Kill()
		<-k.done
		t.Fatalf("%s did not exit within %v of SIGTERM (killed)", k.name, termTimeout)
	}
	if k.state == nil || k.state.ExitCode() != 0 {
		t.Fatalf("%s: after SIGTERM: %s (want exit code 0)", k.name, k.exitDescription())
	}
	t.Logf("%s stopped by SIGTERM in %v", k.name, time.Since(t0).Round(time.Millisecond))
}

// cleanup kills a server the test left running and reports one that died
// on its own.
func (k *kiln) cleanup(t *testing.T) {
	if k.exited() {
		if !k.signaled.Load() {
			t.Errorf("%s exited on its own during the test: %s", k.name, k.exitDescription())
		}
		return
	}
	k.signaled.Store(true)
	_ = k.cmd.Process.Kill()
	<-k.done
}

// ready reports the status of GET /ready (0 when it does not answer).
func (k *kiln) ready() int {
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get(k.httpURL() + "/ready")
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}
