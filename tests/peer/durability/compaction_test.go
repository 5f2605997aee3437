package durability

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"kiln.dev/tests/lib/kilntest"
)

const (
	compactionWait = 45 * time.Second
	// Readers pick up a compacted block at their next sync, every
	// -ingester.flush-check-period (default 5 s): keep querying longer than
	// that after the sources are deleted.
	afterDeleteWatch = 7 * time.Second
	idleCompactor    = "-compactor.compaction-interval=1h" // no round during the test
)

// fastCompactor are the flags of a compactor that runs every second and
// deletes the sources of a compacted block 7 s after it appeared (longer
// than the readers' 5 s sync, -ingester.flush-check-period), where the
// binary has -compactor.deletion-delay; without it the sources go a round
// later.
func fastCompactor(t *testing.T) []string {
	args := []string{"-compactor.compaction-interval=1s"}
	if kilntest.HasFlag(t, "compactor.deletion-delay") {
		args = append(args, "-compactor.deletion-delay=7s")
	}
	return args
}

// compactionSeries is one service whose pushes the test counts.
type compactionSeries struct {
	tenant  string
	service string
	query   *profileCase // its timeNanos starts the query window
	pushes  int64
	note    string
	push    func(t *testing.T, k *kilntest.Server, c *kilntest.Clients) // one flush window's pushes
	errored bool                                                        // report one error per series while polling
}

// level1Fixture is a storage directory holding, for each tenant, one
// level-1 block per flush window, all in one 4h range per tenant.
type level1Fixture struct {
	storage, bucket string
	series          []*compactionSeries
	tenants         []string
	level1          map[string][]*blockMeta
}

// distinctSeries pushes prof twice per window, each push re-encoded with its
// own time_nanos (1 s apart, from one hour into the profile's 4h range).
func distinctSeries(t *testing.T, tenant, service string, prof *profileCase) *compactionSeries {
	const fourHours = int64(4 * time.Hour)
	base := prof.timeNanos - prof.timeNanos%fourHours + int64(time.Hour)
	next := base
	s := &compactionSeries{tenant: tenant, service: service, query: withTime(t, prof, base),
		note: prof.rel + " with one time_nanos per push"}
	s.push = func(t *testing.T, k *kilntest.Server, c *kilntest.Clients) {
		t.Helper()
		for range 2 {
			mustPush(t, k, c, withTime(t, prof, next), service, 1)
			next += int64(time.Second)
			s.pushes++
		}
	}
	return s
}

// identicalSeries pushes prof as is, twice per window: the same time and
// content every time, each with its own RawSample ID (which the push path
// counts as distinct profiles).
func identicalSeries(tenant, service string, prof *profileCase) *compactionSeries {
	s := &compactionSeries{tenant: tenant, service: service, query: prof,
		note: prof.rel + " as is: same time and content, distinct RawSample IDs"}
	s.push = func(t *testing.T, k *kilntest.Server, c *kilntest.Clients) {
		t.Helper()
		mustPush(t, k, c, prof, service, 2)
		s.pushes += 2
	}
	return s
}

