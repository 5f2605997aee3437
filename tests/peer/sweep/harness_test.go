package sweep

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	"kiln.dev/tests/lib/kilntest"
)

// sweepTimeout bounds each request of the sweep: an answer later than this
// is a hang (the ASan build is several times slower than release).
const sweepTimeout = 30 * time.Second

// statusKey is the context key under which a request's *int receives the
// HTTP status the server answered with.
type statusKey struct{}

// headersKey is the context key of extra request headers.
type headersKey struct{}

// recTransport records each response's HTTP status into the *int of the
// request's context and adds the context's extra headers, so that one
// shared client can send requests with and without capability headers.
type recTransport struct{ base http.RoundTripper }

func (rt recTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if h, ok := req.Context().Value(headersKey{}).(http.Header); ok && len(h) > 0 {
		req = req.Clone(req.Context())
		for k, vs := range h {
			req.Header.Del(k)
			for _, v := range vs {
				req.Header.Add(k, v)
			}
		}
	}
	resp, err := rt.base.RoundTrip(req)
	if p, ok := req.Context().Value(statusKey{}).(*int); ok && err == nil {
		*p = resp.StatusCode
	}
	return resp, err
}

// withHeaders returns ctx carrying headers the transport sets on the
// request (tenant, Accept, Connect-Timeout-Ms...).
func withHeaders(ctx context.Context, h http.Header) context.Context {
	return context.WithValue(ctx, headersKey{}, h)
}

// result is what one request got.
type result struct {
	http int          // HTTP status, 0 when none arrived
	code connect.Code // Connect/gRPC code of an error, 0 for OK
	err  error        // transport or protocol error, nil for a 2xx
	dur  time.Duration
}

// allowedCodes are the Connect/gRPC codes a client may get: the request's
// own fault or a limit (resource_exhausted: rate limits and the in-flight
// budget, which the sweep's parallel pushes can reach; the exact code of
// each ingest refusal is integration.ingest_errors' to check). unknown,
// internal, unavailable, data_loss,
// deadline_exceeded and canceled are the server's failures (or a hang).
var allowedCodes = []connect.Code{
	connect.CodeInvalidArgument, connect.CodeNotFound, connect.CodeFailedPrecondition,
	connect.CodeResourceExhausted, connect.CodeUnimplemented, connect.CodeOutOfRange,
	connect.CodeUnauthenticated, connect.CodeAlreadyExists, connect.CodePermissionDenied,
}

// allowedHTTP are the documented non-2xx answers (docs/api.md): 400, 401,
// 404, 405 (a route asked with another method), 413, 415, 422, 429 and
// 501 (unimplemented); 414 and 431 are libmicrohttpd's own refusals of a
// URL or headers too large to read.
var allowedHTTP = []int{400, 401, 404, 405, 413, 414, 415, 422, 429, 431, 501}

// verdict says why a result breaks the sweep's rule, "" when it does not.
func (r result) verdict() string {
	// A request may ask for a short deadline (Connect-Timeout-Ms: 1) and
	// gets deadline_exceeded (504) at once: an answer, not a server fault.
	if r.http == 504 && r.dur < sweepTimeout-time.Second {
		return ""
	}
	if r.http >= 500 && r.http != 501 {
		return fmt.Sprintf("HTTP %d", r.http)
	}
	if r.http != 0 && r.http >= 300 && !slices.Contains(allowedHTTP, r.http) {
		return fmt.Sprintf("undocumented HTTP %d", r.http)
	}
	if r.err == nil {
		return ""
	}
	if r.code != 0 && slices.Contains(allowedCodes, r.code) {
		return ""
	}
	if r.code == 0 && r.http != 0 {
		return "" // a raw HTTP request answered with a documented status
	}
	if r.code == connect.CodeDeadlineExceeded || errors.Is(r.err, context.DeadlineExceeded) {
		// A request may ask for a short deadline (Connect-Timeout-Ms: 1,
		// grpc-timeout: 0n) and gets deadline_exceeded at once: an answer.
		// Only the client's own 30 s running out is a hang.
		if r.dur < sweepTimeout-time.Second {
			return ""
		}
		return fmt.Sprintf("no answer within %v (hang)", sweepTimeout)
	}
	// Transport errors quote the whole URL: keep their end.
	msg := r.err.Error()
	if len(msg) > 300 {
		msg = "..." + msg[len(msg)-300:]
	}
	return fmt.Sprintf("code %v: %s", r.code, msg)
}

// connectResult turns a connect-go call's error and recorded status into a
// result.
func connectResult(status int, err error, dur time.Duration) result {
	r := result{http: status, err: err, dur: dur}
	if err != nil {
		r.code = kilntest.ConnectCode(err)
	}
	return r
}

