package peer

import (
	"bytes"
	"fmt"
	"math"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/pprof/profile"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"kiln.dev/tests/lib/kilntest"
)

// TestSelectSeriesAndMergeProfile checks SelectSeries (time series from the
// same data as the flame graph), SelectMergeProfile (a pprof profile that
// github.com/google/pprof parses, with the file's heaviest leaf on top) and
// SelectMergeStacktraces with the PPROF format, against figures computed
// from the file.
func TestSelectSeriesAndMergeProfile(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	s := kilntest.Start(t)
	c := s.Clients(t, kilntest.NewTenant("peer-query"))
	pc, err := loadProfileCase(t, root, "gdu/default.pgo")
	if err != nil {
		t.Fatal(err)
	}
	service := "peer-query-" + kilntest.RandomHex(4)
	if _, err := push(t, s, c, transports[0], pc.name, service, pc.raw); err != nil {
		t.Fatal(err)
	}
	start, end := queryWindow(pc.timeNanos, time.Now())
	i := len(pc.typeIDs) - 1
	typeID, want := pc.typeIDs[i], pc.expected[i]

	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	ss, err := c.Query.SelectSeries(ctx, connect.NewRequest(&querierv1.SelectSeriesRequest{
		ProfileTypeID: typeID,
		LabelSelector: `{service_name="` + service + `"}`,
		Start:         start,
		End:           end,
		Step:          float64(end-start) / 1000 / 10,
		GroupBy:       []string{"service_name"},
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(ss.Msg.Series) != 1 || len(ss.Msg.Series[0].Labels) != 1 || ss.Msg.Series[0].Labels[0].Value != service {
		t.Fatalf("SelectSeries: want one series labelled service_name=%s, got %v", service, ss.Msg.Series)
	}
	var sum float64
	for _, p := range ss.Msg.Series[0].Points {
		sum += p.Value
		if p.Timestamp < start || p.Timestamp > end {
			t.Errorf("point at %d outside [%d, %d]", p.Timestamp, start, end)
		}
	}
	// The series counts the file's frameless samples (gdu/default.pgo has
	// one of 80,000,000 ns), the flame graph does not: as Pyroscope.
	if math.Abs(sum-float64(want+pc.frameless[i])) > 0.5 {
		t.Errorf("SelectSeries: points sum to %.0f, want %d (flame graph %d + frameless %d)",
			sum, want+pc.frameless[i], want, pc.frameless[i])
	}
	if pc.frameless[i] == 0 {
		t.Errorf("%s: no frameless sample found: the test lost its point", pc.rel)
	}
	t.Logf("SelectSeries total %.0f - flame graph total %d = %.0f (frameless samples: %d)",
		sum, want, sum-float64(want), pc.frameless[i])

	mp, err := c.Query.SelectMergeProfile(ctx, connect.NewRequest(&querierv1.SelectMergeProfileRequest{
		ProfileTypeID: typeID,
		LabelSelector: `{service_name="` + service + `"}`,
		Start:         start,
		End:           end,
	}))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := mp.Msg.MarshalVT()
	if err != nil {
		t.Fatal(err)
	}
	checkPprof(t, "SelectMergeProfile", raw, pc, i, want)

	fmtPprof := querierv1.ProfileFormat_PROFILE_FORMAT_PPROF
	st, err := c.Query.SelectMergeStacktraces(ctx, connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
		ProfileTypeID: typeID,
		LabelSelector: `{service_name="` + service + `"}`,
		Start:         start,
		End:           end,
		Format:        fmtPprof,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if st.Msg.GetPprof().GetProfile() == nil {
		t.Fatal("SelectMergeStacktraces(format=PPROF): no profile in the response")
	}
	raw, err = st.Msg.GetPprof().GetProfile().MarshalVT()
	if err != nil {
		t.Fatal(err)
	}
	checkPprof(t, "SelectMergeStacktraces(PPROF)", raw, pc, i, want)
}

// checkPprof parses raw with google/pprof and compares its total and its
// top function by flat value with the source file's.
func checkPprof(t *testing.T, what string, raw []byte, pc *profileCase, i int, want int64) {
	t.Helper()
	p, err := profile.Parse(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("%s: google/pprof cannot parse it: %v", what, err)
	}
	if err := p.CheckValid(); err != nil {
		t.Fatalf("%s: invalid profile: %v", what, err)
	}
	var total int64
	flat := map[string]int64{}
	for _, s := range p.Sample {
		total += s.Value[0]
		if len(s.Location) > 0 && len(s.Location[0].Line) > 0 {
			flat[s.Location[0].Line[0].Function.Name] += s.Value[0]
		}
	}
	if total != want {
		t.Errorf("%s: total %d, want %d", what, total, want)
	}
	top, topV := "", int64(0)
	for f, v := range flat {
		if v > topV || (v == topV && f < top) {
			top, topV = f, v
		}
	}
	wantTop, _ := heaviestLeaf(pc.prof, i)
	if top != wantTop {
		t.Errorf("%s: top function %q, want %q (the file's heaviest leaf)", what, top, wantTop)
	}
}

// TestSelectSeriesLimitAndAverage pushes one file 1, 2 and 3 times (distinct
// profile ids) as three services and checks SelectSeries grouped by service:
// `limit` keeps the series of the largest totals (3x and 2x the file's),
// and AVERAGE gives the mean profile value per step (the file's total),
// where the default sum gives n times it.
func TestSelectSeriesLimitAndAverage(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	s := kilntest.Start(t)
	c := s.Clients(t, kilntest.NewTenant("peer-series"))
	pc, err := loadProfileCase(t, root, "gdu/default.pgo")
	if err != nil {
		t.Fatal(err)
	}
	prefix := "peer-series-" + kilntest.RandomHex(4) + "-"
	for n := 1; n <= 3; n++ {
		for k := 0; k < n; k++ {
			if _, err := pushID(t, s, c, transports[0], pc.name, fmt.Sprintf("%s%d", prefix, n), pc.raw, kilntest.NewUUID()); err != nil {
				t.Fatal(err)
			}
		}
	}
	start, end := queryWindow(pc.timeNanos, time.Now())
	i := len(pc.typeIDs) - 1
	series := func(limit int64, agg typesv1.TimeSeriesAggregationType) map[string]float64 {
		t.Helper()
		ctx, cancel := kilntest.ReqCtx(t)
		defer cancel()
		ss, err := c.Query.SelectSeries(ctx, connect.NewRequest(&querierv1.SelectSeriesRequest{
			ProfileTypeID: pc.typeIDs[i], LabelSelector: `{service_name=~"` + prefix + `.*"}`,
			Start: start, End: end, Step: float64(end-start) / 1000, // one step: every profile in one point
			GroupBy: []string{"service_name"}, Limit: &limit, Aggregation: &agg,
		}))
		if err != nil {
			t.Fatalf("SelectSeries(limit %d, %v): %v", limit, agg, err)
		}
		got := map[string]float64{}
		for _, se := range ss.Msg.Series {
			for _, p := range se.Points {
				got[se.Labels[0].Value] += p.Value
			}
		}
		return got
	}
	want := float64(pc.expected[i] + pc.frameless[i]) // series count frameless samples
	sum := typesv1.TimeSeriesAggregationType_TIME_SERIES_AGGREGATION_TYPE_SUM
	avg := typesv1.TimeSeriesAggregationType_TIME_SERIES_AGGREGATION_TYPE_AVERAGE
	if got := series(2, sum); len(got) != 2 || got[prefix+"3"] != 3*want || got[prefix+"2"] != 2*want {
		t.Errorf("SelectSeries(limit 2, sum) = %v, want %s3: %.0f and %s2: %.0f", got, prefix, 3*want, prefix, 2*want)
	}
	if got := series(0, avg); len(got) != 3 || got[prefix+"1"] != want || got[prefix+"2"] != want || got[prefix+"3"] != want {
		t.Errorf("SelectSeries(average) = %v, want %.0f for each of 3 services", got, want)
	}
}

// TestQueryLookback runs kiln with -querier.max-query-lookback=1h: a
// profile years old is stored (nothing rejects its age) but no query
// reaches back to it, and the query is answered, not refused.
func TestQueryLookback(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	t.Setenv("KILN_EXTRA_ARGS", "-querier.max-query-lookback=1h -querier.max-query-length=0 -validation.reject-older-than=0")
	s := kilntest.Start(t)
	c := s.Clients(t, kilntest.NewTenant("peer-lookback"))
	pc, err := loadProfileCase(t, root, "grafana-pyroscope/cpu.pb.gz")
	if err != nil {
		t.Fatal(err)
	}
	service := "peer-lookback-" + kilntest.RandomHex(4)
	if _, err := push(t, s, c, transports[0], pc.name, service, pc.raw); err != nil {
		t.Fatal(err)
	}
	start, end := queryWindow(pc.timeNanos, time.Now())
	fg, err := selectMerge(t, s, c.Query, pc.typeIDs[0], service, start, end)
	if err != nil {
		t.Fatalf("a query before the lookback limit: %v", err)
	}
	if fg.GetTotal() != 0 {
		t.Errorf("a profile older than max-query-lookback is served: total %d", fg.GetTotal())
	}
}
