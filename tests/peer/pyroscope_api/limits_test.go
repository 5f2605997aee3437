package peer

import (
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"

	"kiln.dev/tests/lib/kilntest"
)

// TestDefaultLimits runs kiln with Pyroscope's default time window and query
// length (the other tests turn them off for the years-old test data): an
// old profile is refused naming the limit, and so is a query over 48 h.
func TestDefaultLimits(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	t.Setenv("KILN_EXTRA_ARGS", "-validation.reject-older-than=1h -querier.max-query-length=24h")
	s := kilntest.Start(t)
	c := s.Clients(t, kilntest.NewTenant("peer-limits"))
	pc, err := loadProfileCase(t, root, "grafana-pyroscope/cpu.pb.gz")
	if err != nil {
		t.Fatal(err)
	}
	_, err = push(t, s, c, transports[0], pc.name, "peer-limits", pc.raw)
	if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "reject_older_than") {
		t.Errorf("an old profile: want invalid_argument naming reject_older_than, got %v", err)
	}
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	now := time.Now().UnixMilli()
	_, err = c.Query.SelectMergeStacktraces(ctx, connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
		ProfileTypeID: pc.typeIDs[0], LabelSelector: "{}", Start: now - 48*3600*1000, End: now,
	}))
	if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), "max_query_length") {
		t.Errorf("a 48 h query: want invalid_argument naming max_query_length, got %v", err)
	}
}
