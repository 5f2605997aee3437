package durability

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

const (
	compactionWindows = 3 // flush windows, one level-1 block per tenant each
	compactionWait    = 45 * time.Second
	// Readers pick up a compacted block at their next sync, every
	// -ingester.flush-check-period (default 5 s): keep querying that long
	// after the sources are deleted.
	afterDeleteWatch = 7 * time.Second
)

// compactionSeries is one service whose pushes the test counts.
type compactionSeries struct {
	tenant  string
	service string
	query   *profileCase // its timeNanos starts the query window
	pushes  int64
	note    string
	errored bool // one error per series is enough while polling
}

// TestCompactionKeepsTotals writes several level-1 blocks of a tenant in one
// 4h range (flush windows: two SIGTERM restarts and one 2 s head cut), then
// runs the compactor every second until it has merged them into a level-2
// block and deleted the sources, querying all along; the totals must be the
// same before, during and after compaction and after a restart.
//
// The test profiles are years old, so their 4h ranges are over and the
// compactor merges them at once. Tenant "main" has two services:
//
//	distinct   cpu.pb.gz re-encoded with its own time_nanos per push (1 s
//	           apart, all in one 4h range)
//	identical  cpu.pb.gz as is: every push has the same time and content
//	           but its own RawSample ID, so the push path counts each one
//
// tenant "other" has block.pb.gz with its own time per push (another 4h
// range: a second group). Besides, the test SIGKILLs the server right after
// the level-2 blocks are written, before their sources are deleted: readers
// must then skip the superseded sources.
func TestCompactionKeepsTotals(t *testing.T) {
	_, root := requireEnv(t)
	cpu := loadProfile(t, root, cpuFile)
	blk := loadProfile(t, root, blockFile)
	storage := t.TempDir()
	bucket := filepath.Join(storage, "bucket")
	id := randomHex(4)
	mainTenant, otherTenant := "dur-compact-main-"+id, "dur-compact-other-"+id

	// Distinct times: one hour into the file's 4h range, 1 s apart.
	const fourHours = int64(4 * time.Hour)
	base := cpu.timeNanos - cpu.timeNanos%fourHours + int64(time.Hour)
	distinctQuery := withTime(t, cpu, base)
	next := base
	nextDistinct := func() *profileCase {
		p := withTime(t, cpu, next)
		next += int64(time.Second)
		return p
	}

	blkBase := blk.timeNanos - blk.timeNanos%fourHours + int64(time.Hour)
	blkNext := blkBase

	distinct := &compactionSeries{tenant: mainTenant, service: "distinct", query: distinctQuery,
		note: "cpu.pb.gz with one time_nanos per push"}
	identical := &compactionSeries{tenant: mainTenant, service: "identical", query: cpu,
		note: "cpu.pb.gz as is: same time and content, distinct RawSample IDs"}
	other := &compactionSeries{tenant: otherTenant, service: "block", query: withTime(t, blk, blkBase),
		note: "block.pb.gz with one time_nanos per push, another tenant"}
	all := []*compactionSeries{distinct, identical, other}

	pushWindow := func(k *kiln) {
		t.Helper()
		cm, co := newClients(t, k, mainTenant), newClients(t, k, otherTenant)
		for range 2 {
			mustPush(t, k, cm, nextDistinct(), distinct.service, 1)
			distinct.pushes++
		}
		mustPush(t, k, cm, cpu, identical.service, 2)
		identical.pushes += 2
		for range 2 {
			mustPush(t, k, co, withTime(t, blk, blkNext), other.service, 1)
			blkNext += int64(time.Second)
			other.pushes++
		}
	}
	checkAll := func(k *kiln, when string) {
		t.Helper()
		for _, s := range all {
			expectPushes(t, k, newClients(t, k, s.tenant), s.query, s.service, s.pushes, when+" ("+s.note+")")
		}
	}

	// Phase A: level-1 blocks, the compactor idle (first round after 1h).
	idle := "-compactor.compaction-interval=1h"
	for w := 1; w < compactionWindows; w++ {
		k := startKiln(t, storage, idle)
		pushWindow(k)
		k.terminate(t) // flush on shutdown: one block per tenant
	}
	k := startKiln(t, storage, idle, "-ingester.max-block-duration=2s", "-ingester.flush-check-period=1s")
	pushWindow(k)
	if !waitFor(20*time.Second, 200*time.Millisecond, func() bool {
		return len(listBlocks(t, bucket, mainTenant)) >= compactionWindows &&
			len(listBlocks(t, bucket, otherTenant)) >= compactionWindows
	}) {
		t.Fatalf("the 2 s head cut wrote no block within 20 s: main %s, other %s",
			describeBlocks(listBlocks(t, bucket, mainTenant)), describeBlocks(listBlocks(t, bucket, otherTenant)))
	}
	checkAll(k, "before compaction, heads flushed by age")
	k.terminate(t)
	level1 := map[string][]*blockMeta{}
	for _, tn := range []string{mainTenant, otherTenant} {
		bs := listBlocks(t, bucket, tn)
		t.Logf("before compaction: %s: %s", tn, describeBlocks(bs))
		if len(bs) != compactionWindows {
			t.Fatalf("%s: %d blocks before compaction, want %d (one per flush window)", tn, len(bs), compactionWindows)
		}
		for _, b := range bs {
			if b.level() != 1 {
				t.Fatalf("%s: block %s is not level 1 before any compaction", tn, b)
			}
		}
		level1[tn] = bs
	}
	k = startKiln(t, storage, idle)
	checkAll(k, "before compaction, from level-1 blocks")
	k.terminate(t)
	if t.Failed() {
		return
	}

	// Phase B1: compaction every second; SIGKILL as soon as the level-2
	// blocks are written, before their sources are deleted (a round later).
	compact := "-compactor.compaction-interval=1s"
	k = startKiln(t, storage, compact)
	var compacted map[string]*blockMeta
	if !waitFor(compactionWait, 10*time.Millisecond, func() bool {
		compacted = compactedBlocks(t, bucket, level1)
		return compacted != nil
	}) {
		t.Fatalf("no level-2 block within %v: main %s; other %s", compactionWait,
			describeBlocks(listBlocks(t, bucket, mainTenant)), describeBlocks(listBlocks(t, bucket, otherTenant)))
	}
	k.kill9(t)
	t.Logf("compacted: %v", compacted)
	for tn := range level1 {
		t.Logf("after the SIGKILL: %s: %s", tn, describeBlocks(listBlocks(t, bucket, tn)))
	}
	if sourcesGone(t, bucket, level1) {
		t.Logf("the sources were already deleted at the SIGKILL: the compacted+sources state was not caught")
	}
	// Phase B2: compacted blocks and their sources side by side; readers
	// must skip the superseded sources.
	k = startKiln(t, storage, idle)
	checkAll(k, "compacted blocks beside their sources, after SIGKILL and restart")
	k.terminate(t)

	// Phase B3: the compactor finishes (deletes the sources); queries all
	// along.
	k = startKiln(t, storage, compact)
	compacted = nil
	t0 := time.Now()
	var deletedAt time.Time
	queries := 0
	for {
		for _, s := range all {
			if s.errored {
				continue
			}
			c := newClients(t, k, s.tenant)
			n, totals, err := countPushes(t, k, c, s.query, s.service)
			queries++
			if err == nil && n == s.pushes {
				continue
			}
			s.errored = true
			state := fmt.Sprintf("blocks of %s: %s", s.tenant, describeBlocks(listBlocks(t, bucket, s.tenant)))
			if err != nil {
				t.Errorf("during compaction (%v in, %s): %s/%s (%s): %v; %s", time.Since(t0).Round(time.Millisecond),
					k.name, s.tenant, s.service, s.note, err, state)
			} else {
				t.Errorf("during compaction (%v in, %s): %s/%s (%s): totals %v = %d pushes, want %d; %s",
					time.Since(t0).Round(time.Millisecond), k.name, s.tenant, s.service, s.note, totals, n, s.pushes, state)
			}
		}
		if compacted == nil {
			compacted = compactedBlocks(t, bucket, level1)
			if compacted != nil {
				t.Logf("compacted after %v: %v", time.Since(t0).Round(time.Millisecond), compacted)
			}
		} else if deletedAt.IsZero() && sourcesGone(t, bucket, level1) {
			deletedAt = time.Now()
			t.Logf("level-1 sources deleted after %v", time.Since(t0).Round(time.Millisecond))
		}
		if !deletedAt.IsZero() && time.Since(deletedAt) > afterDeleteWatch {
			break
		}
		if time.Since(t0) > compactionWait {
			t.Fatalf("compaction not done within %v: compacted=%v sources deleted=%v; main %s; other %s", compactionWait,
				compacted, !deletedAt.IsZero(), describeBlocks(listBlocks(t, bucket, mainTenant)),
				describeBlocks(listBlocks(t, bucket, otherTenant)))
		}
		k.requireAlive(t)
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("%d queries during compaction", queries)
	for tn, b := range compacted {
		var want int64
		for _, s := range level1[tn] {
			want += s.profiles()
		}
		if b.profiles() != want {
			t.Errorf("compacted block %s/%s holds %d profiles; its %d sources held %d (%s)", tn, b.ULID, b.profiles(),
				len(level1[tn]), want, describeBlocks(level1[tn]))
		}
	}
	checkAll(k, "after compaction")
	k.terminate(t)

	k = startKiln(t, storage, compact)
	checkAll(k, "after compaction and a restart")
	time.Sleep(2500 * time.Millisecond) // more rounds: nothing left to merge
	checkAll(k, "after more compactor rounds")
	for _, tn := range []string{mainTenant, otherTenant} {
		bs := listBlocks(t, bucket, tn)
		if len(bs) != 1 || bs[0].level() != 2 {
			t.Errorf("%s: after compaction %s, want one level-2 block", tn, describeBlocks(bs))
		}
	}
	k.terminate(t)
}

// compactedBlocks returns, per tenant, the level-2 block whose sources are
// exactly the tenant's level-1 blocks, once every tenant has one.
func compactedBlocks(t *testing.T, bucket string, level1 map[string][]*blockMeta) map[string]*blockMeta {
	out := map[string]*blockMeta{}
	for tn, srcs := range level1 {
		var want []string
		for _, s := range srcs {
			want = append(want, s.ULID)
		}
		slices.Sort(want)
		for _, b := range listBlocks(t, bucket, tn) {
			if b.level() < 2 {
				continue
			}
			got := slices.Clone(b.Compaction.Sources)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("%s: compacted block %s: sources %v, want the level-1 blocks %v", tn, b.ULID, got, want)
			}
			out[tn] = b
		}
		if out[tn] == nil {
			return nil
		}
	}
	return out
}

// sourcesGone reports whether every level-1 source block is deleted.
func sourcesGone(t *testing.T, bucket string, level1 map[string][]*blockMeta) bool {
	for tn, srcs := range level1 {
		have := map[string]bool{}
		for _, b := range listBlocks(t, bucket, tn) {
			have[b.ULID] = true
		}
		for _, s := range srcs {
			if have[s.ULID] {
				return false
			}
		}
	}
	return true
}
