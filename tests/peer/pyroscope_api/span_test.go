package peer

import (
	"testing"
	"time"

	"connectrpc.com/connect"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"

	"kiln.dev/tests/lib/kilntest"
)

// TestSpanProfiles pushes a Go CPU profile whose samples carry span_id
// labels (pyroscope otel-profiling-go) and reads back the flame graph of
// one span with SelectMergeSpanProfile and with SelectMergeStacktraces'
// span_selector: the totals must be that span's samples only.
func TestSpanProfiles(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	s := kilntest.Start(t)
	c := s.Clients(t, kilntest.NewTenant("peer-span"))
	pc, err := loadProfileCase(t, root, "grafana-pyroscope/single_group_with_optional_span_id.pb.gz")
	if err != nil {
		t.Fatal(err)
	}
	i := len(pc.typeIDs) - 1
	perSpan := map[string]int64{}
	for _, smp := range pc.prof.Sample {
		for _, id := range smp.Label["span_id"] {
			perSpan[id] += smp.Value[i]
		}
	}
	if len(perSpan) == 0 {
		t.Fatal("want a file with span ids")
	}
	span, want := "", int64(0)
	for id, v := range perSpan {
		if v > want || (v == want && id < span) {
			span, want = id, v
		}
	}
	service := "peer-span-" + kilntest.RandomHex(4)
	if _, err := push(t, s, c, transports[1], pc.name, service, pc.raw); err != nil {
		t.Fatal(err)
	}
	start, end := queryWindow(pc.timeNanos, time.Now())
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	r, err := c.Query.SelectMergeSpanProfile(ctx, connect.NewRequest(&querierv1.SelectMergeSpanProfileRequest{
		ProfileTypeID: pc.typeIDs[i],
		LabelSelector: `{service_name="` + service + `"}`,
		SpanSelector:  []string{span},
		Start:         start,
		End:           end,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Msg.GetFlamegraph().GetTotal(); got != want || want >= pc.expected[i] {
		t.Errorf("SelectMergeSpanProfile(%s): total %d, want %d (that span's samples, of %d in all)",
			span, got, want, pc.expected[i])
	}
	rt, err := c.QueryJSON.SelectMergeSpanProfile(ctx, connect.NewRequest(&querierv1.SelectMergeSpanProfileRequest{
		ProfileTypeID: pc.typeIDs[i], LabelSelector: `{service_name="` + service + `"}`, SpanSelector: []string{span},
		Start: start, End: end, Format: querierv1.ProfileFormat_PROFILE_FORMAT_TREE,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if tr, err := decodeTree(rt.Msg.Tree); err != nil {
		t.Errorf("SelectMergeSpanProfile(TREE): %v", err)
	} else if got, _, _ := treeStats(tr); got != want {
		t.Errorf("SelectMergeSpanProfile(TREE, %s): total %d, want %d", span, got, want)
	}
	other, err := c.Query.SelectMergeSpanProfile(ctx, connect.NewRequest(&querierv1.SelectMergeSpanProfileRequest{
		ProfileTypeID: pc.typeIDs[i], SpanSelector: []string{"00000000deadbeef"}, Start: start, End: end,
	}))
	if err != nil || other.Msg.GetFlamegraph().GetTotal() != 0 {
		t.Errorf("an unknown span id: want an empty flame graph, got %v (%v)", other, err)
	}
	r2, err := c.Query.SelectMergeStacktraces(ctx, connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
		ProfileTypeID: pc.typeIDs[i],
		LabelSelector: `{service_name="` + service + `"}`,
		SpanSelector:  []string{span},
		Start:         start,
		End:           end,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got := r2.Msg.GetFlamegraph().GetTotal(); got != want {
		t.Errorf("SelectMergeStacktraces(span_selector=%s): total %d, want %d", span, got, want)
	}
	if _, err := c.Query.SelectMergeSpanProfile(ctx, connect.NewRequest(&querierv1.SelectMergeSpanProfileRequest{
		ProfileTypeID: pc.typeIDs[i], SpanSelector: []string{"xyz"}, Start: start, End: end,
	})); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Errorf("a malformed span id: want invalid_argument, got %v", err)
	}
}
