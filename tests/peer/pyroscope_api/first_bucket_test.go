package peer

import (
	"bytes"
	"math"
	"testing"
	"time"

	"connectrpc.com/connect"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"

	"kiln.dev/tests/lib/kilntest"
)

// TestSelectSeriesFirstBucket pushes gdu/default.pgo restamped once a
// minute for an hour and checks SelectSeries' points against Pyroscope
// v1.12's rule (pkg/querier: profiles are read from start - step; RangeSeries
// puts each at the first boundary start + i*step >= its time, boundaries up
// to end inclusive, empty steps omitted). The point at start covers the step
// before it: Kiln used to read from start, one point short (the issue's
// 60 vs 61 and 5 vs 6).
func TestSelectSeriesFirstBucket(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	s := kilntest.Start(t, kilntest.Args("-validation.reject-older-than=0"))
	c := s.Clients(t, kilntest.NewTenant("peer-bucket"))
	pc, err := loadProfileCase(t, root, "gdu/default.pgo")
	if err != nil {
		t.Fatal(err)
	}
	service := "peer-bucket-" + kilntest.RandomHex(4)
	minute := int64(time.Minute / time.Millisecond)
	base := time.Now().Add(-3 * time.Hour).Truncate(time.Minute).UnixMilli()
	var times []int64
	for k := int64(0); k <= 60; k++ {
		times = append(times, base+k*minute)
		p := pc.prof.Copy()
		p.TimeNanos = (base + k*minute) * int64(time.Millisecond)
		var buf bytes.Buffer
		if err := p.Write(&buf); err != nil {
			t.Fatal(err)
		}
		if _, err := push(t, s, c, transports[0], pc.name, service, buf.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	typeID := pc.typeIDs[len(pc.typeIDs)-1]
	one := seriesPoints(t, c, typeID, service, base, base, 1)
	if len(one) != 1 {
		t.Fatalf("one profile's window: %d points, want 1", len(one))
	}
	v := one[0].value
	cases := []struct {
		name        string
		start, end  int64
		step        int64 // ms
		points      int
		first, last int64 // profiles in the first and last point
	}{
		{"1h at 60s, boundaries between profiles", base + 30000, base + 60*minute + 30000, minute, 61, 1, 1},
		{"1h at 10m: 6 points", base + 30000, base + 60*minute, 10 * minute, 6, 1, 10},
		{"aligned 10m at 5m", base + 10*minute, base + 20*minute, 5 * minute, 3, 6, 5},
		{"1h at 60s on the profiles", base, base + 60*minute, minute, 61, 1, 1},
		{"odd step 7s", base + 1, base + 3*minute, 7000, 3, 1, 1},
	}
	for _, tc := range cases {
		got := seriesPoints(t, c, typeID, service, tc.start, tc.end, tc.step)
		want := pyroscopePoints(times, tc.start, tc.end, tc.step)
		t.Logf("%s: %d points (want %d)", tc.name, len(got), len(want))
		if len(want) != tc.points || want[0].value != float64(tc.first) || want[len(want)-1].value != float64(tc.last) {
			t.Fatalf("%s: the test's own model gives %v", tc.name, want)
		}
		if len(got) != len(want) {
			t.Errorf("%s: %d points, want %d: %v", tc.name, len(got), len(want), got)
			continue
		}
		for i := range want {
			if got[i].ts != want[i].ts || math.Abs(got[i].value-want[i].value*v) > 0.5 {
				t.Errorf("%s: point %d = (%d, %.0f), want (%d, %.0f)", tc.name, i,
					got[i].ts, got[i].value, want[i].ts, want[i].value*v)
			}
		}
	}
}

type seriesPoint struct {
	ts    int64
	value float64
}

// pyroscopePoints models Pyroscope's bucketing of profiles at times: those
// in [start - step, end] are read, each counts at the first boundary
// start + i*step >= its time, boundaries up to end. A point's value is its
// profile count.
func pyroscopePoints(times []int64, start, end, step int64) []seriesPoint {
	counts := map[int64]int{}
	for _, t := range times {
		if t < start-step || t > end {
			continue
		}
		b := start
		for b < t {
			b += step
		}
		if b <= end {
			counts[b]++
		}
	}
	var out []seriesPoint
	for b := start; b <= end; b += step {
		if counts[b] > 0 {
			out = append(out, seriesPoint{b, float64(counts[b])})
		}
	}
	return out
}

func seriesPoints(t *testing.T, c *kilntest.Clients, typeID, service string, start, end, step int64) []seriesPoint {
	t.Helper()
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	ss, err := c.Query.SelectSeries(ctx, connect.NewRequest(&querierv1.SelectSeriesRequest{
		ProfileTypeID: typeID,
		LabelSelector: `{service_name="` + service + `"}`,
		Start:         start,
		End:           end,
		Step:          float64(step) / 1000,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(ss.Msg.Series) != 1 {
		t.Fatalf("SelectSeries [%d, %d] step %d ms: %d series, want 1", start, end, step, len(ss.Msg.Series))
	}
	var out []seriesPoint
	for _, p := range ss.Msg.Series[0].Points {
		out = append(out, seriesPoint{p.Timestamp, p.Value})
	}
	return out
}
