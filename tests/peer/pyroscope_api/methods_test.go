package peer

import (
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/pprof/profile"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"kiln.dev/tests/lib/kilntest"
)

// rootFirst is a sample's frames, root first, with inlined frames expanded
// (a location's last line is its outermost caller).
func rootFirst(s *profile.Sample) []string {
	var f []string
	for i := len(s.Location) - 1; i >= 0; i-- {
		lines := s.Location[i].Line
		for j := len(lines) - 1; j >= 0; j-- {
			f = append(f, lines[j].Function.Name)
		}
	}
	return f
}

// TestStackTraceSelectorHeatmapAnalyze covers the rest of the querier API
// Grafana and the Drilldown app call, over Connect JSON as the Drilldown app
// sends it: a flame graph focused on a call site (stack_trace_selector),
// SelectHeatmap and AnalyzeQuery, against figures computed from the file.
func TestStackTraceSelectorHeatmapAnalyze(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	s := kilntest.Start(t)
	c := s.Clients(t, kilntest.NewTenant("peer-methods"))
	pc, err := loadProfileCase(t, root, "gdu/default.pgo")
	if err != nil {
		t.Fatal(err)
	}
	service := "peer-methods-" + kilntest.RandomHex(4)
	if _, err := push(t, s, c, transports[0], pc.name, service, pc.raw); err != nil {
		t.Fatal(err)
	}
	i := len(pc.typeIDs) - 1
	// The call site: the first two root-most frames of the heaviest sample.
	var heavy *profile.Sample
	for _, smp := range pc.prof.Sample {
		if len(rootFirst(smp)) >= 2 && (heavy == nil || smp.Value[i] > heavy.Value[i]) {
			heavy = smp
		}
	}
	site := rootFirst(heavy)[:2]
	var want int64
	for _, smp := range pc.prof.Sample {
		f := rootFirst(smp)
		if len(f) >= 2 && f[0] == site[0] && f[1] == site[1] {
			want += smp.Value[i]
		}
	}
	start, end := queryWindow(pc.timeNanos, time.Now())
	q := c.QueryJSON
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	r, err := q.SelectMergeStacktraces(ctx, connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
		ProfileTypeID: pc.typeIDs[i], LabelSelector: `{service_name="` + service + `"}`, Start: start, End: end,
		StackTraceSelector: &typesv1.StackTraceSelector{CallSite: []*typesv1.Location{{Name: site[0]}, {Name: site[1]}}},
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Msg.GetFlamegraph().GetTotal(); got != want || want >= pc.expected[i] {
		t.Errorf("stack_trace_selector %v: total %d, want %d (of %d)", site, got, want, pc.expected[i])
	}

	h, err := q.SelectHeatmap(ctx, connect.NewRequest(&querierv1.SelectHeatmapRequest{
		ProfileTypeID: pc.typeIDs[i], LabelSelector: `{service_name="` + service + `"}`,
		Start: start, End: end, Step: float64(end-start) / 1000 / 4,
	}))
	if err != nil {
		t.Fatal(err)
	}
	var n int32
	for _, hs := range h.Msg.Series {
		for _, slot := range hs.Slots {
			for _, cnt := range slot.Counts {
				n += cnt
			}
		}
	}
	if n != 1 {
		t.Errorf("SelectHeatmap: %d profiles counted, want 1", n)
	}

	a, err := q.AnalyzeQuery(ctx, connect.NewRequest(&querierv1.AnalyzeQueryRequest{
		Start: start, End: end, Query: pc.typeIDs[i] + `{service_name="` + service + `"}`,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Msg.QueryScopes) == 0 || a.Msg.QueryScopes[0].ProfileCount != 1 || a.Msg.QueryImpact.GetTotalQueriedSeries() != 1 {
		t.Errorf("AnalyzeQuery: want 1 series and 1 profile, got %v", a.Msg)
	}
}
