package peer

import (
	"bytes"
	"sort"
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

// The traced profile: samples as otel-profiling-go labels them (span_id
// and trace_id per sample), 10 ms per CPU sample.
const (
	trace1 = "0af7651916cd43dd8448eb211c80319c"
	trace2 = "4bf92f3577b34da6a3ce929d0e0e4736"
	span1  = "00f067aa0ba902b7"
	span2  = "53995c3f42cd8ad8"
	span3  = "b7ad6b7169203331"
	ms10   = int64(10_000_000)
)

type tracedSample struct {
	stack       []string // leaf first
	n           int64    // CPU samples of 10 ms
	span, trace string
}

var tracedSamples = []tracedSample{
	{[]string{"db", "handler", "main"}, 3, span1, trace1},
	{[]string{"cache", "handler", "main"}, 5, span2, trace1},
	{[]string{"db", "handler", "main"}, 7, span3, trace2},
	{[]string{"idle", "main"}, 11, "", ""},
	{[]string{"handler", "main"}, 13, "", trace2},
}

// tracedProfile builds the profile with google/pprof's profile package.
func tracedProfile(t *testing.T, at time.Time) []byte {
	t.Helper()
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:     ms10,
		TimeNanos:  at.UnixNano(),
	}
	locs := map[string]*profile.Location{}
	loc := func(name string) *profile.Location {
		if l, ok := locs[name]; ok {
			return l
		}
		f := &profile.Function{ID: uint64(len(p.Function) + 1), Name: name, SystemName: name}
		p.Function = append(p.Function, f)
		l := &profile.Location{ID: uint64(len(p.Location) + 1), Line: []profile.Line{{Function: f}}}
		p.Location = append(p.Location, l)
		locs[name] = l
		return l
	}
	for _, s := range tracedSamples {
		smp := &profile.Sample{Value: []int64{s.n, s.n * ms10}, Label: map[string][]string{}}
		for _, f := range s.stack {
			smp.Location = append(smp.Location, loc(f))
		}
		if s.span != "" {
			smp.Label["span_id"] = []string{s.span}
		}
		if s.trace != "" {
			smp.Label["trace_id"] = []string{s.trace}
		}
		p.Sample = append(p.Sample, smp)
	}
	var b bytes.Buffer
	if err := p.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// tracedTotal is the CPU time of the samples keep takes.
func tracedTotal(keep func(s tracedSample) bool) int64 {
	var v int64
	for _, s := range tracedSamples {
		if keep(s) {
			v += s.n * ms10
		}
	}
	return v
}

// TestTraceIDsAndSpanExemplars pushes a pprof whose samples carry trace and
// span ids over the Connect client, then reads them back: trace_id_selector
// filters samples (SelectMergeStacktraces, SelectMergeProfile, Diff; with
// span_selector their intersection), span heatmaps and SelectSeries carry
// span exemplars (span id, trace id, profile id, value) that select their
// samples again, and all of it holds after a restart.
func TestTraceIDsAndSpanExemplars(t *testing.T) {
	kilntest.RequireEnv(t)
	s := kilntest.Start(t)
	c := s.Clients(t, kilntest.NewTenant("peer-traces"))
	service := "peer-traces-" + kilntest.RandomHex(4)
	at := time.Now().Add(-time.Minute).Truncate(time.Second)
	if _, err := push(t, s, c, transports[0], "process_cpu", service, tracedProfile(t, at)); err != nil {
		t.Fatal(err)
	}
	start, end := at.Add(-time.Minute).UnixMilli(), at.Add(time.Minute).UnixMilli()
	checkTraces(t, c, service, start, end)
	s = s.Restart(t)
	c = s.Clients(t, c.Tenant)
	checkTraces(t, c, service, start, end)
}

const cpuType = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"

func checkTraces(t *testing.T, c *kilntest.Clients, service string, start, end int64) {
	t.Helper()
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	sel := `{service_name="` + service + `"}`
	merge := func(q querierv1connect.QuerierServiceClient, traces, spans []string) (int64, error) {
		r, err := q.SelectMergeStacktraces(ctx, connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
			ProfileTypeID: cpuType, LabelSelector: sel, Start: start, End: end,
			TraceIdSelector: traces, SpanSelector: spans,
		}))
		if err != nil {
			return 0, err
		}
		return r.Msg.GetFlamegraph().GetTotal(), nil
	}
	cases := []struct {
		traces, spans []string
		want          int64
	}{
		{nil, nil, tracedTotal(func(tracedSample) bool { return true })},
		{[]string{trace1}, nil, tracedTotal(func(s tracedSample) bool { return s.trace == trace1 })},
		{[]string{trace2}, nil, tracedTotal(func(s tracedSample) bool { return s.trace == trace2 })},
		{[]string{trace2, trace1}, nil, tracedTotal(func(s tracedSample) bool { return s.trace != "" })},
		{[]string{"00000000000000000000000000000abc"}, nil, 0},
		{[]string{trace2}, []string{span3}, 7 * ms10},
		{[]string{trace1}, []string{span3}, 0},
	}
	for _, q := range []querierv1connect.QuerierServiceClient{c.Query, c.QueryJSON, c.QueryGRPC} {
		for _, k := range cases {
			got, err := merge(q, k.traces, k.spans)
			if err != nil || got != k.want {
				t.Errorf("SelectMergeStacktraces(traces %v, spans %v): %d (%v), want %d", k.traces, k.spans, got, err, k.want)
			}
		}
	}
	if _, err := merge(c.Query, []string{"0af7651916cd43dd"}, nil); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Errorf("a 16-digit trace id: want invalid_argument, got %v", err)
	}
	pp, err := c.Query.SelectMergeProfile(ctx, connect.NewRequest(&querierv1.SelectMergeProfileRequest{
		ProfileTypeID: cpuType, LabelSelector: sel, Start: start, End: end, TraceIdSelector: []string{trace1},
	}))
	if err != nil {
		t.Fatal(err)
	}
	var ppTotal int64
	for _, smp := range pp.Msg.Sample {
		ppTotal += smp.Value[0]
	}
	if want := 8 * ms10; ppTotal != want {
		t.Errorf("SelectMergeProfile(trace %s): %d, want %d", trace1, ppTotal, want)
	}
	side := func(trace string) *querierv1.SelectMergeStacktracesRequest {
		return &querierv1.SelectMergeStacktracesRequest{ProfileTypeID: cpuType, LabelSelector: sel,
			Start: start, End: end, TraceIdSelector: []string{trace}}
	}
	d, err := c.Query.Diff(ctx, connect.NewRequest(&querierv1.DiffRequest{Left: side(trace1), Right: side(trace2)}))
	if err != nil {
		t.Fatal(err)
	}
	if l, r := d.Msg.Flamegraph.GetLeftTicks(), d.Msg.Flamegraph.GetRightTicks(); l != 8*ms10 || r != 20*ms10 {
		t.Errorf("Diff(trace1, trace2): ticks %d / %d, want %d / %d", l, r, 8*ms10, 20*ms10)
	}
	checkSpanExemplars(t, c, sel, start, end, merge)
}