// rawResult sends req with client and reads the whole answer.
func rawResult(client *http.Client, req *http.Request) (result, []byte) {
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return result{err: err, dur: time.Since(t0)}, nil
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	r := result{http: resp.StatusCode, dur: time.Since(t0)}
	if err != nil {
		r.err = fmt.Errorf("reading the answer: %w", err)
	} else if resp.StatusCode >= 300 {
		r.err = fmt.Errorf("HTTP %d: %.200q", resp.StatusCode, body)
	}
	return r, body
}

// tally counts outcomes per request kind and keeps the failures.
type tally struct {
	mu       sync.Mutex
	counts   map[string]map[string]int // kind -> outcome -> n
	failures []string
	slowest  []slow
	n        atomic.Int64
}

type slow struct {
	d    time.Duration
	what string
}

func newTally() *tally { return &tally{counts: map[string]map[string]int{}} }

// add records one request: kind is the route or method, what describes the
// request well enough to reproduce it (with the seed and index).
func (ta *tally) add(kind, what string, r result) {
	ta.n.Add(1)
	outcome := "2xx"
	switch {
	case r.code != 0:
		outcome = r.code.String()
	case r.http != 0 && r.http >= 300:
		outcome = strconv.Itoa(r.http)
	case r.err != nil:
		outcome = "error"
	}
	ta.mu.Lock()
	defer ta.mu.Unlock()
	if ta.counts[kind] == nil {
		ta.counts[kind] = map[string]int{}
	}
	ta.counts[kind][outcome]++
	if v := r.verdict(); v != "" {
		ta.failures = append(ta.failures, fmt.Sprintf("%s: %s\n    request: %.600s", kind, v, what))
	}
	ta.slowest = append(ta.slowest, slow{r.dur, kind + " " + trunc(what, 200)})
	sort.Slice(ta.slowest, func(i, j int) bool { return ta.slowest[i].d > ta.slowest[j].d })
	if len(ta.slowest) > 5 {
		ta.slowest = ta.slowest[:5]
	}
}

// report logs the outcome table and the slowest requests, and fails the
// test with every failure.
func (ta *tally) report(t *testing.T, name string) {
	t.Helper()
	ta.mu.Lock()
	defer ta.mu.Unlock()
	kinds := make([]string, 0, len(ta.counts))
	for k := range ta.counts {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d requests\n", name, ta.n.Load())
	for _, k := range kinds {
		outs := make([]string, 0, len(ta.counts[k]))
		for o, n := range ta.counts[k] {
			outs = append(outs, fmt.Sprintf("%s=%d", o, n))
		}
		sort.Strings(outs)
		fmt.Fprintf(&b, "  %-48s %s\n", k, strings.Join(outs, " "))
	}
	for _, s := range ta.slowest {
		fmt.Fprintf(&b, "  slow: %v %s\n", s.d.Round(time.Millisecond), s.what)
	}
	t.Log(b.String())
	for i, f := range ta.failures {
		if i == 40 {
			t.Errorf("%s: ... and %d more failures", name, len(ta.failures)-i)
			break
		}
		t.Errorf("%s: %s", name, f)
	}
}

func trunc(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + fmt.Sprintf("...(%d bytes)", len(s))
}

// scale is SWEEP_SCALE (default 1), the factor on every request count.
func scale(t *testing.T) float64 {
	v := os.Getenv("SWEEP_SCALE")
	if v == "" {
		return 1
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 {
		t.Fatalf("SWEEP_SCALE=%q: want a positive number", v)
	}
	return f
}

// seed is SWEEP_SEED, or one from the clock; it is printed so that a run
// can be replayed.
func seed(t *testing.T) uint64 {
	if v := os.Getenv("SWEEP_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("SWEEP_SEED=%q: %v", v, err)
		}
		return s
	}
	return uint64(time.Now().UnixNano())
}

// runPool runs job(i) for i in [0, n) on workers goroutines, stopping
// early (and saying so) when the server dies or the budget runs out.
func runPool(t *testing.T, s *kilntest.Server, name string, n, workers int, budget time.Duration, job func(i int)) {
	t.Helper()
	var next atomic.Int64
	deadline := time.Now().Add(budget)
	var stopped atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if s.Exited() {
					stopped.CompareAndSwap(nil, fmt.Sprintf("the server exited before request %d: %s", i, s.ExitDescription()))
					return
				}
				if time.Now().After(deadline) {
					stopped.CompareAndSwap(nil, fmt.Sprintf("time budget %v spent after %d of %d requests", budget, i, n))
					return
				}
				job(i)
			}
		}()
	}
	wg.Wait()
	if v := stopped.Load(); v != nil {
		msg := v.(string)
		if s.Exited() {
			t.Errorf("%s: %s", name, msg)
		} else {
			t.Logf("%s: %s", name, msg)
		}
	}
}
