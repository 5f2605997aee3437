package durability

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"

	"kiln.dev/tests/lib/kilntest"
)

const (
	kill9Pushers   = 4
	kill9PerPusher = 150
	kill9LoadLimit = 90 * time.Second // the whole load, kill included
)

// pusherResult is what one pusher knows when the load ends.
type pusherResult struct {
	tenant    string
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
// The pushers are split over two tenants. "wal-only" keeps everything in
// the WAL (1h heads); "flushing" cuts heads every 2 s so blocks are written
// during the load, and the kill comes after at least one flush: then blocks
// and WAL together must not double count; "kill-at-flush" kills the moment
// the server logs a flushed block (one tenant's block is written, the other
// tenant's may not be, and the WAL before the cut is not yet removed).
// After the first restart the test SIGKILLs again, then SIGTERMs (flush on
// shutdown), and the count must stay the same each time.
func TestKill9UnderLoad(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	profs := []*profileCase{
		loadProfile(t, root, cpuFile),
		loadProfile(t, root, pgoFile),
		loadProfile(t, root, blockFile),
	}
	variants := []struct {
		name string
		args []string
		pace time.Duration // sleep between one pusher's pushes (plus jitter)
		kill killMode
	}{
		{name: "wal-only", kill: killAtCount},
		{name: "flushing", args: flushArgs, pace: 30 * time.Millisecond, kill: killAfterFlush},
		{name: "kill-at-flush", args: flushArgs, pace: 30 * time.Millisecond, kill: killAtFlush},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			kill9Run(t, profs, v.args, v.pace, v.kill)
		})
	}
}

var flushArgs = []string{"-ingester.max-block-duration=2s", "-ingester.flush-check-period=1s"}

// killMode says when the SIGKILL comes, always once killAt pushes are
// acknowledged.
type killMode int

const (
	killAtCount    killMode = iota // at once
	killAfterFlush                 // once a block has been flushed
	killAtFlush                    // the moment the server logs a flushed block
)

