package sweep

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"kiln.dev/tests/lib/kilntest"
)

// Request counts of one run at SWEEP_SCALE=1, and its time budget: a few
// thousand requests, about two minutes under ASan.
const (
	nQueries = 3000
	nIngest  = 1200
	nLegacy  = 1000
	nGarbage = 800
	nJSON    = 1000
	nMixed   = 1000
	workers  = 4
	budget   = 150 * time.Second // per part; a part past it stops early
)

// TestSweep pushes varied data, notes what every service holds, sends a
// few thousand generated requests to every querier.v1 method, every ingest
// path, every legacy and operational route and every body-taking route
// with garbage, then checks that the server lives, answered every request
// with a 2xx or a documented 4xx, and still holds exactly what it held.
func TestSweep(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	s := kilntest.Start(t, kilntest.OTLPOnLoopback(), kilntest.LogLevel("error"))
	w := newWorld(t, s, root)
	c := w.clients()
	w.pushData(t, c)
	before := map[string]int64{}
	for _, tenant := range w.tenants {
		for k, v := range w.snapshot(t, c, tenant) {
			before[k] = v
		}
	}
	checkExpected(t, w, before)
	w.learn(t, c)
	sd := seed(t)
	sc := scale(t)
	t.Logf("sweep seed %d (SWEEP_SEED=%d replays it), scale %g", sd, sd, sc)
	n := func(k int) int { return max(1, int(float64(k)*sc)) }

	parts := []struct {
		name string
		n    int
		job  func(ta *tally, i int)
	}{
		{"ingest", n(nIngest), func(ta *tally, i int) { w.sendIngest(t.Context(), c, ta, sd, i) }},
		{"queries", n(nQueries), func(ta *tally, i int) { w.sendQuery(t.Context(), c, ta, sd, i) }},
		{"legacy", n(nLegacy), func(ta *tally, i int) { w.sendLegacy(t.Context(), ta, sd, i) }},
		{"garbage", n(nGarbage), func(ta *tally, i int) { w.sendGarbage(t.Context(), ta, sd, i) }},
		{"json", n(nJSON), func(ta *tally, i int) { w.sendJSON(t.Context(), ta, sd, i) }},
		// Writes and reads at once, on the same tenants (the ingest tenant
		// is queried too): races show under ASan as use-after-free.
		{"mixed", n(nMixed), func(ta *tally, i int) {
			if i%2 == 0 {
				w.sendIngest(t.Context(), c, ta, sd+1, i)
			} else {
				w.sendQuery(t.Context(), c, ta, sd+1, i)
			}
		}},
	}
	only := os.Getenv("SWEEP_PARTS") // e.g. "ingest,queries" to replay some parts
	for _, p := range parts {
		if only != "" && !slices.Contains(strings.Split(only, ","), p.name) {
			continue
		}
		ta := newTally()
		t0 := time.Now()
		runPool(t, s, p.name, p.n, workers, budget, func(i int) { p.job(ta, i) })
		t.Logf("%s: %d requests in %v", p.name, ta.n.Load(), time.Since(t0).Round(time.Millisecond))
		ta.report(t, p.name)
		s.RequireAlive(t)
	}

	if code := s.ReadyStatus(); code != http.StatusOK {
		t.Fatalf("GET /ready after the sweep: %d", code)
	}
	after := map[string]int64{}
	for _, tenant := range w.tenants {
		for k, v := range w.snapshot(t, c, tenant) {
			after[k] = v
		}
	}
	if d := diff(before, after); d != "" {
		t.Errorf("the data pushed before the sweep changed:\n%s", d)
	} else {
		t.Logf("data intact: %d (tenant, profile type, service) totals and label names unchanged", len(before))
	}
}

// checkExpected compares the totals of the pprof pushes with what the
// files hold (computed with github.com/google/pprof), and requires the
// OTLP and /ingest services to hold something.
func checkExpected(t *testing.T, w *world, got map[string]int64) {
	t.Helper()
	for k, v := range w.want {
		if got[k] != v {
			t.Errorf("before the sweep: %s total %d, want %d", k, got[k], v)
		}
	}
	for _, svc := range []string{"/app", "/sweep-folded", "/sweep-lines", "/sweep-alloc"} {
		found := false
		for k, v := range got {
			found = found || (strings.HasSuffix(k, svc) && v > 0)
		}
		if !found {
			t.Errorf("before the sweep: no data for service %s", svc[1:])
		}
	}
	otlp := 0
	for k, v := range got {
		if strings.HasPrefix(k, w.tenants[1]+"/") && v > 0 && !strings.Contains(k, "/sweep-") && !strings.Contains(k, "label names") {
			otlp++
		}
	}
	if otlp == 0 {
		t.Errorf("before the sweep: nothing of the OTLP capture in %s", w.tenants[1])
	}
	t.Logf("before the sweep: %d totals, %d checked against the pprof files", len(got), len(w.want))
}

// diff lists the keys whose values differ.
func diff(a, b map[string]int64) string {
	var out []string
	for k, v := range a {
		if b[k] != v {
			out = append(out, fmt.Sprintf("  %s: %d before, %d after", k, v, b[k]))
		}
	}
	for k, v := range b {
		if _, ok := a[k]; !ok {
			out = append(out, fmt.Sprintf("  %s: new, %d", k, v))
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}
