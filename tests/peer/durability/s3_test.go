package durability

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"kiln.dev/tests/lib/kilntest"
)

// s3Outage is how long the S3 server is down under load in TestS3/outage.
const s3Outage = 30 * time.Second

// TestS3 runs the essential durability cases with the blocks in a real S3
// server (versitygw, one per -storage.path, under a -storage.prefix):
// compaction, a SIGKILL while blocks are being flushed, retention, the
// S3 server stopped for 30 s under load, and a wrong secret or a missing
// bucket at start.
func TestS3(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	runOnS3(t, "compaction", TestCompactionKeepsTotals)
	runOnS3(t, "kill9-flushing", func(t *testing.T) {
		profs := []*profileCase{loadProfile(t, root, cpuFile), loadProfile(t, root, blockFile)}
		kill9Run(t, profs, flushArgs, 30*time.Millisecond, killAfterFlush)
	})
	runOnS3(t, "retention", func(t *testing.T) { retentionRun(t, loadProfile(t, root, cpuFile)) })
	runOnS3(t, "outage", func(t *testing.T) { outageRun(t, loadProfile(t, root, cpuFile)) })
	t.Run("start-errors", startErrorsRun)
}

// retentionRun: a block older than -storage.retention is deleted from the
// store by the compactor and no longer served.
func retentionRun(t *testing.T, prof *profileCase) {
	storage := newStorage(t)
	tenant := "dur-s3-ret-" + kilntest.RandomHex(4)
	k := startKiln(t, storage, idleCompactor)
	c := k.Clients(t, tenant)
	mustPush(t, k, c, prof, "ret", 3)
	k.Terminate(t) // flushes the head as a block
	if bs := listBlocks(t, bucketDir(storage), tenant); len(bs) != 1 {
		t.Fatalf("%d blocks after the flush at shutdown, want 1: %s", len(bs), describeBlocks(bs))
	}
	k = startKiln(t, storage, "-storage.retention=24h", "-compactor.compaction-interval=1s",
		"-ingester.flush-check-period=1s")
	c = k.Clients(t, tenant)
	if !waitFor(30*time.Second, 200*time.Millisecond, func() bool {
		return len(listBlocks(t, bucketDir(storage), tenant)) == 0
	}) {
		t.Fatalf("the years-old block outlived -storage.retention=24h by 30 s")
	}
	// The ingester drops the block at its next look at the store (1 s).
	waitFor(10*time.Second, 200*time.Millisecond, func() bool {
		n, _, err := countPushes(t, k, c, prof, "ret")
		return err == nil && n == 0
	})
	expectPushes(t, k, c, prof, "ret", 0, "after retention deleted the block")
	k.Terminate(t)
}

// pusher pushes prof every pace until stopped, counting acknowledgements
// and failures.
type pusher struct {
	acked, failed atomic.Int64
	stop          chan struct{}
	done          chan struct{}
}

func startPusher(t *testing.T, c *kilntest.Clients, prof *profileCase, service string, pace time.Duration) *pusher {
	p := &pusher{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for i := 0; i < 100000; i++ {
			select {
			case <-p.stop:
				return
			case <-time.After(pace):
			}
			ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
			err := pushProfile(ctx, c.Push, prof, service, kilntest.NewUUID())
			cancel()
			if err != nil {
				if p.failed.Add(1) <= 3 {
					t.Logf("push failed: %v", err)
				}
				continue
			}
			p.acked.Add(1)
		}
	}()
	return p
}

func (p *pusher) halt() int64 {
	close(p.stop)
	<-p.done
	return p.acked.Load()
}

// outageRun: the S3 server stops for 30 s under load. Pushes are still
// acknowledged (the WAL holds them), flushes fail and are retried, and
// once the server is back every acknowledged push is in complete blocks:
// a new kiln with an empty -storage.path (no WAL) over the same bucket
// serves them all.
func outageRun(t *testing.T, prof *profileCase) {
	storage := newStorage(t)
	s3 := s3Of[storage]
	tenant := "dur-s3-outage-" + kilntest.RandomHex(4)
	k := startKiln(t, storage, append([]string{idleCompactor}, flushArgs...)...)
	c := k.Clients(t, tenant)
	p := startPusher(t, c, prof, "outage", 50*time.Millisecond)
	time.Sleep(3 * time.Second)
	s3.Stop(t)
	t0 := time.Now()
	time.Sleep(s3Outage)
	during := p.acked.Load()
	// A round fails at the head's block write, or, when that block went up
	// just before the outage and the round waits to see it in the store
	// before cutting again, at the store's listing: either is a flush
	// round that failed and will be retried.
	failedFlushes := len(k.Log.Grep("flush of tenant "+tenant+" failed")) + len(k.Log.Grep("flush round: "))
	flushed := k.Log.Watch("flushed tenant=" + tenant)
	s3.Restart(t)
	t.Logf("S3 down for %v: %d pushes acknowledged so far, %d failed; %d failed flushes logged",
		time.Since(t0).Round(time.Millisecond), during, p.failed.Load(), failedFlushes)
	select {
	case line := <-flushed:
		t.Logf("first flush after the outage: %s", line)
	case <-time.After(30 * time.Second):
		t.Fatalf("no block flushed within 30 s of S3 coming back")
	}
	time.Sleep(2 * time.Second)
	acked := p.halt()
	if n := p.failed.Load(); n != 0 {
		t.Errorf("%d pushes failed while S3 was down: the WAL should have acknowledged them", n)
	}
	if failedFlushes == 0 {
		t.Errorf("no flush failed during the outage: the test did not test it")
	}
	expectPushes(t, k, c, prof, "outage", acked, "after the outage")
	k.Terminate(t) // the last head goes to S3 too

	fresh := t.TempDir()
	s3Mu.Lock()
	s3Of[fresh] = s3
	s3Mu.Unlock()
	k = startKiln(t, fresh, idleCompactor)
	expectPushes(t, k, k.Clients(t, tenant), prof, "outage", acked, "from the S3 blocks alone, no WAL")
	t.Logf("blocks: %s", describeBlocks(listBlocks(t, bucketDir(storage), tenant)))
	k.Terminate(t)
}

// startErrorsRun: kiln refuses to start on a wrong secret or a missing
// bucket, with one error line that names the flag to fix.
func startErrorsRun(t *testing.T) {
	bin := kilntest.RequireBin(t)
	s3 := kilntest.StartS3(t)
	cases := []struct {
		name, flag, want string
	}{
		{"wrong-secret", "-storage.s3.secret-access-key=wrong", "refused the credentials"},
		{"missing-bucket", "-storage.s3.bucket-name=no-such-bucket", "does not exist"},
	}
	for _, tc := range cases {
		args := append(s3.Args(""), "-storage.path="+t.TempDir(), "-server.http-listen-port=0",
			"-server.grpc-listen-port=0", "-server.otlp-grpc-listen-port=-1", tc.flag)
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = os.Environ()
		out, err := cmd.CombinedOutput()
		timedOut := ctx.Err() != nil
		cancel()
		var errLines []string
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, "level=error") {
				errLines = append(errLines, l)
			}
		}
		t.Logf("%s: %v; errors: %q", tc.name, err, errLines)
		if err == nil || timedOut {
			t.Errorf("%s: kiln did not exit with an error (err %v)", tc.name, err)
		}
		if len(errLines) != 1 || !strings.Contains(errLines[0], tc.want) {
			t.Errorf("%s: want one error line saying %q, got %q", tc.name, tc.want, errLines)
		}
	}
}
