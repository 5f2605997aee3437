package cluster

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"kiln.dev/tests/lib/kilntest"
)

var allIngesters = []string{"ingester-1", "ingester-2", "ingester-3"}

// pace is the gap between two pushes of one pusher (two pushers, one per
// distributor).
const pace = 20 * time.Millisecond

func TestCluster(t *testing.T) {
	t0 := time.Now()
	c := startCluster(t)
	// The phases are not subtests: the processes they restart must live
	// on until the end of the whole test.
	phase := func(name string, f func(t *testing.T)) {
		p0 := time.Now()
		t.Logf("=== phase %s", name)
		f(t)
		if t.Failed() {
			t.Fatalf("phase %s failed after %v", name, time.Since(p0).Round(time.Millisecond))
		}
		t.Logf("=== phase %s passed in %v", name, time.Since(p0).Round(time.Millisecond))
	}
	acked := map[string]int64{}
	services := []string{"a", "b", "c", "e"}
	exactAll := func(t *testing.T, when string) {
		t.Helper()
		for _, svc := range services {
			if n, ok := acked[svc]; ok {
				c.expectExact(t, when, svc, n)
			}
		}
	}
	// quietAll is exactAll logging only what does not hold.
	quietAll := func(t *testing.T, when string) {
		t.Helper()
		for _, svc := range services {
			if n, ok := acked[svc]; ok {
				c.checkExact(t, when, svc, n)
			}
		}
	}

	phase("a_both_distributors", func(t *testing.T) {
		c.mustPush(t, "a", 40)
		acked["a"] = 40
		exactAll(t, "after 40 pushes through 2 distributors")
	})

	phase("b_kill9_ingester", func(t *testing.T) {
		ing := c.ing[1]
		l := c.startLoad("b", pace)
		l.waitAcked(t, 40)
		ing.Kill(t)
		l.waitAcked(t, 40)
		c.expectBetween(t, "ingester-2 down, under load", l)
		acked["b"] = l.pause(t)
		exactAll(t, "ingester-2 down, load paused")

		l.resume(pace)
		c.waitRing(t, "ingester-2 evicted", []string{"ingester-1", "ingester-3"})
		l.waitAcked(t, 40)
		c.expectBetween(t, "ingester-2 evicted, under load", l)

		c.ing[1] = ing.Restart(t, kilntest.KeepPorts())
		checkReplay(t, c.ing[1])
		c.waitRing(t, "ingester-2 restarted", allIngesters)
		l.waitAcked(t, 40)
		acked["b"] = l.pause(t)
		exactAll(t, "ingester-2 back")
	})

	phase("c_nats_restart", func(t *testing.T) {
		l := c.startLoad("c", pace)
		l.waitAcked(t, 40)
		c.nats.Stop(t)
		c.waitNATSConnected(t, "0")
		down := time.Now()
		l.waitAcked(t, 40)
		c.expectBetween(t, "NATS down, under load", l)
		// Longer than the heartbeat timeout: nobody may be evicted while
		// nobody can heartbeat.
		for time.Since(down) < heartbeatTimeout+2*heartbeat {
			time.Sleep(100 * time.Millisecond)
		}
		c.checkRingKept(t)
		c.expectBetween(t, "NATS down for longer than the heartbeat timeout", l)
		acked["c"], _ = l.counts()
		c.nats.Restart(t)
		c.waitNATSConnected(t, "1")
		c.waitRing(t, "NATS back", allIngesters)
		l.waitAcked(t, 40)
		acked["c"] = l.pause(t)
		exactAll(t, "NATS back")
	})

	phase("d_two_ingesters_down", func(t *testing.T) {
		down := []*kilntest.Server{c.ing[0], c.ing[2]}
		for _, s := range down {
			s.Kill(t)
		}
		id := kilntest.NewUUID()
		c.expectUnavailable(t, "2 of 3 ingesters killed", id)
		c.waitRing(t, "ingester-1 and -3 evicted", []string{"ingester-2"})
		c.expectUnavailable(t, "2 of 3 ingesters evicted", id)

		c.ing[0] = down[0].Restart(t, kilntest.KeepPorts())
		c.ing[2] = down[1].Restart(t, kilntest.KeepPorts())
		c.waitRing(t, "ingester-1 and -3 restarted", allIngesters)
		// The client retries the push that was not acknowledged, with the
		// same profile id: however many replicas kept the first attempt,
		// it counts once.
		c.pushRetry(t, 1, "d", id)
		c.waitReachable(t)
		exactAll(t, "2 ingesters back, push retried")
		// The 4 failed attempts may each have been stored by the live
		// ingester (a write short of its quorum is not undone). The retry
		// shares their profile id: queriers count it once across replicas
		// and blocks, and an ingester never stores a push id, series and
		// time twice, so it counts once.
		n, totals, err := c.pushesStored(t, "d")
		switch {
		case err != nil:
			t.Errorf("retried push: %v", err)
		case n != 1:
			t.Errorf("retried push: totals %v = %d pushes, want 1", totals, n)
		default:
			t.Logf("retried push: counted once (totals %v)", totals)
		}
	})

	phase("e_blocks", func(t *testing.T) {
		// Every ingester holds the retried push of phase d in its head:
		// wait until each has cut its head into a block, then for the
		// compactor to merge the replicas' blocks, querying all along.
		var flushed []<-chan string
		for _, s := range c.ing {
			flushed = append(flushed, s.Log.Watch("flushed tenant="+c.tenant))
		}
		c.mustPush(t, "e", 2*pods)
		acked["e"] = 2 * pods
		deadline := time.Now().Add(60 * time.Second)
		for i, ch := range flushed {
			select {
			case line := <-ch:
				t.Logf("%s: %s", c.ing[i].Name, line)
			case <-time.After(time.Until(deadline)):
				t.Fatalf("%s flushed no block of %s in 60 s", c.ing[i].Name, c.tenant)
			}
		}
		rounds := 0
		for {
			rounds++
			quietAll(t, "blocks being flushed and compacted")
			if t.Failed() {
				t.FailNow()
			}
			bs := c.blocks(t)
			compacted, level1 := 0, 0
			for _, b := range bs {
				if b.level() > 1 {
					compacted++
				} else {
					level1++
				}
			}
			if compacted > 0 && level1 <= 1 {
				t.Logf("blocks after %d rounds of exact queries: %s", rounds, describeBlocks(bs))
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no compaction within 60 s: blocks %s", describeBlocks(bs))
			}
			c.requireAlive(t)
			time.Sleep(500 * time.Millisecond)
		}
		exactAll(t, "blocks compacted")
	})
	t.Logf("TestCluster: acknowledged pushes %v, %v in all", acked, time.Since(t0).Round(time.Millisecond))
}

