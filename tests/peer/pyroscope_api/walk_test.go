package peer

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/pprof/profile"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"kiln.dev/tests/lib/kilntest"
)

// treeNode is one node of Pyroscope's serialized tree (the `tree` bytes of
// SelectMergeStacktraces with format TREE).
type treeNode struct {
	name     string
	self     int64
	children []*treeNode
}

// decodeTree reads the serialized tree on its own terms: depth first from
// a virtual root, each node a varint name length, the name, a varint self
// value and a varint number of children, followed by its children.
func decodeTree(b []byte) (*treeNode, error) {
	root := &treeNode{}
	if len(b) == 0 {
		return root, nil
	}
	type pending struct {
		parent *treeNode
		left   uint64
	}
	uv := func() (uint64, error) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, fmt.Errorf("bad varint with %d bytes left", len(b))
		}
		b = b[n:]
		return v, nil
	}
	var stack []*pending
	first := true
	for first || len(stack) > 0 {
		nameLen, err := uv()
		if err != nil {
			return nil, err
		}
		if nameLen > uint64(len(b)) {
			return nil, fmt.Errorf("name of %d bytes with %d left", nameLen, len(b))
		}
		n := &treeNode{name: string(b[:nameLen])}
		b = b[nameLen:]
		self, err := uv()
		if err != nil {
			return nil, err
		}
		n.self = int64(self)
		kids, err := uv()
		if err != nil {
			return nil, err
		}
		if first {
			n = root
			root.self = int64(self)
			first = false
		} else {
			top := stack[len(stack)-1]
			top.parent.children = append(top.parent.children, n)
			if top.left--; top.left == 0 {
				stack = stack[:len(stack)-1]
			}
		}
		if kids > 0 {
			stack = append(stack, &pending{n, kids})
		}
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%d bytes left after the tree", len(b))
	}
	return root, nil
}

// treeStats sums a decoded tree's self values and counts its nodes and
// the ones named "other".
func treeStats(n *treeNode) (total int64, nodes, others int) {
	total = n.self
	if n.name == "other" {
		others++
	}
	for _, c := range n.children {
		t, k, o := treeStats(c)
		total, nodes, others = total+t, nodes+k+1, others+o
	}
	return total, nodes, others
}

// TestEveryQuerierMethod walks every QuerierService method over Connect
// proto (Grafana), Connect JSON (Profiles Drilldown) and gRPC against one pushed
// file, checking each answer against figures computed from the file:
// ProfileTypes, LabelNames, LabelValues, Series, SelectMergeStacktraces in
// every format (the TREE bytes decoded by this test's own decoder), with
// profile_id_selector, SelectMergeProfile with GoPGO options,
// SelectMergeSpanProfile, SelectSeries, SelectHeatmap, Diff,
// GetProfileStats and AnalyzeQuery.
func TestEveryQuerierMethod(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	s := kilntest.Start(t)
	c := s.Clients(t, kilntest.NewTenant("peer-walk"))
	pc, err := loadProfileCase(t, root, "gdu/default.pgo")
	if err != nil {
		t.Fatal(err)
	}
	service := "peer-walk-" + kilntest.RandomHex(4)
	profileID := kilntest.NewUUID()
	if _, err := pushID(t, s, c, transports[0], pc.name, service, pc.raw, profileID); err != nil {
		t.Fatal(err)
	}
	i := len(pc.typeIDs) - 1
	for name, q := range map[string]querierv1connect.QuerierServiceClient{"proto": c.Query, "json": c.QueryJSON, "grpc": c.QueryGRPC} {
		t.Run(name, func(t *testing.T) { walkQuerier(t, q, pc, i, service, profileID) })
	}
}

