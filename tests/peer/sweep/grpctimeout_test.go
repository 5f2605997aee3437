package sweep

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"

	"kiln.dev/tests/lib/kilntest"
)

// TestGRPCTimeoutHeader sends a gRPC query with each odd grpc-timeout
// value a client may send; each must be answered (a result or an error
// status) within the client's own 10 s.
func TestGRPCTimeoutHeader(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	s := kilntest.Start(t, kilntest.OTLPOff(), kilntest.LogLevel("error"))
	w := newWorld(t, s, root)
	q := w.clients().query["grpc"]
	for _, v := range []string{"1H", "abc", "99999999S", "0n", "-1m", "1", "100000000u", "1n", "1m"} {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		ctx = withHeaders(ctx, http.Header{"X-Scope-Orgid": {w.tenants[0]}, "Grpc-Timeout": {v}})
		t0 := time.Now()
		_, err := q.ProfileTypes(ctx, connect.NewRequest(&querierv1.ProfileTypesRequest{Start: 1, End: 2}))
		cancel()
		t.Logf("grpc-timeout %q: %v in %v", v, err, time.Since(t0).Round(time.Millisecond))
		if r := connectResult(0, err, time.Since(t0)); err != nil && (kilntest.ConnectCode(err) == connect.CodeDeadlineExceeded && time.Since(t0) > 9*time.Second) {
			t.Errorf("grpc-timeout %q: no answer: %s", v, r.verdict())
		}
	}
	// Already-expired deadlines from 4 clients at once, with bodies.
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				ctx = withHeaders(ctx, http.Header{"X-Scope-Orgid": {w.tenants[0]}, "Grpc-Timeout": {"0n"}})
				t0 := time.Now()
				_, err := q.SelectMergeStacktraces(ctx, connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
					ProfileTypeID: "a:b:c:d:e", LabelSelector: "{x=\"" + huge[:i*1000] + "\"}", Start: 1, End: 2}))
				cancel()
				if time.Since(t0) > 9*time.Second {
					t.Errorf("grpc-timeout 0n, %d KB body: no answer in %v: %v", i, time.Since(t0), err)
				}
			}
		}()
	}
	wg.Wait()

	// Deadlines that expire while the query runs, then an ordinary call.
	p := kilntest.LoadProfile(t, root, "grafana-pyroscope/dotnet.labels.pprof")
	ctx, cancel := reqCtx(t.Context(), w.tenants[0], false)
	if _, err := w.clients().push.Push(ctx, connect.NewRequest(pushOne(p, "slow"))); err != nil {
		t.Fatal(err)
	}
	cancel()
	for i := 0; i < 64; i++ {
		v := []string{"1u", "10u", "100u", "1m", "3m", "10m"}[i%6]
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		ctx = withHeaders(ctx, http.Header{"X-Scope-Orgid": {w.tenants[0]}, "Grpc-Timeout": {v}})
		t0 := time.Now()
		_, err := q.SelectMergeStacktraces(ctx, connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
			ProfileTypeID: p.TypeIDs[0], LabelSelector: "{}", Start: 1, End: time.Now().UnixMilli()}))
		cancel()
		if time.Since(t0) > 9*time.Second {
			t.Errorf("grpc-timeout %q on a merge: no answer in %v: %v", v, time.Since(t0), err)
		}
	}
	ctx, cancel = reqCtx(t.Context(), w.tenants[0], false)
	defer cancel()
	if _, err := q.ProfileTypes(ctx, connect.NewRequest(&querierv1.ProfileTypesRequest{Start: 1, End: 2})); err != nil {
		t.Errorf("an ordinary gRPC call after the expired ones: %v", err)
	}
	s.RequireAlive(t)
}
