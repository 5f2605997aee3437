package cluster

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"kiln.dev/tests/lib/kilntest"
)

// TestClusterSeriesLimit runs 3 ingesters (RF 3) and a distributor with
// -ingester.max-global-series-per-tenant=4: each ingester applies
// 4 / 3 ingesters * RF 3 = 4. Once the tenant holds 4 series, a push of a
// new one is refused by every replica, and the distributor answers
// failed_precondition (HTTP 400 on Connect) naming the limit, not a retryable
// unavailable; a series already held is still accepted.
func TestClusterSeriesLimit(t *testing.T) {
	_, testdata := kilntest.RequireEnv(t)
	c := &cluster{
		nats:       kilntest.StartNATS(t),
		bucket:     t.TempDir(),
		tenant:     kilntest.NewTenant("cluster-series"),
		rpcTimeout: 10 * time.Second,
		hbTimeout:  heartbeatTimeout,
	}
	c.prof = kilntest.LoadProfile(t, testdata, profileFile)
	limitArg := "-ingester.max-global-series-per-tenant=4"
	for i := 1; i <= 3; i++ {
		c.ing = append(c.ing, c.startKiln(t, "ingester", fmt.Sprintf("ingester-%d", i), limitArg))
	}
	d := c.startKiln(t, "distributor", "distributor-1")
	c.dist = append(c.dist, d)
	c.push = append(c.push, d.Clients(t, c.tenant))
	waitRingOf(t, append([]*kilntest.Server{d}, c.ing...), allIngesters)

	push := func(service string) error {
		ctx, cancel := context.WithTimeout(t.Context(), requestTimeout)
		defer cancel()
		return c.pushOne(ctx, 0, service, 0, kilntest.NewUUID()) // 2 series: one per sample type
	}
	for _, svc := range []string{"a", "b"} {
		if err := push(svc); err != nil {
			t.Fatalf("push of %s (within the limit): %v", svc, err)
		}
	}
	err := push("c")
	if connect.CodeOf(err) != connect.CodeFailedPrecondition || !strings.Contains(err.Error(), "max_global_series_per_tenant") {
		t.Errorf("a new series past the limit: want failed_precondition naming max_global_series_per_tenant, got %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "unavailable") {
		t.Errorf("the refusal reads as retryable: %v", err)
	}
	t.Logf("refused: %v", err)
	if err := push("a"); err != nil {
		t.Errorf("a series already held: %v", err)
	}
	for _, ing := range c.ing {
		got, ok, err := ing.Metric(`kiln_ingester_series_limit{tenant="` + c.tenant + `"}`)
		if err != nil || !ok || got != "4" {
			t.Errorf("%s: series limit %q (present %v, %v), want 4", ing.Name, got, ok, err)
		}
		got, ok, err = ing.Metric(`kiln_ingester_memory_series{tenant="` + c.tenant + `"}`)
		if err != nil || !ok || got != "4" {
			t.Errorf("%s: memory series %q (present %v, %v), want 4", ing.Name, got, ok, err)
		}
	}
}

// waitRingOf waits until every one of servers routes over exactly want,
// ACTIVE with fresh heartbeats.
func waitRingOf(t *testing.T, servers []*kilntest.Server, want []string) {
	t.Helper()
	deadline := time.Now().Add(ringWait)
	for {
		bad := ""
		for _, s := range servers {
			s.RequireAlive(t)
			r, err := s.Ring()
			if err != nil {
				bad = fmt.Sprintf("%s: %v", s.Name, err)
				break
			}
			active := r.Active(heartbeatTimeout)
			sort.Strings(active)
			if !slices.Equal(active, want) {
				bad = fmt.Sprintf("%s: ring %s", s.Name, r)
				break
			}
		}
		if bad == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("rings not %v after %v: %s", want, ringWait, bad)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
