package durability

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
)

const (
	kill9Pushers   = 4
	kill9PerPusher = 150
	kill9LoadLimit = 90 * time.Second // the whole load, kill included
)

// pusherResult is what one pusher knows when the load ends.
type pusherResult struct {
	service   string
	prof      *profileCase
	transport string
	acked     int64 // pushes answered OK: must survive
	inFlight  int64 // 1 when its last push failed: it may or may not be stored
	lastErr   error
	// errBeforeKill is a push that failed while the server was up (it is
	// reported, and counted as in flight).
	errBeforeKill error
}

// TestKill9UnderLoad SIGKILLs kiln while 4 pushers push real profiles
// concurrently (unique RawSample IDs, one service_name each) and checks
// after restarts that every acknowledged push is served exactly once: per
// service the stored count n (total / per-push total, the same for every
// sample type) is in [acked, acked + in flight at the kill].
//
// "wal-only" keeps everything in the WAL (1h heads); "flushing" cuts heads
// every 2 s so blocks are written during the load, and the kill comes after
// at least one flush: then blocks and WAL together must not double count.
// After the first restart the test SIGKILLs again, then SIGTERMs (flush on
// shutdown), and the count must stay the same each time.
func TestKill9UnderLoad(t *testing.T) {
	_, root := requireEnv(t)
	profs := []*profileCase{
		loadProfile(t, root, cpuFile),
		loadProfile(t, root, pgoFile),
		loadProfile(t, root, blockFile),
	}
	variants := []struct {
		name      string
		args      []string
		pace      time.Duration // sleep between one pusher's pushes (plus jitter)
		needFlush bool
	}{
		{name: "wal-only", pace: 0},
		{name: "flushing", args: []string{"-ingester.max-block-duration=2s", "-ingester.flush-check-period=1s"},
			pace: 30 * time.Millisecond, needFlush: true},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			kill9Run(t, profs, v.args, v.pace, v.needFlush)
		})
	}
}

