package durability

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"kiln.dev/tests/lib/kilntest"
)

const requestTimeout = 15 * time.Second

// startKiln starts kiln (kilntest.Start) on storage, kept across runs, with
// extra flags, and waits until GET /ready answers 200 and the gRPC port
// accepts. Every run is named kiln#N in the log; it logs at info (the
// tests search its lines) and has no OTLP port; KILN_EXTRA_ARGS is not
// used. The test profiles are years old and pushed in bursts, so the
// ingestion time window, the rate limit and the query length and lookback
// limits are off. Start-up includes WAL replay and block opening, hence the
// longer ready timeout. A run the test leaves running is SIGKILLed at the
// end; the test checks clean exits itself (Terminate).
func startKiln(t *testing.T, storage string, extra ...string) *kilntest.Server {
	t.Helper()
	return startKilnWith(t, storage, nil, extra...)
}

// startKilnWith is startKiln with more harness options (after its own).
func startKilnWith(t *testing.T, storage string, opts []kilntest.Option, extra ...string) *kilntest.Server {
	t.Helper()
	base := []kilntest.Option{
		kilntest.Storage(storage),
		kilntest.Numbered(),
		kilntest.LogLevel("info"),
		kilntest.OTLPOff(),
		kilntest.IgnoreEnvArgs(),
		kilntest.ReadyTimeout(30 * time.Second),
		kilntest.KillAtCleanup(),
		kilntest.Args(
			"-validation.reject-older-than=0",
			"-validation.reject-newer-than=0",
			"-distributor.ingestion-rate-limit-mb=0",
			"-querier.max-query-length=0",
			"-querier.max-query-lookback=0",
		),
		kilntest.Args(s3Args(storage)...),
		kilntest.Args(extra...),
	}
	return kilntest.Start(t, append(base, opts...)...)
}

// onS3 is set while a test runs on S3 (runOnS3): newStorage then gives each
// -storage.path its own S3 server, and startKiln points kiln at it.
var (
	onS3  bool
	s3Of  = map[string]*kilntest.S3{}
	s3Mu  sync.Mutex
	s3Pfx = "kiln/blocks" // a -storage.prefix, so that the prefix is exercised too
)

// runOnS3 runs f as a subtest with the blocks in S3.
func runOnS3(t *testing.T, name string, f func(t *testing.T)) {
	t.Run(name, func(t *testing.T) {
		onS3 = true
		defer func() { onS3 = false }()
		f(t)
	})
}

// newStorage is a new -storage.path (with its own S3 server on S3).
func newStorage(t *testing.T) string {
	storage := t.TempDir()
	if onS3 {
		s3Mu.Lock()
		s3Of[storage] = kilntest.StartS3(t)
		s3Mu.Unlock()
	}
	return storage
}

func s3Args(storage string) []string {
	s3Mu.Lock()
	defer s3Mu.Unlock()
	if s, ok := s3Of[storage]; ok {
		return s.Args(s3Pfx)
	}
	return nil
}

// bucketDir is where the blocks of storage are on disk: <storage>/bucket,
// or the S3 server's files under the prefix.
func bucketDir(storage string) string {
	s3Mu.Lock()
	defer s3Mu.Unlock()
	if s, ok := s3Of[storage]; ok {
		return s.Dir(s3Pfx)
	}
	return filepath.Join(storage, "bucket")
}

// pushProfile sends one raw profile as one series with one RawSample.
func pushProfile(ctx context.Context, pc pushv1connect.PusherServiceClient, prof *profileCase, service, id string) error {
	_, err := pc.Push(ctx, connect.NewRequest(&pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
		Labels: []*typesv1.LabelPair{
			{Name: "__name__", Value: prof.name},
			{Name: "service_name", Value: service},
			{Name: "__delta__", Value: "false"},
		},
		Samples: []*pushv1.RawSample{{RawProfile: prof.raw, ID: id}},
	}}}))
	return err
}

// mustPush pushes n copies (distinct IDs) of prof and fails on any error.
func mustPush(t *testing.T, k *kilntest.Server, c *kilntest.Clients, prof *profileCase, service string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithTimeout(t.Context(), requestTimeout)
		err := pushProfile(ctx, c.Push, prof, service, kilntest.NewUUID())
		cancel()
		if err != nil {
			k.RequireAlive(t)
			t.Fatalf("%s: push %d/%d of %s as %s/%s: %v", k.Name, i+1, n, prof.rel, c.Tenant, service, err)
		}
	}
}

// queryTotals returns the SelectMergeStacktraces total of every sample type
// of prof for service_name=service.
func queryTotals(t *testing.T, c *kilntest.Clients, prof *profileCase, service string) ([]int64, error) {
	t.Helper()
	start, end := queryWindow(prof.timeNanos)
	out, err := kilntest.ServiceTotals(t, c.Query, prof.typeIDs, service, start, end, requestTimeout)
	if err != nil {
		return nil, fmt.Errorf("tenant %s: %w", c.Tenant, err)
	}
	return out, nil
}

// storedCount turns per-type totals into a number of stored pushes of prof
// (kilntest.Profile.Pushes).
func storedCount(prof *profileCase, totals []int64) (int64, error) {
	return (&kilntest.Profile{TypeIDs: prof.typeIDs, PerPush: prof.perPush}).Pushes(totals)
}