var replayRe = regexp.MustCompile(`replayed WAL \S+: (\d+) profiles`)

// checkReplay requires the restarted ingester to have logged its WAL
// replay, with profiles in it (it was killed under load, its head not yet
// cut).
func checkReplay(t *testing.T, s *kilntest.Server) {
	t.Helper()
	lines := s.Log.Grep("replayed WAL")
	if len(lines) == 0 {
		t.Fatalf("%s logged no WAL replay", s.Name)
	}
	m := replayRe.FindStringSubmatch(lines[0])
	if m == nil {
		t.Fatalf("%s: cannot read the replay line %q", s.Name, lines[0])
	}
	if n, _ := strconv.Atoi(m[1]); n == 0 {
		t.Errorf("%s replayed no profile: %s", s.Name, lines[0])
	}
	t.Logf("%s: %s", s.Name, lines[0])
}

// checkRingKept requires every process to still route over the 3
// ingesters (none evicted while NATS is down).
func (c *cluster) checkRingKept(t *testing.T) {
	t.Helper()
	for _, s := range c.running() {
		r, err := s.Ring()
		if err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		if len(r.Members) != 3 {
			t.Errorf("%s: ring %s while NATS is down, want the 3 ingesters kept", s.Name, r)
			continue
		}
		t.Logf("%s: ring kept while NATS is down: %s", s.Name, r)
	}
}

