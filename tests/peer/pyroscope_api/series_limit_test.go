package peer

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"kiln.dev/tests/lib/kilntest"
)

// TestSeriesLimit pushes series through the real server until the tenant's
// max_global_series_per_tenant is reached: a push adding a new series is then
// refused with failed_precondition (HTTP 400 on Connect, not a 429 clients
// retry) naming the limit, over Connect, gRPC and /ingest; series already
// held keep being accepted, other tenants are not affected, and /metrics
// shows the tenant's series, its limit and the refusals.
func TestSeriesLimit(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	const limit = 20
	t.Setenv("KILN_EXTRA_ARGS", "-ingester.max-global-series-per-tenant="+strconv.Itoa(limit))
	s := kilntest.Start(t)
	tenant := kilntest.NewTenant("peer-series")
	c := s.Clients(t, tenant)
	pc, err := loadProfileCase(t, root, "grafana-pyroscope/cpu.pb.gz")
	if err != nil {
		t.Fatal(err)
	}
	perService := len(pc.typeIDs) // one stored series per sample type
	services := limit / perService
	for i := 0; i < services; i++ {
		if _, err := push(t, s, c, transports[i%2], pc.name, fmt.Sprintf("svc-%d", i), pc.raw); err != nil {
			t.Fatalf("push %d of %d series: %v", i, (i+1)*perService, err)
		}
	}
	for _, tr := range transports {
		out, err := push(t, s, c, tr, pc.name, "svc-new-"+tr.name, pc.raw)
		if connect.CodeOf(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), "max_global_series_per_tenant") {
			t.Errorf("a new series over %s: want failed_precondition naming max_global_series_per_tenant, got %v", tr.name, err)
		}
		if tr.name == "connect" && out.Status != http.StatusBadRequest {
			t.Errorf("a new series over Connect: HTTP %d, want 400", out.Status)
		}
		t.Logf("refused over %s: %v", tr.name, err)
	}
	status, body := ingestFolded(t, s, c, "svc-new-legacy.cpu", "main;work 10\n")
	if status < 400 || status >= 500 || status == http.StatusTooManyRequests {
		t.Errorf("a new series over /ingest: HTTP %d (%s), want a 4xx other than 429", status, body)
	} else if !strings.Contains(body, "max_global_series_per_tenant") {
		t.Errorf("a new series over /ingest: %q does not name the limit", body)
	}
	for i := 0; i < services; i += 3 {
		if _, err := push(t, s, c, transports[0], pc.name, fmt.Sprintf("svc-%d", i), pc.raw); err != nil {
			t.Errorf("a series already held (svc-%d): %v", i, err)
		}
	}
	other := s.Clients(t, kilntest.NewTenant("peer-series-other"))
	if _, err := push(t, s, other, transports[0], pc.name, "svc-new", pc.raw); err != nil {
		t.Errorf("another tenant's first series: %v", err)
	}
	wantMetric(t, s, `kiln_ingester_memory_series{tenant="`+tenant+`"}`, strconv.Itoa(limit))
	wantMetric(t, s, `kiln_ingester_series_limit{tenant="`+tenant+`"}`, strconv.Itoa(limit))
	wantMetric(t, s, `kiln_ingester_series_limit_refused_total{tenant="`+tenant+`"}`, "3")
}

// ingestFolded posts a folded body to the legacy /ingest; returns the HTTP
// status and body.
func ingestFolded(t *testing.T, s *kilntest.Server, c *kilntest.Clients, name, body string) (int, string) {
	t.Helper()
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		s.HTTPURL()+"/ingest?format=folded&name="+name, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		t.Fatalf("/ingest: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func wantMetric(t *testing.T, s *kilntest.Server, series, want string) {
	t.Helper()
	got, ok, err := s.Metric(series)
	if err != nil || !ok || got != want {
		t.Errorf("/metrics %s: got %q (present %v, %v), want %s", series, got, ok, err, want)
	}
}
