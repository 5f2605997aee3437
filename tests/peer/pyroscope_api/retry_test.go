package peer

import (
	"testing"
	"time"

	"connectrpc.com/connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"kiln.dev/tests/lib/kilntest"
)

// TestRetryIsNotDoubleCounted pushes the same RawSample (same ID) three
// times, as Alloy does when a response is lost, over both transports; the
// flame graph total must count it once. A different ID counts again.
func TestRetryIsNotDoubleCounted(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	s := kilntest.Start(t)
	c := s.Clients(t, kilntest.NewTenant("peer-retry"))
	pc, err := loadProfileCase(t, root, "grafana-pyroscope/cpu.pb.gz")
	if err != nil {
		t.Fatal(err)
	}
	service := "peer-retry-" + kilntest.RandomHex(4)
	send := func(tr transport, id string) {
		ctx, cancel := kilntest.ReqCtx(t)
		defer cancel()
		_, err := tr.client(c).Push(ctx, connect.NewRequest(&pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
			Labels: []*typesv1.LabelPair{
				{Name: "__name__", Value: pc.name},
				{Name: "service_name", Value: service},
				{Name: "__delta__", Value: "false"},
			},
			Samples: []*pushv1.RawSample{{RawProfile: pc.raw, ID: id}},
		}}}))
		if err != nil {
			t.Fatalf("push over %s: %v", tr.name, err)
		}
	}
	id := kilntest.NewUUID()
	send(transports[0], id)
	send(transports[0], id)
	send(transports[1], id)
	start, end := queryWindow(pc.timeNanos, time.Now())
	typeID := pc.typeIDs[len(pc.typeIDs)-1]
	want := pc.expected[len(pc.expected)-1]
	fg, err := selectMerge(t, s, c.Query, typeID, service, start, end)
	if err != nil {
		t.Fatal(err)
	}
	if fg.GetTotal() != want {
		t.Fatalf("after 3 pushes of one ID: total %d, want %d (counted once)", fg.GetTotal(), want)
	}
	send(transports[1], kilntest.NewUUID())
	if fg, err = selectMerge(t, s, c.Query, typeID, service, start, end); err != nil {
		t.Fatal(err)
	}
	if fg.GetTotal() != 2*want {
		t.Fatalf("after a push with a new ID: total %d, want %d", fg.GetTotal(), 2*want)
	}
}