// buildLevel1 writes `windows` flush windows: all but the last end with a
// SIGTERM (flush on shutdown), the last with a 2 s head cut while running.
// The compactor is idle throughout; the totals are checked at the end.
func buildLevel1(t *testing.T, windows int, series ...*compactionSeries) *level1Fixture {
	t.Helper()
	f := &level1Fixture{storage: newStorage(t), series: series, level1: map[string][]*blockMeta{}}
	f.bucket = bucketDir(f.storage)
	for _, s := range series {
		if !slices.Contains(f.tenants, s.tenant) {
			f.tenants = append(f.tenants, s.tenant)
		}
	}
	pushWindow := func(k *kilntest.Server) {
		for _, s := range series {
			s.push(t, k, k.Clients(t, s.tenant))
		}
	}
	for w := 1; w < windows; w++ {
		k := startKiln(t, f.storage, idleCompactor)
		pushWindow(k)
		k.Terminate(t)
	}
	k := startKiln(t, f.storage, idleCompactor, "-ingester.max-block-duration=2s", "-ingester.flush-check-period=1s")
	pushWindow(k)
	if !waitFor(20*time.Second, 200*time.Millisecond, func() bool {
		for _, tn := range f.tenants {
			if len(listBlocks(t, f.bucket, tn)) < windows {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("the 2 s head cut wrote no block within 20 s: %s", f.describe(t))
	}
	f.checkAll(t, k, "before compaction, heads flushed by age")
	k.Terminate(t)
	for _, tn := range f.tenants {
		bs := listBlocks(t, f.bucket, tn)
		t.Logf("before compaction: %s: %s", tn, describeBlocks(bs))
		if len(bs) != windows {
			t.Fatalf("%s: %d blocks before compaction, want %d (one per flush window)", tn, len(bs), windows)
		}
		for _, b := range bs {
			if b.level() != 1 {
				t.Fatalf("%s: block %s is not level 1 before any compaction", tn, b)
			}
		}
		f.level1[tn] = bs
	}
	k = startKiln(t, f.storage, idleCompactor)
	f.checkAll(t, k, "before compaction, from level-1 blocks")
	k.Terminate(t)
	return f
}

func (f *level1Fixture) describe(t *testing.T) string {
	s := ""
	for _, tn := range f.tenants {
		s += tn + ": " + describeBlocks(listBlocks(t, f.bucket, tn)) + " "
	}
	return s
}

func (f *level1Fixture) check(t *testing.T, k *kilntest.Server, s *compactionSeries, when string) bool {
	t.Helper()
	return expectPushes(t, k, k.Clients(t, s.tenant), s.query, s.service, s.pushes, when+" ("+s.note+")")
}

func (f *level1Fixture) checkAll(t *testing.T, k *kilntest.Server, when string) {
	t.Helper()
	for _, s := range f.series {
		f.check(t, k, s, when)
	}
}

// poll checks one series once and reports the first failure of each series
// with the state of the bucket.
func (f *level1Fixture) poll(t *testing.T, k *kilntest.Server, s *compactionSeries, t0 time.Time, what string) {
	t.Helper()
	if s.errored {
		return
	}
	n, totals, err := countPushes(t, k, k.Clients(t, s.tenant), s.query, s.service)
	if err == nil && n == s.pushes {
		return
	}
	s.errored = true
	got := fmt.Sprintf("totals %v = %d pushes, want %d", totals, n, s.pushes)
	if err != nil {
		got = err.Error()
	}
	t.Errorf("%s (%v after start, %s): %s/%s (%s): %s; blocks of %s: %s", what, time.Since(t0).Round(time.Millisecond),
		k.Name, s.tenant, s.service, s.note, got, s.tenant, describeBlocks(listBlocks(t, f.bucket, s.tenant)))
}

// compacted returns, per tenant, the level-2 block whose sources are
// exactly the tenant's level-1 blocks, once every tenant has one.
func (f *level1Fixture) compacted(t *testing.T) map[string]*blockMeta {
	out := map[string]*blockMeta{}
	for tn, srcs := range f.level1 {
		var want []string
		for _, s := range srcs {
			want = append(want, s.ULID)
		}
		slices.Sort(want)
		for _, b := range listBlocks(t, f.bucket, tn) {
			if b.level() < 2 {
				continue
			}
			got := slices.Clone(b.Compaction.Sources)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Fatalf("%s: compacted block %s: sources %v, want the level-1 blocks %v", tn, b.ULID, got, want)
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
func (f *level1Fixture) sourcesGone(t *testing.T) bool {
	for tn, srcs := range f.level1 {
		have := map[string]bool{}
		for _, b := range listBlocks(t, f.bucket, tn) {
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

// checkCompactedStats compares a compacted block's profile count with its
// sources'.
func (f *level1Fixture) checkCompactedStats(t *testing.T, compacted map[string]*blockMeta) {
	t.Helper()
	for tn, b := range compacted {
		var want int64
		for _, s := range f.level1[tn] {
			want += s.profiles()
		}
		if b.profiles() != want {
			t.Errorf("compacted block %s/%s holds %d profiles; its %d sources held %d (%s)", tn, b.ULID, b.profiles(),
				len(f.level1[tn]), want, describeBlocks(f.level1[tn]))
		}
	}
}

// TestCompactionKeepsTotals writes three level-1 blocks per tenant in one
// 4h range (flush windows: two SIGTERM restarts and one 2 s head cut), then
// runs the compactor every second until it has merged them into a level-2
// block and deleted the sources; the totals must be the same before,
// during and after compaction, and after a restart.
//
// The test profiles are years old, so their 4h ranges are over and the
// compactor merges them at once.
//
//	main/distinct    cpu.pb.gz re-encoded with its own time_nanos per push
//	main/identical   cpu.pb.gz as is: every push has the same time and
//	                 content but its own RawSample ID, so the push path
//	                 counts each one
//	other/block      block.pb.gz with its own time_nanos per push (another
//	                 tenant and 4h range)
//
// Tenant main is queried all along (its readers have loaded the level-1
// blocks before they are deleted). Tenant other is not queried until the
// compactor has deleted its level-1 blocks, then at once and all along: a
// reader that opened blocks but has not read them yet must not lose them
// when the compactor deletes them before the reader's next sync.
func TestCompactionKeepsTotals(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	cpu := loadProfile(t, root, cpuFile)
	blk := loadProfile(t, root, blockFile)
	id := kilntest.RandomHex(4)
	mainTenant, otherTenant := "dur-compact-main-"+id, "dur-compact-other-"+id
	distinct := distinctSeries(t, mainTenant, "distinct", cpu)
	identical := identicalSeries(mainTenant, "identical", cpu)
	other := distinctSeries(t, otherTenant, "block", blk)
	f := buildLevel1(t, 3, distinct, identical, other)
	if t.Failed() {
		return
	}

	k := startKiln(t, f.storage, fastCompactor(t)...)
	t0 := time.Now()
	var deletedAt time.Time
	var compacted map[string]*blockMeta
	queries := 0
	for {
		f.poll(t, k, distinct, t0, "during compaction, queried all along")
		f.poll(t, k, identical, t0, "during compaction, queried all along")
		queries += 2
		if !deletedAt.IsZero() {
			f.poll(t, k, other, t0, "first queried after its level-1 blocks were deleted")
			queries++
		}
		if compacted == nil {
			if compacted = f.compacted(t); compacted != nil {
				t.Logf("compacted after %v: %v", time.Since(t0).Round(time.Millisecond), compacted)
			}
		} else if deletedAt.IsZero() && f.sourcesGone(t) {
			deletedAt = time.Now()
			t.Logf("level-1 sources deleted after %v", time.Since(t0).Round(time.Millisecond))
			continue // query tenant other at once
		}
		if !deletedAt.IsZero() && time.Since(deletedAt) > afterDeleteWatch {
			break
		}
		if time.Since(t0) > compactionWait {
			t.Fatalf("compaction not done within %v: compacted=%v sources deleted=%v; %s", compactionWait,
				compacted, !deletedAt.IsZero(), f.describe(t))
		}
		k.RequireAlive(t)
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("%d queries during compaction", queries)
	f.checkCompactedStats(t, compacted)
	f.checkAll(t, k, "after compaction")
	k.Terminate(t)

	k = startKiln(t, f.storage, fastCompactor(t)...)
	f.checkAll(t, k, "after compaction and a restart")
	time.Sleep(2500 * time.Millisecond) // more rounds: nothing left to merge
	f.checkAll(t, k, "after more compactor rounds")
	for _, tn := range f.tenants {
		bs := listBlocks(t, f.bucket, tn)
		if len(bs) != 1 || bs[0].level() != 2 {
			t.Errorf("%s: after compaction %s, want one level-2 block", tn, describeBlocks(bs))
		}
	}
	k.Terminate(t)
}

// TestCompactionCrashBeforeSourcesDeleted SIGKILLs the server right after
// the compactor wrote the level-2 block, before it deleted the sources (a
// round later): after the restart the compacted block and its sources are
// side by side, and readers must skip the superseded sources. Then the
// compactor finishes and the totals stay the same.
func TestCompactionCrashBeforeSourcesDeleted(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	cpu := loadProfile(t, root, cpuFile)
	tenant := "dur-compact-crash-" + kilntest.RandomHex(4)
	s := distinctSeries(t, tenant, "distinct", cpu)
	f := buildLevel1(t, 2, s)
	if t.Failed() {
		return
	}

	k := startKiln(t, f.storage, fastCompactor(t)...)
	var compacted map[string]*blockMeta
	if !waitFor(compactionWait, 5*time.Millisecond, func() bool {
		compacted = f.compacted(t)
		return compacted != nil
	}) {
		t.Fatalf("no level-2 block within %v: %s", compactionWait, f.describe(t))
	}
	k.Kill(t)
	t.Logf("SIGKILL once compacted: %v; bucket: %s", compacted, f.describe(t))
	if f.sourcesGone(t) {
		t.Logf("the sources were already deleted at the SIGKILL: the compacted+sources state was not caught")
	}
	f.checkCompactedStats(t, compacted)

	k = startKiln(t, f.storage, idleCompactor)
	f.checkAll(t, k, "compacted block beside its sources, after SIGKILL and restart")
	k.Kill(t)

	k = startKiln(t, f.storage, fastCompactor(t)...)
	f.checkAll(t, k, "compacted block beside its sources, compactor running")
	if !waitFor(compactionWait, 100*time.Millisecond, func() bool { return f.sourcesGone(t) }) {
		t.Fatalf("sources not deleted within %v: %s", compactionWait, f.describe(t))
	}
	f.checkAll(t, k, "after the sources were deleted")
	k.Terminate(t)
	k = startKiln(t, f.storage, fastCompactor(t)...)
	f.checkAll(t, k, "after compaction and a restart")
	k.Terminate(t)
}
