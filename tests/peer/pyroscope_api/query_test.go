package peer

import (
	"bytes"
	"math"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/pprof/profile"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"

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
	if math.Abs(sum-float64(want)) > 0.5 {
		t.Errorf("SelectSeries: points sum to %.0f, want %d", sum, want)
	}

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
