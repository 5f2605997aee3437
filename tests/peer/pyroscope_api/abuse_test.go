package peer

import (
	"bytes"
	"compress/gzip"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/pprof/profile"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"kiln.dev/tests/lib/kilntest"
)

// TestHostileRequestsAreAllOrNothing sends requests that pair a valid
// profile with a hostile one (a gzip bomb, a truncated body, a profile of
// 10^6 empty samples): each request fails with its own error, nothing of it
// is stored, and the server keeps serving.
func TestHostileRequestsAreAllOrNothing(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	s := kilntest.Start(t)
	c := s.Clients(t, kilntest.NewTenant("peer-hostile"))
	pc, err := loadProfileCase(t, root, "grafana-pyroscope/cpu.pb.gz")
	if err != nil {
		t.Fatal(err)
	}
	var bomb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&bomb, gzip.BestCompression)
	zero := make([]byte, 1<<20)
	for i := 0; i < 64; i++ { // 64 MiB of zeros, ~64 KiB compressed
		zw.Write(zero)
	}
	zw.Close()
	empty := &profile.Profile{SampleType: []*profile.ValueType{{Type: "cpu", Unit: "nanoseconds"}}}
	loc := &profile.Location{ID: 1, Line: []profile.Line{{Function: &profile.Function{ID: 1, Name: "f"}}}}
	empty.Location = []*profile.Location{loc}
	empty.Function = []*profile.Function{loc.Line[0].Function}
	for i := 0; i < 1000000; i++ {
		empty.Sample = append(empty.Sample, &profile.Sample{Location: []*profile.Location{loc}, Value: []int64{0}})
	}
	var emptyRaw bytes.Buffer
	if err := empty.Write(&emptyRaw); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		raw  []byte
		want connect.Code
	}{
		// Too large is not retryable: invalid_argument, as Pyroscope answers
		// its profile size limit (resource_exhausted is for rate limits).
		{"gzip bomb", bomb.Bytes(), connect.CodeInvalidArgument},
		{"truncated gzip", pc.raw[:len(pc.raw)/2], connect.CodeInvalidArgument},
		// ~6 MB decompressed: the 4 MiB profile size limit refuses it before
		// the 16000-sample limit would.
		{"10^6 empty samples", emptyRaw.Bytes(), connect.CodeInvalidArgument},
	}
	service := "peer-hostile-" + kilntest.RandomHex(4)
	for _, tc := range cases {
		ctx, cancel := kilntest.ReqCtx(t)
		_, err := c.Push.Push(ctx, connect.NewRequest(&pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{
			{Labels: []*typesv1.LabelPair{{Name: "__name__", Value: pc.name}, {Name: "service_name", Value: service}},
				Samples: []*pushv1.RawSample{{RawProfile: pc.raw, ID: kilntest.NewUUID()}}},
			{Labels: []*typesv1.LabelPair{{Name: "__name__", Value: pc.name}, {Name: "service_name", Value: service}},
				Samples: []*pushv1.RawSample{{RawProfile: tc.raw, ID: kilntest.NewUUID()}}},
		}}))
		cancel()
		if connect.CodeOf(err) != tc.want {
			t.Errorf("%s: want %v, got %v", tc.name, tc.want, err)
		}
	}
	start, end := queryWindow(pc.timeNanos, time.Now())
	fg, err := selectMerge(t, s, c.Query, pc.typeIDs[0], service, start, end)
	if err != nil {
		t.Fatal(err)
	}
	if fg.GetTotal() != 0 {
		t.Errorf("the valid halves of failed requests were stored: total %d, want 0", fg.GetTotal())
	}
	if _, err := push(t, s, c, transports[0], pc.name, service, pc.raw); err != nil {
		t.Fatalf("a valid push after the hostile ones: %v", err)
	}
}
