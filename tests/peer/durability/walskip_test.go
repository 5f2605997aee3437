package durability

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"kiln.dev/tests/lib/kilntest"
)

// TestWALSkipSurvivesCompaction: a crash between "block written" and "the
// WAL segments before the cut removed" leaves a block and the WAL records it
// holds side by side; replay must skip those records (the block's walUntil).
// The test makes that state on disk (it keeps a copy of the segment and puts
// it back after the flush, as the crash would have left it), checks the
// skip, lets the compactor merge the tenant's level-1 blocks (the compacted
// block replaces the one that carried walUntil) and SIGKILLs again before
// anything else is cut: the next start must still not replay the records
// that are in the compacted block.
func TestWALSkipSurvivesCompaction(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	cpu := loadProfile(t, root, cpuFile)
	storage := t.TempDir()
	bucket := filepath.Join(storage, "bucket")
	tenant := "dur-walskip-" + kilntest.RandomHex(4)
	const fourHours = int64(4 * time.Hour)
	base := cpu.timeNanos - cpu.timeNanos%fourHours + int64(time.Hour)
	query := withTime(t, cpu, base)
	next := base
	var pushes int64
	push := func(k *kilntest.Server, n int) {
		t.Helper()
		c := k.Clients(t, tenant)
		for range n {
			mustPush(t, k, c, withTime(t, cpu, next), "svc", 1)
			next += int64(time.Second)
			pushes++
		}
	}
	count := func(k *kilntest.Server, when string) bool {
		t.Helper()
		return expectPushes(t, k, k.Clients(t, tenant), query, "svc", pushes, when)
	}
	idle := "-compactor.compaction-interval=1h"

	// Block B0 (window 0).
	k := startKiln(t, storage, idle)
	push(k, 2)
	k.Terminate(t)

	// Window 1: pushes, SIGKILL, and keep a copy of the WAL as it is.
	k = startKiln(t, storage, idle)
	push(k, 3)
	k.Kill(t)
	saved := map[string][]byte{}
	for _, seg := range walSegments(t, storage) {
		data, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		if len(data) > 0 {
			saved[seg] = data
		}
	}
	if len(saved) == 0 {
		t.Fatal("no WAL data after the pushes")
	}
	// Replay, then SIGTERM: block B1 holds the 3 pushes, its walUntil says
	// so, and the segments before the cut are removed ...
	k = startKiln(t, storage, idle)
	count(k, "after replay")
	k.Terminate(t)
	// ... unless the process died right after writing B1: put them back.
	for seg, data := range saved {
		if _, err := os.Stat(seg); err == nil {
			t.Logf("segment %s was not removed by the flush", seg)
			continue
		}
		if err := os.WriteFile(seg, data, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("restored %s (%d bytes): the state of a crash between the block write and the WAL cleanup", seg, len(data))
	}
	bs := listBlocks(t, bucket, tenant)
	t.Logf("blocks: %s; WAL segments %v", describeBlocks(bs), walSegments(t, storage))
	if len(bs) != 2 {
		t.Fatalf("want 2 level-1 blocks, have %s", describeBlocks(bs))
	}

	k = startKiln(t, storage, idle)
	if !count(k, "block + the WAL records it holds: replay skips them") {
		t.Fatal("the skip by walUntil does not work even before compaction")
	}
	k.Kill(t)

	// The compactor merges B0 and B1 and deletes them; nothing is cut
	// (no new data), so the restored segment stays. Then a crash.
	k = startKiln(t, storage, fastCompactor(t)...)
	if !waitFor(compactionWait, 100*time.Millisecond, func() bool {
		bs := listBlocks(t, bucket, tenant)
		return len(bs) == 1 && bs[0].level() == 2
	}) {
		t.Fatalf("compaction did not finish within %v: %s", compactionWait, describeBlocks(listBlocks(t, bucket, tenant)))
	}
	count(k, "after compaction, same process")
	k.Kill(t)
	t.Logf("after compaction: blocks %s; WAL segments %v", describeBlocks(listBlocks(t, bucket, tenant)), walSegments(t, storage))

	k = startKiln(t, storage, idle)
	if replayed := k.Log.Grep("replayed WAL"); len(replayed) > 0 {
		t.Logf("replay: %q", replayed)
	}
	count(k, "after compaction and SIGKILL: the records in the compacted block must not be replayed")
	k.Terminate(t)
}