func walkQuerier(t *testing.T, q querierv1connect.QuerierServiceClient, pc *profileCase, i int, service, profileID string) {
	start, end := queryWindow(pc.timeNanos, time.Now())
	typeID, want, sel := pc.typeIDs[i], pc.expected[i], `{service_name="`+service+`"}`
	// One deadline for the whole walk, long enough to include the first
	// `go tool pprof` run, which builds the tool on a fresh machine.
	ctx, cancel := kilntest.ReqCtxTimeout(t, 3*time.Minute)
	defer cancel()
	check := func(what string, err error) bool {
		t.Helper()
		if err != nil {
			t.Errorf("%s: %v", what, err)
		}
		return err == nil
	}

	pt, err := q.ProfileTypes(ctx, connect.NewRequest(&querierv1.ProfileTypesRequest{Start: start, End: end}))
	if check("ProfileTypes", err) {
		var ids []string
		for _, p := range pt.Msg.ProfileTypes {
			ids = append(ids, p.ID)
		}
		for _, id := range pc.typeIDs {
			if !slices.Contains(ids, id) {
				t.Errorf("ProfileTypes: %s missing from %v", id, ids)
			}
		}
	}
	ln, err := q.LabelNames(ctx, connect.NewRequest(&typesv1.LabelNamesRequest{Matchers: []string{sel}, Start: start, End: end}))
	if check("LabelNames", err) && !slices.Contains(ln.Msg.Names, "service_name") {
		t.Errorf("LabelNames: no service_name in %v", ln.Msg.Names)
	}
	lv, err := q.LabelValues(ctx, connect.NewRequest(&typesv1.LabelValuesRequest{Name: "service_name", Matchers: []string{sel}, Start: start, End: end}))
	if check("LabelValues", err) && !slices.Equal(lv.Msg.Names, []string{service}) {
		t.Errorf("LabelValues: %v, want [%s]", lv.Msg.Names, service)
	}
	sr, err := q.Series(ctx, connect.NewRequest(&querierv1.SeriesRequest{Matchers: []string{sel}, LabelNames: []string{"__profile_type__"}, Start: start, End: end}))
	if check("Series", err) && len(sr.Msg.LabelsSet) != len(pc.typeIDs) {
		t.Errorf("Series: %d label sets, want one per sample type (%d)", len(sr.Msg.LabelsSet), len(pc.typeIDs))
	}

	merge := func(f querierv1.ProfileFormat, maxNodes int64, ids []string) (*querierv1.SelectMergeStacktracesResponse, error) {
		r, err := q.SelectMergeStacktraces(ctx, connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
			ProfileTypeID: typeID, LabelSelector: sel, Start: start, End: end, Format: f, MaxNodes: &maxNodes,
			ProfileIdSelector: ids,
		}))
		if err != nil {
			return nil, err
		}
		return r.Msg, nil
	}
	if r, err := merge(querierv1.ProfileFormat_PROFILE_FORMAT_FLAMEGRAPH, 0, nil); check("SelectMergeStacktraces(FLAMEGRAPH)", err) && r.Flamegraph.GetTotal() != want {
		t.Errorf("SelectMergeStacktraces(FLAMEGRAPH): total %d, want %d", r.Flamegraph.GetTotal(), want)
	}
	for _, maxNodes := range []int64{0, 16} {
		r, err := merge(querierv1.ProfileFormat_PROFILE_FORMAT_TREE, maxNodes, nil)
		if !check("SelectMergeStacktraces(TREE)", err) {
			continue
		}
		tr, err := decodeTree(r.Tree)
		if err != nil {
			t.Errorf("SelectMergeStacktraces(TREE, max_nodes %d): %v", maxNodes, err)
			continue
		}
		total, nodes, others := treeStats(tr)
		if total != want {
			t.Errorf("SelectMergeStacktraces(TREE, max_nodes %d): total %d, want %d", maxNodes, total, want)
		}
		if maxNodes == 16 && (others == 0 || nodes-others > 3*16) {
			t.Errorf("SelectMergeStacktraces(TREE, max_nodes 16): %d nodes, %d \"other\": not truncated", nodes, others)
		}
		if maxNodes == 0 && others != 0 {
			t.Errorf("SelectMergeStacktraces(TREE): %d \"other\" nodes in a tree under 8192 nodes", others)
		}
	}
	if r, err := merge(querierv1.ProfileFormat_PROFILE_FORMAT_DOT, 0, nil); check("SelectMergeStacktraces(DOT)", err) {
		if top, _ := heaviestLeaf(pc.prof, i); !strings.HasPrefix(r.Dot, "digraph") || !strings.Contains(r.Dot, top) {
			t.Errorf("SelectMergeStacktraces(DOT): want a digraph naming %q, got %.80q", top, r.Dot)
		}
	}
	if r, err := merge(querierv1.ProfileFormat_PROFILE_FORMAT_PPROF, 0, nil); check("SelectMergeStacktraces(PPROF)", err) {
		raw, _ := r.Pprof.GetProfile().MarshalVT()
		checkPprof(t, "SelectMergeStacktraces(PPROF)", raw, pc, i, want)
	}
	for _, ids := range [][]string{{profileID}, {kilntest.NewUUID()}} {
		r, err := merge(querierv1.ProfileFormat_PROFILE_FORMAT_FLAMEGRAPH, 0, ids)
		w := want
		if ids[0] != profileID {
			w = 0
		}
		if check("SelectMergeStacktraces(profile_id_selector)", err) && r.Flamegraph.GetTotal() != w {
			t.Errorf("profile_id_selector %v: total %d, want %d", ids, r.Flamegraph.GetTotal(), w)
		}
	}

	if mp, err := q.SelectMergeProfile(ctx, connect.NewRequest(&querierv1.SelectMergeProfileRequest{
		ProfileTypeID: typeID, LabelSelector: sel, Start: start, End: end,
	})); check("SelectMergeProfile", err) {
		raw, _ := mp.Msg.MarshalVT()
		checkPprofTop(t, raw, pc, i)
	}
	// The profile's samples carry no trace ids: a trace selects none of them
	// (traces_test.go reads traced samples).
	if tr, err := q.SelectMergeStacktraces(ctx, connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
		ProfileTypeID: typeID, LabelSelector: sel, Start: start, End: end, TraceIdSelector: []string{"0af7651916cd43dd8448eb211c80319c"},
	})); check("SelectMergeStacktraces(trace_id_selector)", err) && tr.Msg.Flamegraph.GetTotal() != 0 {
		t.Errorf("trace_id_selector on untraced samples: total %d, want 0", tr.Msg.Flamegraph.GetTotal())
	}
	mp, err := q.SelectMergeProfile(ctx, connect.NewRequest(&querierv1.SelectMergeProfileRequest{
		ProfileTypeID: typeID, LabelSelector: sel, Start: start, End: end, ProfileIdSelector: []string{profileID},
		StackTraceSelector: &typesv1.StackTraceSelector{GoPgo: &typesv1.GoPGO{KeepLocations: 2, AggregateCallees: true}},
	}))
	if check("SelectMergeProfile(go_pgo)", err) {
		raw, _ := mp.Msg.MarshalVT()
		p, err := profile.Parse(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("SelectMergeProfile(go_pgo): %v", err)
		}
		var total int64
		for _, smp := range p.Sample {
			total += smp.Value[0]
			if len(smp.Location) > 2 {
				t.Errorf("SelectMergeProfile(go_pgo keep_locations 2): a sample with %d locations", len(smp.Location))
				break
			}
		}
		if total != want {
			t.Errorf("SelectMergeProfile(go_pgo): total %d, want %d", total, want)
		}
	}
	sp, err := q.SelectMergeSpanProfile(ctx, connect.NewRequest(&querierv1.SelectMergeSpanProfileRequest{
		ProfileTypeID: typeID, LabelSelector: sel, Start: start, End: end, SpanSelector: []string{"1"},
	}))
	if check("SelectMergeSpanProfile", err) && sp.Msg.Flamegraph.GetTotal() != 0 {
		t.Errorf("SelectMergeSpanProfile: total %d for a span the file does not have", sp.Msg.Flamegraph.GetTotal())
	}
	ss, err := q.SelectSeries(ctx, connect.NewRequest(&querierv1.SelectSeriesRequest{
		ProfileTypeID: typeID, LabelSelector: sel, Start: start, End: end, Step: float64(end-start) / 1000 / 10,
	}))
	if check("SelectSeries", err) {
		var sum float64
		for _, se := range ss.Msg.Series {
			for _, p := range se.Points {
				sum += p.Value
			}
		}
		if int64(sum+0.5) != want+pc.frameless[i] { // series count frameless samples, as Pyroscope's
			t.Errorf("SelectSeries: points sum to %.0f, want %d", sum, want+pc.frameless[i])
		}
	}
	hm, err := q.SelectHeatmap(ctx, connect.NewRequest(&querierv1.SelectHeatmapRequest{
		ProfileTypeID: typeID, LabelSelector: sel, Start: start, End: end, Step: float64(end-start) / 1000 / 4,
	}))
	if check("SelectHeatmap", err) {
		var n int32
		for _, hs := range hm.Msg.Series {
			for _, slot := range hs.Slots {
				for _, cnt := range slot.Counts {
					n += cnt
				}
			}
		}
		if n != 1 {
			t.Errorf("SelectHeatmap: %d profiles counted, want 1", n)
		}
	}
	side := &querierv1.SelectMergeStacktracesRequest{ProfileTypeID: typeID, LabelSelector: sel, Start: start, End: end}
	df, err := q.Diff(ctx, connect.NewRequest(&querierv1.DiffRequest{Left: side, Right: side}))
	if check("Diff", err) && (df.Msg.Flamegraph.GetLeftTicks() != want || df.Msg.Flamegraph.GetRightTicks() != want) {
		t.Errorf("Diff: ticks %d/%d, want %d on both sides", df.Msg.Flamegraph.GetLeftTicks(), df.Msg.Flamegraph.GetRightTicks(), want)
	}
	other := &querierv1.SelectMergeStacktracesRequest{ProfileTypeID: typeID, LabelSelector: sel, Start: start, End: end, ProfileIdSelector: []string{kilntest.NewUUID()}}
	df, err = q.Diff(ctx, connect.NewRequest(&querierv1.DiffRequest{Left: side, Right: other}))
	if check("Diff(profile_id_selector)", err) && (df.Msg.Flamegraph.GetLeftTicks() != want || df.Msg.Flamegraph.GetRightTicks() != 0) {
		t.Errorf("Diff with an unknown profile id on the right: ticks %d/%d, want %d/0", df.Msg.Flamegraph.GetLeftTicks(), df.Msg.Flamegraph.GetRightTicks(), want)
	}
	ps, err := q.GetProfileStats(ctx, connect.NewRequest(&typesv1.GetProfileStatsRequest{}))
	if check("GetProfileStats", err) {
		at := pc.timeNanos / 1e6
		if pc.timeNanos == 0 || at < start {
			at = 0 // the file has no usable time: the push's time was used
		}
		m := ps.Msg
		if !m.DataIngested || m.OldestProfileTime > m.NewestProfileTime || (at != 0 && (at < m.OldestProfileTime || at > m.NewestProfileTime)) {
			t.Errorf("GetProfileStats: %v, want data ingested around %d", m, at)
		}
	}
	aq, err := q.AnalyzeQuery(ctx, connect.NewRequest(&querierv1.AnalyzeQueryRequest{Start: start, End: end, Query: typeID + sel}))
	if check("AnalyzeQuery", err) && (len(aq.Msg.QueryScopes) == 0 || aq.Msg.QueryScopes[0].ProfileCount != 1) {
		t.Errorf("AnalyzeQuery: want 1 profile, got %v", aq.Msg)
	}
}

// checkPprofTop runs `go tool pprof -top` on a merged profile: its first
// row (the largest flat value) must be the file's heaviest leaf function.
func checkPprofTop(t *testing.T, raw []byte, pc *profileCase, i int) {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command: cannot run go tool pprof")
	}
	path := filepath.Join(t.TempDir(), "merged.pb")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goBin, "tool", "pprof", "-top", "-nodecount=5", path).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof -top: %v\n%s", err, out)
	}
	lines := strings.Split(string(out), "\n")
	for k, l := range lines {
		if !strings.Contains(l, "flat%") || k+1 >= len(lines) {
			continue
		}
		f := strings.Fields(lines[k+1])
		want, _ := heaviestLeaf(pc.prof, i)
		if len(f) < 6 || strings.Join(f[5:], " ") != want {
			t.Errorf("go tool pprof -top: first row %q, want function %q", lines[k+1], want)
		}
		return
	}
	t.Errorf("go tool pprof -top: no table in\n%s", out)
}