// countPushes queries prof's types for service and returns the number of
// pushes the totals amount to.
func countPushes(t *testing.T, k *kilntest.Server, c *kilntest.Clients, prof *profileCase, service string) (int64, []int64, error) {
	t.Helper()
	totals, err := queryTotals(t, c, prof, service)
	if err != nil {
		k.RequireAlive(t)
		return 0, nil, err
	}
	n, err := storedCount(prof, totals)
	return n, totals, err
}

// expectPushes checks that service's totals are exactly want pushes of prof.
func expectPushes(t *testing.T, k *kilntest.Server, c *kilntest.Clients, prof *profileCase, service string, want int64, when string) bool {
	t.Helper()
	n, totals, err := countPushes(t, k, c, prof, service)
	if err != nil {
		t.Errorf("%s (%s): %s/%s: %v", when, k.Name, c.Tenant, service, err)
		return false
	}
	if n != want {
		wantTotals := make([]int64, len(prof.perPush))
		for i, p := range prof.perPush {
			wantTotals[i] = p * want
		}
		t.Errorf("%s (%s): %s/%s (%s): totals %v = %d pushes, want %d pushes (totals %v)",
			when, k.Name, c.Tenant, service, prof.rel, totals, n, want, wantTotals)
		return false
	}
	t.Logf("%s (%s): %s/%s: %d pushes of %s (totals %v)", when, k.Name, c.Tenant, service, n, prof.rel, totals)
	return true
}

// --- the write-ahead log on disk -------------------------------------------

// walSegments returns <storage>/wal/*.wal, oldest first.
func walSegments(t *testing.T, storage string) []string {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(storage, "wal", "*.wal"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(segs)
	return segs
}

// walRecord is where one framed record ([u32 len][u32 checksum][payload],
// little endian) lies in a segment.
type walRecord struct {
	off, payloadOff, end int64
}

// walFrames walks the framing of a segment (without checking checksums)
// and returns the complete records and the offset where the walk stopped.
func walFrames(data []byte) ([]walRecord, int64) {
	var recs []walRecord
	off := int64(0)
	for off+8 <= int64(len(data)) {
		n := int64(binary.LittleEndian.Uint32(data[off:]))
		if n == 0 || off+8+n > int64(len(data)) {
			break
		}
		recs = append(recs, walRecord{off: off, payloadOff: off + 8, end: off + 8 + n})
		off += 8 + n
	}
	return recs, off
}

// newestNonEmptySegment returns the last WAL segment with data in it.
func newestNonEmptySegment(t *testing.T, storage string) (string, []byte) {
	t.Helper()
	segs := walSegments(t, storage)
	for i := len(segs) - 1; i >= 0; i-- {
		data, err := os.ReadFile(segs[i])
		if err != nil {
			t.Fatal(err)
		}
		if len(data) > 0 {
			return segs[i], data
		}
	}
	t.Fatalf("no non-empty WAL segment in %s/wal (segments %v)", storage, segs)
	return "", nil
}

// --- blocks in the object store ----------------------------------------------

// blockMeta is what the tests read of a block's meta.json (proto3 JSON:
// int64 fields are strings).
type blockMeta struct {
	ULID    string `json:"ulid"`
	MinTime string `json:"minTime"`
	MaxTime string `json:"maxTime"`
	Stats   struct {
		NumSeries   string `json:"numSeries"`
		NumProfiles string `json:"numProfiles"`
		NumSamples  string `json:"numSamples"`
	} `json:"stats"`
	Compaction struct {
		Level   int      `json:"level"`
		Sources []string `json:"sources"`
	} `json:"compaction"`
	WALUntil string `json:"walUntil"`

	dir string
}

func (m *blockMeta) level() int {
	if m.Compaction.Level == 0 {
		return 1
	}
	return m.Compaction.Level
}

func (m *blockMeta) profiles() int64 {
	v, _ := strconv.ParseInt(m.Stats.NumProfiles, 10, 64)
	return v
}

func (m *blockMeta) String() string {
	return fmt.Sprintf("%s(level %d, %s..%s, %s profiles, sources %v)", m.ULID, m.level(), m.MinTime, m.MaxTime,
		m.Stats.NumProfiles, m.Compaction.Sources)
}

// listBlocks reads every <bucket>/<tenant>/blocks/*/meta.json; directories
// without a readable meta.json are skipped (a block without it does not
// exist).
func listBlocks(t *testing.T, bucket, tenant string) []*blockMeta {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(bucket, tenant, "blocks", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var out []*blockMeta
	for _, d := range dirs {
		data, err := os.ReadFile(filepath.Join(d, "meta.json"))
		if err != nil {
			continue
		}
		m := &blockMeta{dir: d}
		if err := json.Unmarshal(data, m); err != nil {
			t.Logf("block %s: meta.json does not parse: %v", d, err)
			continue
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ULID < out[j].ULID })
	return out
}

func describeBlocks(bs []*blockMeta) string {
	var parts []string
	for _, b := range bs {
		parts = append(parts, b.String())
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

// flipBytes XORs n bytes of file starting at off with 0xff.
func flipBytes(t *testing.T, file string, off int64, n int) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if off < 0 || off+int64(n) > int64(len(data)) {
		t.Fatalf("flip %d bytes at %d of %s (%d bytes): out of range", n, off, file, len(data))
	}
	for i := int64(0); i < int64(n); i++ {
		data[off+i] ^= 0xff
	}
	writeFileKeepMode(t, file, data)
}

// writeFileKeepMode overwrites file in place (blocks may be read-only).
func writeFileKeepMode(t *testing.T, file string, data []byte) {
	t.Helper()
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(file, st.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond every interval until it holds or d has passed.
func waitFor(d, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
}
