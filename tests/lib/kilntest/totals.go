package kilntest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"connectrpc.com/connect"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
)

// ServiceTotals returns service_name=service's SelectMergeStacktraces total
// for each profile type in [start, end] (ms), each call bounded by timeout;
// max_nodes is large enough that no test tree is truncated.
func ServiceTotals(t testing.TB, q querierv1connect.QuerierServiceClient, typeIDs []string, service string,
	start, end int64, timeout time.Duration) ([]int64, error) {
	t.Helper()
	maxNodes := int64(1 << 16)
	out := make([]int64, len(typeIDs))
	for i, id := range typeIDs {
		ctx, cancel := context.WithTimeout(t.Context(), timeout)
		resp, err := q.SelectMergeStacktraces(ctx, connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
			ProfileTypeID: id,
			LabelSelector: `{service_name="` + service + `"}`,
			Start:         start,
			End:           end,
			MaxNodes:      &maxNodes,
		}))
		cancel()
		if err != nil {
			return nil, fmt.Errorf("SelectMergeStacktraces(%s, %s): %w", id, service, err)
		}
		out[i] = resp.Msg.GetFlamegraph().GetTotal()
	}
	return out, nil
}
