package durability

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"kiln.dev/tests/lib/kilntest"
)

// TestCorruptBlock writes one block per tenant (push, SIGTERM: flush on
// shutdown), damages some of them on disk and restarts:
//
//	samples  one tenant's samples file has 16 bytes flipped in the middle
//	index    another tenant's index file is cut to half its length
//	meta     a third tenant's meta.json is cut to half its length
//	intact   a fourth tenant's block is left alone
//
// The server must come up (/ready 200), log a quarantine line naming the
// block whose index is damaged, keep serving the intact tenant exactly,
// answer queries of the damaged tenants without error (serving nothing of
// the blocks with a damaged index or meta.json, whose WAL is gone), accept
// new pushes for them and keep all of that across a SIGKILL and a SIGTERM
// restart. Opening a block does not read its samples (a reader fetches only
// the chunks a query needs, and verifies them then): the queries here cover
// each series' whole block, so they are answered exactly from the index's
// checksummed per-series sums, damaged samples or not, while the compactor,
// which must read every chunk, leaves that block alone instead of merging
// part of it. The compactor runs every second from the damage on.
func TestCorruptBlock(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	prof := loadProfile(t, root, cpuFile)
	storage := t.TempDir()
	bucket := filepath.Join(storage, "bucket")
	id := kilntest.RandomHex(4)
	kinds := []string{"samples", "index", "meta", "intact"}
	tenants := map[string]string{}
	for _, kind := range kinds {
		tenants[kind] = "dur-block-" + kind + "-" + id
	}
	services := []string{"svc-a", "svc-b"}
	pushes := map[string]int64{"svc-a": 3, "svc-b": 2}

	k := startKiln(t, storage)
	for _, kind := range kinds {
		c := k.Clients(t, tenants[kind])
		for _, s := range services {
			mustPush(t, k, c, prof, s, int(pushes[s]))
		}
	}
	k.Terminate(t)
	blocks := map[string]*blockMeta{}
	for _, kind := range kinds {
		bs := listBlocks(t, bucket, tenants[kind])
		if len(bs) != 1 {
			t.Fatalf("tenant %s: %d blocks after SIGTERM, want 1 (flush on shutdown): %s", tenants[kind], len(bs), describeBlocks(bs))
		}
		blocks[kind] = bs[0]
	}
	t.Logf("blocks: %v; WAL segments %v", blocks, walSegments(t, storage))

	// Served from the blocks, before any damage.
	k = startKiln(t, storage)
	for _, kind := range kinds {
		c := k.Clients(t, tenants[kind])
		for _, s := range services {
			expectPushes(t, k, c, prof, s, pushes[s], "from the intact blocks")
		}
	}
	k.Terminate(t)
	if t.Failed() {
		return
	}

	// The damage.
	samples := filepath.Join(blocks["samples"].dir, "samples")
	st, err := os.Stat(samples)
	if err != nil {
		t.Fatal(err)
	}
	flipBytes(t, samples, st.Size()/2-8, 16)
	t.Logf("flipped 16 bytes at %d of %s (%d bytes)", st.Size()/2-8, samples, st.Size())
	for kind, file := range map[string]string{"index": "index", "meta": "meta.json"} {
		p := filepath.Join(blocks[kind].dir, file)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		writeFileKeepMode(t, p, data[:len(data)/2])
		t.Logf("cut %s from %d to %d bytes", p, len(data), len(data)/2)
	}

	args := fastCompactor(t)
	k = startKiln(t, storage, args...)
	for _, kind := range []string{"index"} {
		key := tenants[kind] + "/" + blocks[kind].ULID
		if lines := k.Log.Grep("quarantin", key); len(lines) == 0 {
			t.Errorf("%s: no quarantine log line for the block with a damaged %s file (%s)", k.Name, kind, key)
		} else {
			t.Logf("quarantine of %s logged: %q", key, lines)
		}
	}
	if ls := k.Log.Grep(blocks["meta"].ULID); len(ls) > 0 {
		t.Logf("the block with a cut meta.json was logged: %q", ls)
	} else {
		t.Logf("the block with a cut meta.json was not logged (a block without a readable meta.json does not exist)")
	}
	want := map[string]map[string]int64{} // tenant kind -> service -> pushes
	for _, kind := range kinds {
		want[kind] = map[string]int64{}
		for _, s := range services {
			want[kind][s] = 0
			if kind == "intact" || kind == "samples" {
				want[kind][s] = pushes[s]
			}
		}
	}
	check := func(when string) {
		t.Helper()
		if code := k.ReadyStatus(); code != 200 {
			t.Errorf("%s (%s): GET /ready = %d, want 200", when, k.Name, code)
		}
		for _, kind := range kinds {
			c := k.Clients(t, tenants[kind])
			for s, n := range want[kind] {
				expectPushes(t, k, c, prof, s, n, when+" ["+kind+"]")
			}
		}
	}
	check("after the damage")
	// Both blocks that do not open are counted (the reader's set keeps the
	// count for the process's life).
	expectQuarantined(t, k, "ingester", 2)

	// New data for every tenant, damaged or not.
	for _, kind := range kinds {
		c := k.Clients(t, tenants[kind])
		mustPush(t, k, c, prof, "svc-a", 1)
		mustPush(t, k, c, prof, "svc-new", 2)
		want[kind]["svc-a"]++
		want[kind]["svc-new"] = 2
	}
	check("after new pushes")
	time.Sleep(2500 * time.Millisecond) // two compactor rounds over the damaged blocks
	check("after two compactor rounds")

	k.Kill(t)
	k = startKiln(t, storage, args...)
	check("after SIGKILL and restart")
	k.Terminate(t)
	t.Logf("blocks after SIGTERM: %v", func() string {
		var parts []string
		for _, kind := range kinds {
			parts = append(parts, kind+"="+describeBlocks(listBlocks(t, bucket, tenants[kind])))
		}
		return strings.Join(parts, " ")
	}())
	k = startKiln(t, storage, args...)
	check("after SIGTERM and restart")
	time.Sleep(2500 * time.Millisecond) // the compactor meets new and damaged blocks of one range
	check("after two more compactor rounds")
	// The block whose samples are damaged has new blocks beside it now:
	// the compactor's merge reads its chunk, fails, and quarantines it.
	expectQuarantined(t, k, "compactor", 1)
	k.Terminate(t)
}

// expectQuarantined checks kiln_blocks_quarantined_total{component} >= min.
func expectQuarantined(t *testing.T, k *kilntest.Server, component string, min int) {
	t.Helper()
	series := `kiln_blocks_quarantined_total{component="` + component + `"}`
	v, ok, err := k.Metric(series)
	n, perr := strconv.Atoi(v)
	if err != nil || !ok || perr != nil || n < min {
		t.Errorf("%s: %s = %q (found %v, %v), want at least %d", k.Name, series, v, ok, err, min)
		return
	}
	t.Logf("%s: %s = %d", k.Name, series, n)
}
