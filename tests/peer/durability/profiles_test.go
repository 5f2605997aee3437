package durability

import (
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

// profileCase is one pprof test file and the flame graph total one push of
// it adds per sample type, computed here with github.com/google/pprof.
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

func loadProfile(t *testing.T, root, rel string) *profileCase {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	p, err := profile.ParseData(raw)
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	pc := &profileCase{rel: rel, raw: raw, name: deriveName(p, rel), timeNanos: p.TimeNanos}
	for _, st := range p.SampleType {
		pc.typeIDs = append(pc.typeIDs, profileTypeID(pc.name, st, p.PeriodType))
	}
	pc.perPush = expectedTotals(p)
	nonZero := false
	for _, v := range pc.perPush {
		nonZero = nonZero || v != 0
	}
	if !nonZero {
		t.Fatalf("%s: every sample type totals 0; useless for counting", rel)
	}
	t.Logf("profile %s: __name__=%s time=%s types=%v per-push totals=%v", rel, pc.name,
		time.Unix(0, pc.timeNanos).UTC().Format(time.RFC3339), pc.typeIDs, pc.perPush)
	return pc
}

func profileTypeID(name string, st, pt *profile.ValueType) string {
	ptType, ptUnit := "", ""
	if pt != nil {
		ptType, ptUnit = pt.Type, pt.Unit
	}
	return strings.Join([]string{name, st.Type, st.Unit, ptType, ptUnit}, ":")
}

var nonNameChars = regexp.MustCompile(`[^a-z0-9_]+`)

// deriveName picks __name__ as a Pyroscope pprof push names its kinds:
// wall, cpu/samples -> process_cpu, alloc/inuse/space/objects -> memory,
// goroutine, mutex, block; otherwise the sanitized file name.
func deriveName(p *profile.Profile, rel string) string {
	var types []string
	for _, st := range p.SampleType {
		types = append(types, strings.ToLower(st.Type))
	}
	period := ""
	if p.PeriodType != nil {
		period = strings.ToLower(p.PeriodType.Type)
	}
	base := strings.ToLower(path.Base(rel))
	has := func(f func(string) bool) bool {
		for _, s := range types {
			if f(s) {
				return true
			}
		}
		return false
	}
	contention := has(func(s string) bool { return s == "contentions" || s == "delay" })
	switch {
	case has(func(s string) bool { return strings.Contains(s, "wall") }) || strings.Contains(period, "wall"):
		return "wall"
	case has(func(s string) bool { return strings.Contains(s, "cpu") || s == "samples" }):
		return "process_cpu"
	case has(func(s string) bool {
		return strings.HasPrefix(s, "alloc_") || strings.HasPrefix(s, "inuse_") ||
			strings.Contains(s, "space") || strings.Contains(s, "objects")
	}):
		return "memory"
	case has(func(s string) bool { return strings.HasPrefix(s, "goroutine") }):
		return "goroutine"
	case has(func(s string) bool { return strings.HasPrefix(s, "mutex_") }) ||
		(contention && (strings.Contains(period, "mutex") || strings.Contains(base, "mutex"))):
		return "mutex"
	case has(func(s string) bool { return strings.HasPrefix(s, "block_") }) ||
		(contention && (strings.Contains(period, "block") || strings.Contains(base, "block"))):
		return "block"
	}
	n := strings.Trim(nonNameChars.ReplaceAllString(base, "_"), "_")
	if n == "" || (n[0] >= '0' && n[0] <= '9') {
		n = "p_" + n
	}
	return n
}

// expectedTotals is the flame graph total per sample type of one push: the
// samples with identical stacks and string labels are merged, groups whose
// values are all <= 0 are dropped (as pprof normalisation does), and
// stackless samples cannot be flame graph nodes.
func expectedTotals(p *profile.Profile) []int64 {
	n := len(p.SampleType)
	type group struct {
		v     []int64
		stack bool
	}
	groups := map[string]*group{}
	var order []string
	for _, s := range p.Sample {
		k := sampleKey(s)
		g, ok := groups[k]
		if !ok {
			g = &group{v: make([]int64, n), stack: len(s.Location) > 0}
			groups[k] = g
			order = append(order, k)
		}
		for i := 0; i < n && i < len(s.Value); i++ {
			g.v[i] += s.Value[i]
		}
	}
	out := make([]int64, n)
	for _, k := range order {
		g := groups[k]
		keep := false
		for _, v := range g.v {
			keep = keep || v > 0
		}
		if !keep || !g.stack {
			continue
		}
		for i, v := range g.v {
			out[i] += v
		}
	}
	return out
}

func sampleKey(s *profile.Sample) string {
	var b strings.Builder
	for _, l := range s.Location {
		fmt.Fprintf(&b, "%d,", l.ID)
	}
	b.WriteByte('|')
	keys := make([]string, 0, len(s.Label))
	for k := range s.Label {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		vs := append([]string(nil), s.Label[k]...)
		sort.Strings(vs)
		for _, v := range vs {
			fmt.Fprintf(&b, "%q=%q,", k, v)
		}
	}
	return b.String()
}

// queryWindow is a [start, end] in ms that holds the profile's own time
// (the test profiles are years old) and now.
func queryWindow(timeNanos int64) (start, end int64) {
	now := time.Now()
	ts := now.UnixNano()
	if timeNanos > 0 && timeNanos < ts {
		ts = timeNanos
	}
	start = max(ts/int64(time.Millisecond)-int64(time.Hour/time.Millisecond), 1)
	return start, now.Add(time.Hour).UnixMilli()
}

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
	out.perPush = expectedTotals(q)
	if fmt.Sprint(out.perPush) != fmt.Sprint(prof.perPush) {
		t.Fatalf("%s re-encoded: per-push totals %v, the file's %v", prof.rel, out.perPush, prof.perPush)
	}
	return &out
}