func kill9Run(t *testing.T, profs []*profileCase, args []string, pace time.Duration, mode killMode) {
	storage := newStorage(t)
	id := kilntest.RandomHex(4)
	// Two tenants, two pushers each: a cut flushes one block per tenant,
	// and replay skips per tenant.
	tenants := []string{"dur-kill9-a-" + id, "dur-kill9-b-" + id}
	k := startKiln(t, storage, args...)
	flushes := k.Log.Watch("flushed tenant=dur-kill9-")

	total := kill9Pushers * kill9PerPusher
	killAt := int64(total * (30 + rand.IntN(31)) / 100) // 30%..60% of the pushes
	t.Logf("tenants %v: %d pushers x %d pushes; SIGKILL once %d are acknowledged%s", tenants, kill9Pushers,
		kill9PerPusher, killAt, map[killMode]string{killAtCount: "", killAfterFlush: " and a block was flushed",
			killAtFlush: ", at the next flushed block"}[mode])

	results := make([]*pusherResult, kill9Pushers)
	var acked atomic.Int64
	var killed atomic.Bool
	var wg sync.WaitGroup
	for i := range kill9Pushers {
		tenant := tenants[i*len(tenants)/kill9Pushers]
		c := k.Clients(t, tenant)
		r := &pusherResult{tenant: tenant, service: fmt.Sprintf("svc-p%d", i), prof: profs[i%len(profs)]}
		var client pushv1connect.PusherServiceClient
		if i%2 == 0 {
			client, r.transport = c.Push, "connect"
		} else {
			client, r.transport = c.PushGRPC, "grpc"
		}
		results[i] = r
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range kill9PerPusher {
				ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
				err := pushProfile(ctx, client, r.prof, r.service, kilntest.NewUUID())
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

	// The kill: once killAt pushes are acknowledged (and, as the mode says,
	// after or at a block flush), while the pushers are still pushing.
	deadline := time.Now().Add(kill9LoadLimit)
	t0 := time.Now()
	flushed := 0
	var atFlush string
wait:
	for {
		reached := acked.Load() >= killAt
		select {
		case line := <-flushes:
			flushed++
			if reached && mode == killAtFlush {
				atFlush = line
				break wait
			}
			continue
		case <-allDone:
			t.Fatalf("the load ended (%d acknowledged, %d blocks flushed) before the kill point; pusher errors: %v",
				acked.Load(), flushed, pusherErrors(results))
		case <-time.After(time.Millisecond):
		}
		if reached && (mode == killAtCount || (mode == killAfterFlush && flushed > 0)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kill point not reached in %v (%d acknowledged, %d blocks flushed)", kill9LoadLimit, acked.Load(), flushed)
		}
		k.RequireAlive(t)
	}
	killed.Store(true)
	atKill := acked.Load()
	k.Kill(t)
	t.Logf("SIGKILL after %v with %d pushes acknowledged, %d blocks flushed before", time.Since(t0).Round(time.Millisecond),
		atKill, flushed)
	if atFlush != "" {
		t.Logf("SIGKILL right after: %s", atFlush)
	}
	select {
	case <-allDone:
	case <-time.After(2 * requestTimeout):
		t.Fatalf("pushers still running %v after the kill", 2*requestTimeout)
	}
	var sumAcked, sumInFlight int64
	for _, r := range results {
		sumAcked += r.acked
		sumInFlight += r.inFlight
		t.Logf("pusher %s/%s (%s, %s): acknowledged %d, in flight at the kill %d (last error: %v)",
			r.tenant, r.service, r.transport, r.prof.rel, r.acked, r.inFlight, r.lastErr)
		if r.errBeforeKill != nil {
			t.Errorf("pusher %s: a push failed while the server was up (before the SIGKILL): %v (code %v)",
				r.service, r.errBeforeKill, kilntest.ConnectCode(r.errBeforeKill))
		}
		if r.acked == kill9PerPusher {
			t.Logf("pusher %s finished all its pushes before the kill", r.service)
		}
	}
	t.Logf("after the kill: %d acknowledged, <= %d in flight; %s", sumAcked, sumInFlight, storageState(t, storage, tenants))

	// Restart 1: replay (and blocks, when flushing). Each service holds
	// between its acknowledged and acknowledged+in-flight pushes.
	k = startKiln(t, storage, args...)
	stored := make([]int64, len(results))
	for i, r := range results {
		n, totals, err := countPushes(t, k, k.Clients(t, r.tenant), r.prof, r.service)
		if err != nil {
			t.Errorf("after restart: %s/%s: %v", r.tenant, r.service, err)
			stored[i] = -1
			continue
		}
		stored[i] = n
		t.Logf("after restart (%s): %s/%s: %d pushes stored (totals %v); acknowledged %d, in flight %d",
			k.Name, r.tenant, r.service, n, totals, r.acked, r.inFlight)
		if n < r.acked {
			t.Errorf("after SIGKILL and restart: %s/%s (%s): %d pushes served, but %d were acknowledged: %d acknowledged pushes LOST (totals %v, per push %v)",
				r.tenant, r.service, r.prof.rel, n, r.acked, r.acked-n, totals, r.prof.perPush)
		}
		if n > r.acked+r.inFlight {
			t.Errorf("after SIGKILL and restart: %s/%s (%s): %d pushes served, more than %d acknowledged + %d in flight: DOUBLE COUNTED (totals %v, per push %v)",
				r.tenant, r.service, r.prof.rel, n, r.acked, r.inFlight, totals, r.prof.perPush)
		}
	}
	if t.Failed() {
		return
	}
	same := func(when string) {
		t.Helper()
		for i, r := range results {
			expectPushes(t, k, k.Clients(t, r.tenant), r.prof, r.service, stored[i], when)
		}
	}
	if mode != killAtCount {
		// The replayed heads are cut after 2 s: wait for that flush and
		// count again, now from blocks (and what the WAL still holds).
		if !waitFor(15*time.Second, 100*time.Millisecond, func() bool {
			return len(k.Log.Grep("flushed tenant=dur-kill9-")) > 0
		}) {
			t.Errorf("%s: no flush of the replayed head within 15 s", k.Name)
		}
		same("after the replayed head was flushed")
	}
	// Restart 2: SIGKILL again, with whatever the first restart wrote.
	k.Kill(t)
	t.Logf("before restart 2: %s", storageState(t, storage, tenants))
	k = startKiln(t, storage, args...)
	same("after a second SIGKILL and restart")
	// Restart 3: SIGTERM writes the heads as blocks.
	k.Terminate(t)
	t.Logf("before restart 3: %s", storageState(t, storage, tenants))
	k = startKiln(t, storage, args...)
	same("after SIGTERM (flush on shutdown) and restart")
	k.Terminate(t)
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

// storageState describes the WAL segments and the tenants' blocks.
func storageState(t *testing.T, storage string, tenants []string) string {
	var segs []string
	for _, s := range walSegments(t, storage) {
		st, err := os.Stat(s)
		if err == nil {
			segs = append(segs, fmt.Sprintf("%s(%d bytes)", filepath.Base(s), st.Size()))
		}
	}
	out := fmt.Sprintf("WAL segments %v", segs)
	for _, tn := range tenants {
		out += "; " + tn + " blocks " + describeBlocks(listBlocks(t, bucketDir(storage), tn))
	}
	return out
}
