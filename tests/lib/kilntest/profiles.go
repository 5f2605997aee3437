package kilntest

import (
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

// Profile is one pprof file of the test data and what one push of it adds
// to the flame graph total of each sample type, computed here with
// github.com/google/pprof, independently of kiln.
type Profile struct {
	Rel       string   // path under KILN_TESTDATA
	Raw       []byte   // the file's bytes as on disk (pushed as is)
	Name      string   // __name__ a Pyroscope push gives it
	TypeIDs   []string // profile type ids, one per sample type
	PerPush   []int64  // flame graph total of one push, per sample type
	TimeNanos int64
}

// LoadProfile reads root/rel and computes its per-push totals; the test
// fails when the file does not parse or every sample type totals 0.
func LoadProfile(t testing.TB, root, rel string) *Profile {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	p, err := profile.ParseData(raw)
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	pc := &Profile{Rel: rel, Raw: raw, Name: DeriveName(p, rel), TimeNanos: p.TimeNanos}
	for _, st := range p.SampleType {
		pc.TypeIDs = append(pc.TypeIDs, ProfileTypeID(pc.Name, st, p.PeriodType))
	}
	pc.PerPush = ExpectedTotals(p)
	nonZero := false
	for _, v := range pc.PerPush {
		nonZero = nonZero || v != 0
	}
	if !nonZero {
		t.Fatalf("%s: every sample type totals 0; useless for counting", rel)
	}
	t.Logf("profile %s: __name__=%s time=%s types=%v per-push totals=%v", rel, pc.Name,
		time.Unix(0, pc.TimeNanos).UTC().Format(time.RFC3339), pc.TypeIDs, pc.PerPush)
	return pc
}

// Totals returns the per-type totals of n pushes.
func (p *Profile) Totals(n int64) []int64 {
	out := make([]int64, len(p.PerPush))
	for i, v := range p.PerPush {
		out[i] = v * n
	}
	return out
}

// Pushes turns per-type totals into a number of pushes: every type's
// total must be the same whole multiple of its per-push total.
func (p *Profile) Pushes(totals []int64) (int64, error) {
	n := int64(-1)
	for i, per := range p.PerPush {
		if per == 0 {
			if totals[i] != 0 {
				return 0, fmt.Errorf("%s: total %d where one push adds 0", p.TypeIDs[i], totals[i])
			}
			continue
		}
		if totals[i]%per != 0 {
			return 0, fmt.Errorf("%s: total %d is not a multiple of the per-push total %d", p.TypeIDs[i], totals[i], per)
		}
		m := totals[i] / per
		if n >= 0 && m != n {
			return 0, fmt.Errorf("sample types disagree: totals %v are %d pushes for one type and %d for another (per push %v)",
				totals, n, m, p.PerPush)
		}
		n = m
	}
	return n, nil
}

// ProfileTypeID is name:sample type:unit:period type:unit.
func ProfileTypeID(name string, st, pt *profile.ValueType) string {
	ptType, ptUnit := "", ""
	if pt != nil {
		ptType, ptUnit = pt.Type, pt.Unit
	}
	return strings.Join([]string{name, st.Type, st.Unit, ptType, ptUnit}, ":")
}

var nonNameChars = regexp.MustCompile(`[^a-z0-9_]+`)

// DeriveName picks __name__ as a Pyroscope pprof push names its kinds:
// wall, cpu/samples -> process_cpu, alloc/inuse/space/objects -> memory,
// goroutine, mutex, block; otherwise the sanitized file name.
func DeriveName(p *profile.Profile, rel string) string {
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

// ExpectedTotals is the flame graph total per sample type of one push: the
// samples with identical stacks and string labels are merged, groups whose
// values are all <= 0 are dropped (as pprof normalisation does), and
// stackless samples cannot be flame graph nodes.
func ExpectedTotals(p *profile.Profile) []int64 {
	n := len(p.SampleType)
	type group struct {
		v     []int64
		stack bool
	}
	groups := map[string]*group{}
	var order []string
	for _, s := range p.Sample {
		k := SampleKey(s)
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

// SampleKey identifies a sample by its stack (location ids) and its labels,
// so that duplicates can be summed as Kiln sums them.
func SampleKey(s *profile.Sample) string {
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

// QueryWindow is a [start, end] in ms that holds the profile's own time
// (the test profiles are years old) and now.
func QueryWindow(timeNanos int64) (start, end int64) {
	now := time.Now()
	ts := now.UnixNano()
	if timeNanos > 0 && timeNanos < ts {
		ts = timeNanos
	}
	start = max(ts/int64(time.Millisecond)-int64(time.Hour/time.Millisecond), 1)
	return start, now.Add(time.Hour).UnixMilli()
}