// expectUnavailable checks, with ingester-1 and -3 down, that a push fails
// with unavailable and that a query fails with unavailable, naming the
// ingesters when they are still in the ring.
func (c *cluster) expectUnavailable(t *testing.T, when, id string) {
	t.Helper()
	for d := range c.dist {
		ctx, cancel := context.WithTimeout(t.Context(), requestTimeout)
		err := c.pushOne(ctx, d, "d", 0, id)
		cancel()
		if code := kilntest.ConnectCode(err); err == nil || code != connect.CodeUnavailable {
			c.dist[d].CheckAfterError(t, err)
			t.Errorf("%s: push through %s: %v (code %v), want unavailable", when, c.dist[d].Name, err, code)
		} else {
			t.Logf("%s: push through %s: %v", when, c.dist[d].Name, err)
		}
	}
	for _, svc := range []string{"a", "d"} {
		_, err := c.totals(t, svc)
		code := kilntest.ConnectCode(err)
		if err == nil || code != connect.CodeUnavailable {
			c.querier.CheckAfterError(t, err)
			t.Errorf("%s: query of %s: %v (code %v), want unavailable", when, svc, err, code)
			continue
		}
		// In the ring, the dead are named; evicted, they are missing.
		want := []string{"ingester-1", "ingester-3"}
		if r, _ := c.querier.Ring(); r != nil && len(r.Members) < 3 {
			want = []string{"the ring has 1 ingesters, 2 short of the replication factor"}
		}
		for _, name := range want {
			if !strings.Contains(err.Error(), name) {
				t.Errorf("%s: query of %s: %v does not name %q", when, svc, err, name)
			}
		}
		t.Logf("%s: query of %s: %v", when, svc, err)
	}
}

// pushRetry pushes one profile with the given id through distributor d,
// retrying on unavailable for a bounded time as an SDK does: a distributor
// reconnects to an ingester restarted at the same address within its
// reconnect backoff (at most 2 s), even when the ring already shows it.
func (c *cluster) pushRetry(t *testing.T, d int, service, id string) {
	t.Helper()
	t0 := time.Now()
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(t.Context(), requestTimeout)
		err := c.pushOne(ctx, d, service, 0, id)
		cancel()
		if err == nil {
			t.Logf("push of %s (id %s) through %s acknowledged at attempt %d after %v", service, id,
				c.dist[d].Name, attempt, time.Since(t0).Round(time.Millisecond))
			return
		}
		c.dist[d].CheckAfterError(t, err)
		if kilntest.ConnectCode(err) != connect.CodeUnavailable || time.Since(t0) > 30*time.Second {
			t.Fatalf("push of %s through %s, attempt %d after %v: %v", service, c.dist[d].Name, attempt,
				time.Since(t0).Round(time.Millisecond), err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitQueryable waits until a query of service succeeds: the querier, like
// a distributor, reaches ingesters restarted at their old address within
// its reconnect backoff (at most 2 s), and until then counts them as down.
func (c *cluster) waitQueryable(t *testing.T, service string) {
	t.Helper()
	t0 := time.Now()
	for attempt := 1; ; attempt++ {
		_, err := c.totals(t, service)
		if err == nil {
			t.Logf("the querier answers again at attempt %d after %v", attempt, time.Since(t0).Round(time.Millisecond))
			return
		}
		c.querier.CheckAfterError(t, err)
		if kilntest.ConnectCode(err) != connect.CodeUnavailable || time.Since(t0) > 30*time.Second {
			t.Fatalf("query of %s, attempt %d after %v: %v", service, attempt, time.Since(t0).Round(time.Millisecond), err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitReachable waits until, after ingesters restarted, every distributor
// acknowledges a push (of the service "probe", never counted) that every
// ingester received, and the querier answers. A push is acknowledged at
// its quorum: an ingester the distributor still backs off from (up to 2 s
// after it came back) may miss it.
func (c *cluster) waitReachable(t *testing.T) {
	t.Helper()
	for d := range c.dist {
		t0 := time.Now()
		for attempt := 1; ; attempt++ {
			before := make([]int64, len(c.ing))
			for i, s := range c.ing {
				before[i] = pushesServed(t, s)
			}
			c.pushRetry(t, d, "probe", kilntest.NewUUID())
			if c.allServedSince(t, before, 2*time.Second) {
				t.Logf("every ingester took a push through %s at attempt %d after %v", c.dist[d].Name,
					attempt, time.Since(t0).Round(time.Millisecond))
				break
			}
			if time.Since(t0) > 30*time.Second {
				t.Fatalf("pushes through %s did not reach every ingester in 30 s", c.dist[d].Name)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
	c.waitQueryable(t, "probe")
}

// allServedSince waits (up to within) until every ingester served more
// ingester.v1 pushes than before.
func (c *cluster) allServedSince(t *testing.T, before []int64, within time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		all := true
		for i, s := range c.ing {
			all = all && pushesServed(t, s) > before[i]
		}
		if all {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
