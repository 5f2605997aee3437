package cluster

import (
	"testing"
	"time"

	"kiln.dev/tests/lib/kilntest"
)

// TestClusterS3 runs the essential cases of TestCluster with the blocks in
// a real S3 server (versitygw) instead of a shared directory: pushes
// through both distributors are exact, an ingester killed with SIGKILL
// under load comes back from its WAL, its blocks reach the bucket, the
// compactor merges them there, and the totals stay exact throughout.
func TestClusterS3(t *testing.T) {
	_, testdata := kilntest.RequireEnv(t)
	s3 := kilntest.StartS3(t)
	c := &cluster{
		nats:       kilntest.StartNATS(t),
		s3:         s3,
		bucket:     s3.Dir(""),
		tenant:     kilntest.NewTenant("cluster-s3"),
		rpcTimeout: 10 * time.Second,
		hbTimeout:  heartbeatTimeout,
	}
	c.prof = kilntest.LoadProfile(t, testdata, profileFile)
	c.start(t, ingesterArgs...)

	c.mustPush(t, "a", 40)
	c.expectExact(t, "after 40 pushes through 2 distributors", "a", 40)

	l := c.startLoad("b", pace)
	l.waitAcked(t, 40)
	c.ing[1].Kill(t)
	l.waitAcked(t, 40)
	acked := l.pause(t)
	c.expectExact(t, "ingester-2 killed, load paused", "b", acked)
	c.ing[1] = c.ing[1].Restart(t, kilntest.KeepPorts())
	checkReplay(t, c.ing[1])
	c.waitRing(t, "ingester-2 restarted", allIngesters)
	c.expectExact(t, "ingester-2 back", "b", acked)

	deadline := time.Now().Add(90 * time.Second)
	for {
		c.checkExact(t, "blocks flushed to S3 and compacted", "a", 40)
		c.checkExact(t, "blocks flushed to S3 and compacted", "b", acked)
		if t.Failed() {
			t.FailNow()
		}
		bs := c.blocks(t)
		compacted := 0
		for _, b := range bs {
			if b.level() > 1 {
				compacted++
			}
		}
		if compacted > 0 {
			t.Logf("blocks in the bucket: %s", describeBlocks(bs))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no compacted block in S3 within 90 s: %s", describeBlocks(bs))
		}
		c.requireAlive(t)
		time.Sleep(500 * time.Millisecond)
	}
	c.expectExact(t, "blocks compacted in S3", "a", 40)
	c.expectExact(t, "blocks compacted in S3", "b", acked)
	if got, ok, _ := c.querier.Metric(`kiln_objstore_requests_total{backend="s3",operation="get",result="ok"}`); !ok || got == "0" {
		t.Errorf("the querier's /metrics shows no S3 gets: %q", got)
	}
}
