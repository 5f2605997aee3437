package ingest

import (
	"net/url"
	"strings"
	"testing"

	"connectrpc.com/connect"

	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"

	"kiln.dev/tests/lib/kilntest"
)

// TestIngestGoProfilesRepaired pushes Go CPU profiles as the Go runtime
// writes them and reads the flame graphs back: stacks the runtime cut at 64
// frames are rejoined with their roots and generic functions are named
// f[...], as Pyroscope stores them; totals do not change.
func TestIngestGoProfilesRepaired(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	s := startServer(t)
	c := s.Clients(t, kilntest.NewTenant("ingest-gofix"))
	for _, f := range []struct{ rel, app string }{
		{"grafana-pyroscope/cpu_go_truncated_1.pb.gz", "go-truncated"},
		{"gdu/default.pgo", "go-generic"},
	} {
		raw := readFile(t, root, f.rel)
		prof, ids, sums := pprofTotals(t, raw, "process_cpu")
		cutDepth := 0 // frames of the deepest stack as the runtime wrote it
		for _, smp := range prof.Sample {
			d := 0
			for _, l := range smp.Location {
				d += len(l.Line)
			}
			cutDepth = max(cutDepth, d)
		}
		q := url.Values{"name": {f.app}, "format": {"pprof"}}
		if r := post(t, s, c, "", q, "application/octet-stream", raw); r.status != 200 {
			t.Fatalf("%s: %d %s", f.rel, r.status, r.body)
		}
		fg := flameGraph(t, s, c, typeCPU, `{service_name="`+f.app+`"}`)
		for i, id := range ids {
			if id == typeCPU && fg.GetTotal() != sums[i] {
				t.Errorf("%s: total %d, want %d", f.rel, fg.GetTotal(), sums[i])
			}
		}
		shaped, elided := 0, 0
		for _, n := range fg.GetNames() {
			if strings.Contains(n, "[go.shape.") {
				shaped++
			}
			if strings.Contains(n, "[...]") {
				elided++
			}
		}
		t.Logf("%s: deepest stack %d frames as written, flame graph %d levels; %d names with [...]",
			f.rel, cutDepth, len(fg.GetLevels()), elided)
		if shaped != 0 || elided == 0 {
			t.Errorf("%s: %d names with type parameters, %d elided; want 0 and some", f.rel, shaped, elided)
		}
		if f.app == "go-truncated" && len(fg.GetLevels()) <= cutDepth+1 { // +1: the root level
			t.Errorf("%s: flame graph %d levels deep; the cut stacks were not rejoined", f.rel, len(fg.GetLevels()))
		}
	}
}

// flameGraph is the merged flame graph of selector over all time (the
// files keep their own times).
func flameGraph(t *testing.T, s *kilntest.Server, c *kilntest.Clients, typeID, selector string) *querierv1.FlameGraph {
	t.Helper()
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	maxNodes := int64(1 << 20)
	start, end := wideWindow()
	resp, err := c.Query.SelectMergeStacktraces(ctx, connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
		ProfileTypeID: typeID,
		LabelSelector: selector,
		Start:         start,
		End:           end,
		MaxNodes:      &maxNodes,
	}))
	if err != nil {
		s.CheckAfterError(t, err)
		t.Fatalf("SelectMergeStacktraces(%s, %s): %v", typeID, selector, err)
	}
	return resp.Msg.GetFlamegraph()
}
