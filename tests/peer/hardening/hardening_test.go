package hardening

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/pprof/profile"

	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"kiln.dev/tests/lib/kilntest"
)

const (
	cpuType     = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
	dataTenant  = "slow"
	limited     = "limited" // max_query_parallelism: 1 in the overrides file
	inFlight    = 32
	queryWorker = 2
	// The slow head: pushes x lines x frames distinct stack nodes, so every
	// merge builds a tree of a million nodes (about a second of CPU).
	pushes, lines, frames = 5, 20000, 10
)

// startServer starts kiln with limits that let the big folded pushes in, two
// query workers and an overrides file limiting one tenant to one query.
func startServer(t *testing.T, extra ...string) *kilntest.Server {
	t.Helper()
	dir := t.TempDir()
	ov := filepath.Join(dir, "overrides.yaml")
	if err := os.WriteFile(ov, []byte("overrides:\n  "+limited+":\n    max_query_parallelism: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return kilntest.Start(t, kilntest.Args(
		"-validation.max-profile-stacktrace-samples=0",
		"-validation.max-profile-size-bytes=64MiB",
		"-distributor.ingestion-rate-limit-mb=0",
		"-server.query-worker-threads="+strconv.Itoa(queryWorker),
		"-querier.max-query-parallelism=64",
		"-runtime-config.file="+ov,
	), kilntest.Args(extra...))
}

// pushSlowHead pushes the slow head as folded text to /ingest.
func pushSlowHead(t *testing.T, s *kilntest.Server) {
	t.Helper()
	client := kilntest.TenantClient(t, dataTenant)
	now := time.Now().Unix()
	for k := 0; k < pushes; k++ {
		var b bytes.Buffer
		for i := k * lines; i < (k+1)*lines; i++ {
			for j := 0; j < frames; j++ {
				if j > 0 {
					b.WriteByte(';')
				}
				fmt.Fprintf(&b, "fn_%d_%d", i, j)
			}
			b.WriteString(" 1\n")
		}
		url := fmt.Sprintf("%s/ingest?name=slow.cpu&from=%d&until=%d", s.HTTPURL(), now, now)
		resp, err := client.Post(url, "text/plain", &b)
		s.CheckAfterError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("push %d: status %d", k, resp.StatusCode)
		}
	}
}

func slowReq() *connect.Request[querierv1.SelectMergeStacktracesRequest] {
	now := time.Now().UnixMilli()
	return connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
		ProfileTypeID: cpuType, LabelSelector: "{}", Start: now - 3600_000, End: now + 60_000,
		MaxNodes: func() *int64 { n := int64(16); return &n }(),
	})
}

// metric reads one series of /metrics as a number (-1 when absent).
func metric(t *testing.T, s *kilntest.Server, series string) float64 {
	t.Helper()
	v, ok, err := s.Metric(series)
	if err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	if !ok {
		return -1
	}
	f, _ := strconv.ParseFloat(v, 64)
	return f
}

// waitFor polls cond every 50 ms for at most limit; false on timeout.
func waitFor(limit time.Duration, cond func() bool) bool {
	for end := time.Now().Add(limit); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

func smallProfile(t *testing.T) []byte {
	t.Helper()
	fn := &profile.Function{ID: 1, Name: "main.work"}
	loc := &profile.Location{ID: 1, Line: []profile.Line{{Function: fn}}}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:     10_000_000,
		TimeNanos:  time.Now().UnixNano(),
		Sample:     []*profile.Sample{{Location: []*profile.Location{loc}, Value: []int64{10_000_000}}},
		Location:   []*profile.Location{loc},
		Function:   []*profile.Function{fn},
	}
	var b bytes.Buffer
	if err := p.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func pushOne(ctx context.Context, c *kilntest.Clients, raw []byte) error {
	_, err := c.Push.Push(ctx, connect.NewRequest(&pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
		Labels: []*typesv1.LabelPair{{Name: "__name__", Value: "process_cpu"},
			{Name: "service_name", Value: "fast"}},
		Samples: []*pushv1.RawSample{{RawProfile: raw}},
	}}}))
	return err
}

func percentiles(d []time.Duration) (p50, p99, max time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	at := func(q float64) time.Duration { return d[int(q*float64(len(d)-1))] }
	return at(0.5), at(0.99), d[len(d)-1]
}

// measure runs op n times in sequence; every run must succeed within 10 s.
func measure(t *testing.T, s *kilntest.Server, name string, n int, op func(ctx context.Context) error) {
	t.Helper()
	var d []time.Duration
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		t0 := time.Now()
		err := op(ctx)
		cancel()
		s.CheckAfterError(t, err)
		if err != nil {
			t.Fatalf("%s %d under query load: %v", name, i, err)
		}
		d = append(d, time.Since(t0))
	}
	p50, p99, max := percentiles(d)
	t.Logf("under %d queries in flight: %-8s n=%d p50=%v p99=%v max=%v", inFlight, name, n,
		p50.Round(time.Microsecond), p99.Round(time.Microsecond), max.Round(time.Microsecond))
}