// sandwichNode is a SandwichReport node as Drilldown's SandwichApiClient
// reads it (Connect JSON: int64 as strings).
type sandwichNode struct {
	NameIndex int            `json:"nameIndex"`
	Total     string         `json:"total"`
	Self      string         `json:"self"`
	Children  []sandwichNode `json:"children"`
}

// flat renders a half as "name:total/self" lines, depth first.
func (n sandwichNode) flat(names []string, depth string, out *[]string) {
	*out = append(*out, depth+names[n.NameIndex]+":"+n.Total+"/"+n.Self)
	for _, c := range n.Children {
		c.flat(names, depth+" ", out)
	}
}

// TestSandwich asks for PROFILE_FORMAT_SANDWICH as Drilldown's sandwich view
// does (Connect JSON) and checks both halves of "handler" exactly, whole
// and under a trace_id_selector.
func TestSandwich(t *testing.T) {
	kilntest.RequireEnv(t)
	s := kilntest.Start(t)
	c := s.Clients(t, kilntest.NewTenant("peer-sandwich"))
	service := "peer-sandwich-" + kilntest.RandomHex(4)
	at := time.Now().Add(-time.Minute).Truncate(time.Second)
	if _, err := push(t, s, c, transports[0], "process_cpu", service, tracedProfile(t, at)); err != nil {
		t.Fatal(err)
	}
	ask := func(traces []string) []string {
		body := map[string]any{"profileTypeID": cpuType, "labelSelector": `{service_name="` + service + `"}`,
			"start": at.Add(-time.Minute).UnixMilli(), "end": at.Add(time.Minute).UnixMilli(),
			"format": "PROFILE_FORMAT_SANDWICH", "sandwichFunction": "handler", "maxNodes": 16384}
		if traces != nil {
			body["traceIdSelector"] = traces
		}
		var r struct {
			Sandwich struct {
				Names   []string     `json:"names"`
				Callers sandwichNode `json:"callers"`
				Callees sandwichNode `json:"callees"`
				Total   string       `json:"total"`
				Self    string       `json:"self"`
			} `json:"sandwich"`
		}
		postJSON(t, s, c, "SelectMergeStacktraces", body, &r)
		sw := r.Sandwich
		out := []string{"total " + sw.Total + " self " + sw.Self, "callers:"}
		sw.Callers.flat(sw.Names, "", &out)
		out = append(out, "callees:")
		sw.Callees.flat(sw.Names, "", &out)
		return out
	}
	check := func(got, want []string) {
		t.Helper()
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("sandwich of handler:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
	check(ask(nil), []string{"total 280000000 self 130000000", "callers:",
		"handler:280000000/", " main:280000000/", "callees:",
		"handler:280000000/130000000", " db:100000000/100000000", " cache:50000000/50000000"})
	check(ask([]string{trace2}), []string{"total 200000000 self 130000000", "callers:",
		"handler:200000000/", " main:200000000/", "callees:",
		"handler:200000000/130000000", " db:70000000/70000000"})
}

type exemplarKey struct {
	span, trace string
	value       int64
}

func checkSpanExemplars(t *testing.T, c *kilntest.Clients, sel string, start, end int64,
	merge func(q querierv1connect.QuerierServiceClient, traces, spans []string) (int64, error)) {
	t.Helper()
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	step := float64(end-start) / 1000 // one slot, one point
	h, err := c.Query.SelectHeatmap(ctx, connect.NewRequest(&querierv1.SelectHeatmapRequest{
		ProfileTypeID: cpuType, LabelSelector: sel, Start: start, End: end, Step: step,
		QueryType: querierv1.HeatmapQueryType_HEATMAP_QUERY_TYPE_SPAN, ExemplarType: typesv1.ExemplarType_EXEMPLAR_TYPE_SPAN,
	}))
	if err != nil {
		t.Fatal(err)
	}
	var got []exemplarKey
	var count int32
	for _, hs := range h.Msg.Series {
		for _, sl := range hs.Slots {
			for _, n := range sl.Counts {
				count += n
			}
			for _, e := range sl.Exemplars {
				if e.ProfileId == "" {
					t.Errorf("span exemplar %v without a profile id", e)
				}
				got = append(got, exemplarKey{e.SpanId, e.TraceId, e.Value})
			}
		}
	}
	sort.Slice(got, func(i, j int) bool { return got[i].span < got[j].span })
	want := []exemplarKey{{span1, trace1, 3 * ms10}, {span2, trace1, 5 * ms10}, {span3, trace2, 7 * ms10}}
	if count != 3 || len(got) != len(want) {
		t.Fatalf("span heatmap: %d spans counted, exemplars %v, want 3 and %v", count, got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("span exemplar %d: %v, want %v", i, got[i], want[i])
		}
	}
	// An exemplar's ids select its samples again.
	for _, e := range got {
		if v, err := merge(c.Query, []string{e.trace}, []string{e.span}); err != nil || v != e.value {
			t.Errorf("span %s in trace %s: %d (%v), want %d", e.span, e.trace, v, err, e.value)
		}
	}
	sr, err := c.Query.SelectSeries(ctx, connect.NewRequest(&querierv1.SelectSeriesRequest{
		ProfileTypeID: cpuType, LabelSelector: sel, Start: start, End: end, Step: step,
		ExemplarType: typesv1.ExemplarType_EXEMPLAR_TYPE_SPAN,
	}))
	if err != nil {
		t.Fatal(err)
	}
	var sx []*typesv1.Exemplar
	for _, s := range sr.Msg.Series {
		for _, p := range s.Points {
			sx = append(sx, p.Exemplars...)
		}
	}
	if len(sx) != 1 || sx[0].SpanId != span3 || sx[0].TraceId != trace2 || sx[0].Value != 7*ms10 || sx[0].ProfileId == "" {
		t.Errorf("SelectSeries span exemplars %v, want the largest span %s (trace %s, %d)", sx, span3, trace2, 7*ms10)
	}
	_, err = c.Query.SelectHeatmap(ctx, connect.NewRequest(&querierv1.SelectHeatmapRequest{
		ProfileTypeID: cpuType, LabelSelector: sel, Start: start, End: end, Step: step,
		QueryType: querierv1.HeatmapQueryType_HEATMAP_QUERY_TYPE_INDIVIDUAL, ExemplarType: typesv1.ExemplarType_EXEMPLAR_TYPE_SPAN,
	}))
	if connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Errorf("span exemplars of an individual heatmap: want invalid_argument, got %v", err)
	}
}
