package durability

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/google/pprof/profile"

	"kiln.dev/tests/lib/kilntest"
)

// profileCase is one pprof test file and the flame graph total one push of
// it adds per sample type, computed by kilntest with github.com/google/pprof.
type profileCase struct {
	rel       string
	raw       []byte // the file's bytes as on disk (pushed as is)
	name      string // __name__
	typeIDs   []string
	perPush   []int64 // flame graph total of one push, per sample type
	timeNanos int64
}

// The profiles the tests push: small, valid, of three kinds.
const (
	cpuFile   = "grafana-pyroscope/cpu.pb.gz"
	pgoFile   = "gdu/default.pgo"
	blockFile = "datadog-go-profiler-notes/block.pb.gz"
)

// loadProfile reads root/rel with its per-push totals (kilntest.LoadProfile).
func loadProfile(t *testing.T, root, rel string) *profileCase {
	t.Helper()
	p := kilntest.LoadProfile(t, root, rel)
	return &profileCase{rel: p.Rel, raw: p.Raw, name: p.Name, typeIDs: p.TypeIDs, perPush: p.PerPush,
		timeNanos: p.TimeNanos}
}

// queryWindow is kilntest.QueryWindow.
func queryWindow(timeNanos int64) (start, end int64) { return kilntest.QueryWindow(timeNanos) }

// withTime returns prof re-encoded (gzipped pprof, by google/pprof) with
// another time_nanos; the per-push totals are computed again from the
// re-encoded bytes.
func withTime(t *testing.T, prof *profileCase, timeNanos int64) *profileCase {
	t.Helper()
	p, err := profile.ParseData(prof.raw)
	if err != nil {
		t.Fatal(err)
	}
	p.TimeNanos = timeNanos
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	q, err := profile.ParseData(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	out := *prof
	out.raw = buf.Bytes()
	out.timeNanos = q.TimeNanos
	out.perPush = kilntest.ExpectedTotals(q)
	if fmt.Sprint(out.perPush) != fmt.Sprint(prof.perPush) {
		t.Fatalf("%s re-encoded: per-push totals %v, the file's %v", prof.rel, out.perPush, prof.perPush)
	}
	return &out
}