func get(client *http.Client, url string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("%s: status %d", url, resp.StatusCode)
		}
		return nil
	}
}

// startQueries puts n slow queries of tenant in flight, every other one
// over gRPC when mixed; wait() returns their errors.
func startQueries(ctx context.Context, s *kilntest.Server, t *testing.T, tenant string, n int, mixed bool) (wait func() []error) {
	c := s.Clients(t, tenant)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			q := c.Query
			if mixed && i%2 == 1 {
				q = c.QueryGRPC
			}
			_, errs[i] = q.SelectMergeStacktraces(ctx, slowReq())
		}(i)
	}
	return func() []error { wg.Wait(); return errs }
}

func TestQueriesUnderLoad(t *testing.T) {
	kilntest.RequireBin(t)
	s := startServer(t)
	t0 := time.Now()
	pushSlowHead(t, s)
	t.Logf("slow head pushed in %v", time.Since(t0).Round(time.Millisecond))
	c := s.Clients(t, dataTenant)
	{
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		t0 = time.Now()
		_, err := c.Query.SelectMergeStacktraces(ctx, slowReq())
		cancel()
		s.CheckAfterError(t, err)
		if err != nil {
			t.Fatalf("slow query alone: %v", err)
		}
		t.Logf("one slow query alone: %v", time.Since(t0).Round(time.Millisecond))
	}

	t.Run("pushes_and_health_while_queries_saturate", func(t *testing.T) {
		ctx, disconnect := context.WithCancel(context.Background())
		defer disconnect()
		wait := startQueries(ctx, s, t, dataTenant, inFlight, true)
		if !waitFor(30*time.Second, func() bool { return metric(t, s, "kiln_query_pool_queued") > 0 }) {
			t.Fatalf("the query pool never filled up")
		}
		raw := smallProfile(t)
		fast := s.Clients(t, kilntest.NewTenant("fast"))
		h := kilntest.TenantClient(t, "")
		measure(t, s, "push", 40, func(ctx context.Context) error { return pushOne(ctx, fast, raw) })
		measure(t, s, "/ready", 40, get(h, s.HTTPURL()+"/ready"))
		measure(t, s, "/metrics", 20, get(h, s.HTTPURL()+"/metrics"))
		t.Logf("after measuring: %v queries running, %v queued",
			metric(t, s, "kiln_query_pool_running"), metric(t, s, "kiln_query_pool_queued"))

		// The clients go away (Connect: connection closed; gRPC: stream
		// reset): what still runs or waits must stop.
		before := metric(t, s, `kiln_queries_ended_total{reason="canceled"}`)
		pending := metric(t, s, "kiln_query_pool_running") + metric(t, s, "kiln_query_pool_queued")
		t0 := time.Now()
		disconnect()
		wait()
		idle := waitFor(60*time.Second, func() bool {
			return metric(t, s, "kiln_query_pool_running") == 0 && metric(t, s, "kiln_query_pool_queued") == 0
		})
		if !idle {
			t.Fatalf("the query pool did not drain after the clients disconnected")
		}
		cancelled := metric(t, s, `kiln_queries_ended_total{reason="canceled"}`) - before
		t.Logf("clients disconnected with %v queries pending: pool idle after %v, %v canceled",
			pending, time.Since(t0).Round(time.Millisecond), cancelled)
		// Those running may finish a last phase that is not interruptible
		// (rendering) before the next check: allow one per query worker.
		if cancelled < pending-queryWorker {
			t.Fatalf("%v of %v pending queries were canceled when their clients disconnected",
				cancelled, pending)
		}
	})

	t.Run("deadlines", func(t *testing.T) {
		ended := func() (deadline, all float64) {
			d := metric(t, s, `kiln_queries_ended_total{reason="deadline_exceeded"}`)
			return d, d + metric(t, s, `kiln_queries_ended_total{reason="canceled"}`)
		}
		beforeDeadline, beforeAll := ended()
		// Connect-Timeout-Ms on a raw request without a client-side timeout:
		// the server itself must answer deadline_exceeded.
		body := fmt.Sprintf(`{"profile_typeID":%q,"label_selector":"{}","start":%d,"end":%d,"max_nodes":16}`,
			cpuType, time.Now().UnixMilli()-3600_000, time.Now().UnixMilli()+60_000)
		req, _ := http.NewRequest("POST", s.HTTPURL()+"/querier.v1.QuerierService/SelectMergeStacktraces",
			strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Connect-Timeout-Ms", "100")
		resp, err := kilntest.TenantClient(t, dataTenant).Do(req)
		s.CheckAfterError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Logf("Connect-Timeout-Ms: 100 -> %d %s", resp.StatusCode, b)
		if resp.StatusCode != 504 || !strings.Contains(string(b), `"deadline_exceeded"`) {
			t.Fatalf("Connect-Timeout-Ms: got %d %s, want 504 deadline_exceeded", resp.StatusCode, b)
		}
		// gRPC with a deadline.
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		_, err = c.QueryGRPC.SelectMergeStacktraces(ctx, slowReq())
		cancel()
		s.CheckAfterError(t, err)
		if kilntest.ConnectCode(err) != connect.CodeDeadlineExceeded {
			t.Fatalf("gRPC with a 150 ms deadline: %v, want deadline_exceeded", err)
		}
		// The Connect query ends at the server's deadline; the gRPC one at its
		// deadline too, or as canceled when the client's RST_STREAM at the
		// same moment arrives first.
		if !waitFor(10*time.Second, func() bool {
			d, all := ended()
			return d-beforeDeadline >= 1 && all-beforeAll >= 2
		}) {
			d, all := ended()
			t.Fatalf("the server did not stop both queries: deadline_exceeded +%v, ended +%v",
				d-beforeDeadline, all-beforeAll)
		}
	})

	t.Run("max_query_parallelism", func(t *testing.T) {
		// A slow query that counts for the limited tenant (reads of "a|b"
		// count for each), then one more for that tenant.
		// A query the subtests before left running would pass for this
		// one below: start from an idle pool.
		if !waitFor(30*time.Second, func() bool {
			return metric(t, s, "kiln_query_pool_running") == 0 && metric(t, s, "kiln_query_pool_queued") == 0
		}) {
			t.Fatalf("the query pool is not idle before the test")
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		wait := startQueries(ctx, s, t, dataTenant+"|"+limited, 1, false)
		if !waitFor(30*time.Second, func() bool { return metric(t, s, "kiln_query_pool_running") >= 1 }) {
			t.Fatalf("the limited tenant's query never ran")
		}
		lc := s.Clients(t, limited)
		rctx, rcancel := kilntest.ReqCtx(t)
		_, err := lc.Query.LabelNames(rctx, connect.NewRequest(&typesv1.LabelNamesRequest{}))
		rcancel()
		s.CheckAfterError(t, err)
		t.Logf("second query of %s: %v", limited, err)
		if kilntest.ConnectCode(err) != connect.CodeResourceExhausted ||
			!strings.Contains(err.Error(), "max_query_parallelism") {
			t.Fatalf("got %v, want resource_exhausted naming max_query_parallelism", err)
		}
		// Other tenants are not limited by it.
		rctx, rcancel = kilntest.ReqCtx(t)
		_, err = s.Clients(t, kilntest.NewTenant("other")).Query.LabelNames(rctx,
			connect.NewRequest(&typesv1.LabelNamesRequest{}))
		rcancel()
		if err != nil {
			t.Fatalf("another tenant: %v", err)
		}
		cancel()
		wait()
	})

	t.Run("sigterm_with_queries_in_flight", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		wait := startQueries(ctx, s, t, dataTenant, 8, true)
		if !waitFor(30*time.Second, func() bool { return metric(t, s, "kiln_query_pool_queued") > 0 }) {
			t.Fatalf("the query pool never filled up")
		}
		t0 := time.Now()
		s.Terminate(t) // fails unless it exits 0 within kilntest.TerminateTimeout
		t.Logf("SIGTERM with 8 queries in flight: exited in %v", time.Since(t0).Round(time.Millisecond))
		errs := wait()
		for _, err := range errs {
			if err == nil {
				continue
			}
			code := kilntest.ConnectCode(err)
			if code != connect.CodeCanceled && code != connect.CodeUnavailable && code != connect.CodeUnknown {
				t.Errorf("query at shutdown: %v (want canceled or unavailable)", err)
			}
		}
	})
}

// TestQuerierTimeout: -querier.timeout alone (no client deadline) ends a
// slow query, over Connect and on the legacy render route.
func TestQuerierTimeout(t *testing.T) {
	kilntest.RequireBin(t)
	s := startServer(t, "-querier.timeout=20ms")
	pushSlowHead(t, s)
	c := s.Clients(t, dataTenant)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	t0 := time.Now()
	_, err := c.Query.SelectMergeStacktraces(ctx, slowReq())
	s.CheckAfterError(t, err)
	t.Logf("Connect query under -querier.timeout=20ms: %v after %v", err, time.Since(t0).Round(time.Millisecond))
	if kilntest.ConnectCode(err) != connect.CodeDeadlineExceeded {
		t.Fatalf("got %v, want deadline_exceeded", err)
	}
	url := s.HTTPURL() + "/pyroscope/render?from=now-1h&until=now%2B1m&query=" + cpuType + "%7B%7D"
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := kilntest.TenantClient(t, dataTenant).Do(req)
	s.CheckAfterError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	t.Logf("/pyroscope/render under -querier.timeout=20ms: %d %s", resp.StatusCode, b)
	if resp.StatusCode != 504 || !strings.Contains(string(b), `"deadline_exceeded"`) {
		t.Fatalf("render: got %d %s, want 504 deadline_exceeded", resp.StatusCode, b)
	}
}