func kill9Run(t *testing.T, profs []*profileCase, args []string, pace time.Duration, needFlush bool) {
	storage := t.TempDir()
	bucket := filepath.Join(storage, "bucket")
	tenant := "dur-kill9-" + randomHex(4)
	k := startKiln(t, storage, args...)

	total := kill9Pushers * kill9PerPusher
	killAt := int64(total * (30 + rand.IntN(31)) / 100) // 30%..60% of the pushes
	t.Logf("tenant %s: %d pushers x %d pushes; SIGKILL once %d are acknowledged%s", tenant, kill9Pushers,
		kill9PerPusher, killAt, map[bool]string{true: " and a block was flushed", false: ""}[needFlush])

	results := make([]*pusherResult, kill9Pushers)
	var acked atomic.Int64
	var killed atomic.Bool
	var wg sync.WaitGroup
	for i := range kill9Pushers {
		c := newClients(t, k, tenant)
		r := &pusherResult{service: fmt.Sprintf("%s-p%d", tenant, i), prof: profs[i%len(profs)]}
		var client pushv1connect.PusherServiceClient
		if i%2 == 0 {
			client, r.transport = c.push, "connect"
		} else {
			client, r.transport = c.pushGRPC, "grpc"
		}
		results[i] = r
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range kill9PerPusher {
				ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
				err := pushProfile(ctx, client, r.prof, r.service, newUUID())
				cancel()
				if err != nil {
					// The push may have been made durable before the
					// connection broke: it is in flight, not lost.
					r.inFlight, r.lastErr = 1, err
					if !killed.Load() {
						r.errBeforeKill = err
					}
					return
				}
				r.acked++
				acked.Add(1)
				if pace > 0 {
					time.Sleep(pace + rand.N(pace))
				}
			}
		}()
	}
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()

	// The kill: once killAt pushes are acknowledged (and, when asked, a block
	// has been flushed), while the pushers are still pushing.
	deadline := time.Now().Add(kill9LoadLimit)
	t0 := time.Now()
	for {
		flushed := len(k.log.grep("flushed", "tenant="+tenant)) > 0
		if acked.Load() >= killAt && (flushed || !needFlush) {
			break
		}
		select {
		case <-allDone:
			t.Fatalf("the load ended (%d acknowledged, flushed=%v) before the kill point; pusher errors: %v",
				acked.Load(), flushed, pusherErrors(results))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("kill point not reached in %v (%d acknowledged, flushed=%v)", kill9LoadLimit, acked.Load(), flushed)
		}
		k.requireAlive(t)
		time.Sleep(2 * time.Millisecond)
	}
	killed.Store(true)
	atKill := acked.Load()
	k.kill9(t)
	t.Logf("SIGKILL after %v with %d pushes acknowledged", time.Since(t0).Round(time.Millisecond), atKill)
	select {
	case <-allDone:
	case <-time.After(2 * requestTimeout):
		t.Fatalf("pushers still running %v after the kill", 2*requestTimeout)
	}
	var sumAcked, sumInFlight int64
	for _, r := range results {
		sumAcked += r.acked
		sumInFlight += r.inFlight
		t.Logf("pusher %s (%s, %s): acknowledged %d, in flight at the kill %d (last error: %v)",
			r.service, r.transport, r.prof.rel, r.acked, r.inFlight, r.lastErr)
		if r.errBeforeKill != nil {
			t.Errorf("pusher %s: a push failed while the server was up (before the SIGKILL): %v (code %v)",
				r.service, r.errBeforeKill, connectCode(r.errBeforeKill))
		}
		if r.acked == kill9PerPusher {
			t.Logf("pusher %s finished all its pushes before the kill", r.service)
		}
	}
	t.Logf("after the kill: %d acknowledged, <= %d in flight; WAL segments %v; blocks %s", sumAcked, sumInFlight,
		walSegments(t, storage), describeBlocks(listBlocks(t, bucket, tenant)))

	// Restart 1: replay (and blocks, when flushing). Each service holds
	// between its acknowledged and acknowledged+in-flight pushes.
	k = startKiln(t, storage, args...)
	c := newClients(t, k, tenant)
	stored := make([]int64, len(results))
	for i, r := range results {
		n, totals, err := countPushes(t, k, c, r.prof, r.service)
		if err != nil {
			t.Errorf("after restart: %s: %v", r.service, err)
			stored[i] = -1
			continue
		}
		stored[i] = n
		t.Logf("after restart (%s): %s: %d pushes stored (totals %v); acknowledged %d, in flight %d",
			k.name, r.service, n, totals, r.acked, r.inFlight)
		if n < r.acked {
			t.Errorf("after SIGKILL and restart: %s/%s (%s): %d pushes served, but %d were acknowledged: %d acknowledged pushes LOST (totals %v, per push %v)",
				tenant, r.service, r.prof.rel, n, r.acked, r.acked-n, totals, r.prof.perPush)
		}
		if n > r.acked+r.inFlight {
			t.Errorf("after SIGKILL and restart: %s/%s (%s): %d pushes served, more than %d acknowledged + %d in flight: DOUBLE COUNTED (totals %v, per push %v)",
				tenant, r.service, r.prof.rel, n, r.acked, r.inFlight, totals, r.prof.perPush)
		}
	}
	if t.Failed() {
		return
	}
	same := func(when string) {
		t.Helper()
		for i, r := range results {
			expectPushes(t, k, c, r.prof, r.service, stored[i], when)
		}
	}
	if needFlush {
		// The replayed heads are cut after 2 s: wait for that flush and
		// count again, now from blocks (and what the WAL still holds).
		before := len(k.log.grep("flushed", "tenant="+tenant))
		if !waitFor(15*time.Second, 100*time.Millisecond, func() bool {
			return len(k.log.grep("flushed", "tenant="+tenant)) > before
		}) {
			t.Errorf("%s: no flush of the replayed head within 15 s", k.name)
		}
		same("after the replayed head was flushed")
	}
	// Restart 2: SIGKILL again, with whatever the first restart wrote.
	k.kill9(t)
	t.Logf("before restart 2: WAL segments %v; blocks %s", walSegments(t, storage), describeBlocks(listBlocks(t, bucket, tenant)))
	k = startKiln(t, storage, args...)
	c = newClients(t, k, tenant)
	same("after a second SIGKILL and restart")
	// Restart 3: SIGTERM writes the heads as blocks.
	k.terminate(t)
	t.Logf("before restart 3: WAL segments %v; blocks %s", walSegments(t, storage), describeBlocks(listBlocks(t, bucket, tenant)))
	k = startKiln(t, storage, args...)
	c = newClients(t, k, tenant)
	same("after SIGTERM (flush on shutdown) and restart")
	k.terminate(t)
}

func pusherErrors(rs []*pusherResult) []string {
	var out []string
	for _, r := range rs {
		if r.lastErr != nil {
			out = append(out, r.service+": "+r.lastErr.Error())
		}
	}
	return out
}
