package peer

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/pprof/profile"

	googlev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"

	"kiln.dev/tests/lib/kilntest"
)

// manifestRow is one file row of a MANIFEST.md table.
type manifestRow struct {
	rel       string // path relative to the test data root
	format    string
	notes     string
	malformed bool
}

// readManifest parses the "| `file` | original | producer | format | size |
// decoded | notes | sha |" rows of dir/MANIFEST.md. Paths are returned
// relative to root.
func readManifest(t *testing.T, root, dir string) []manifestRow {
	t.Helper()
	lines, err := kilntest.ReadLines(filepath.Join(root, dir, "MANIFEST.md"))
	if err != nil {
		t.Fatalf("manifest: %v", err)
	}
	var rows []manifestRow
	for _, line := range lines {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cols := strings.Split(line, "|")
		if len(cols) != 10 {
			t.Logf("manifest %s: skipping row with %d columns: %.80s", dir, len(cols), line)
			continue
		}
		file := strings.Trim(strings.TrimSpace(cols[1]), "`")
		notes := strings.TrimSpace(cols[7])
		rows = append(rows, manifestRow{
			rel:       path.Join(dir, file),
			format:    strings.TrimSpace(cols[4]),
			notes:     notes,
			malformed: strings.Contains(notes, "MALFORMED"),
		})
	}
	if len(rows) == 0 {
		t.Fatalf("manifest %s: no rows", dir)
	}
	return rows
}

// profileCase is one pprof file with the figures the server must return,
// computed here with github.com/google/pprof/profile.
type profileCase struct {
	rel     string
	raw     []byte // the file's bytes, exactly as on disk
	prof    *profile.Profile
	name    string   // __name__
	typeIDs []string // one per sample type
	// expected[i] is the flame graph total for sample type i: the sum of
	// value[i] over the samples that Pyroscope keeps (at least one value > 0
	// after merging identical stacks+labels, as pprof.Normalize does) and that
	// have at least one location (a stackless sample cannot be a flame graph
	// node).
	expected []int64
	// frameless[i]: value[i] over the kept samples without a location:
	// not in the flame graph, but in SelectSeries' totals as in Pyroscope.
	frameless []int64
	rawSum    []int64 // plain sum over all samples, for the log
	// symbolized[i]: like expected, but only samples with at least one
	// location that has a line (function); differs for unsymbolized stacks.
	symbolized []int64
	// negative[i]: some kept sample has a negative value[i] (delta
	// profiles); node-level flame graph invariants do not hold then.
	negative  []bool
	timeNanos int64
}

func loadProfileCase(t *testing.T, root, rel string) (*profileCase, error) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		return nil, err
	}
	p, err := profile.ParseData(raw)
	if err != nil {
		return nil, err
	}
	c := &profileCase{rel: rel, raw: raw, prof: p, timeNanos: p.TimeNanos}
	c.name = kilntest.DeriveName(p, rel)
	for _, st := range p.SampleType {
		c.typeIDs = append(c.typeIDs, kilntest.ProfileTypeID(c.name, st, p.PeriodType))
	}
	c.expected, c.rawSum, c.symbolized, c.negative = expectedTotals(p)
	c.frameless = make([]int64, len(p.SampleType))
	for _, g := range keptGroups(p) {
		for i := range g.v {
			if !g.stack && i < len(c.frameless) {
				c.frameless[i] += g.v[i]
			}
		}
	}
	return c, nil
}

func hasLines(s *profile.Sample) bool {
	for _, l := range s.Location {
		if len(l.Line) > 0 {
			return true
		}
	}
	return false
}

// keptGroup is one set of identical samples (same locations, same string
// labels) with summed values, as upstream pprof.Normalize merges them.
type keptGroup struct {
	v       []int64
	labels  map[string][]string
	stack   bool // has at least one location
	symbols bool // has at least one location with a line
}

// keptGroups returns the merged sample groups upstream keeps: those with at
// least one value > 0 (pprof.Normalize drops the others).
func keptGroups(p *profile.Profile) []*keptGroup {
	n := len(p.SampleType)
	groups := map[string]*keptGroup{}
	var order []string
	for _, s := range p.Sample {
		k := kilntest.SampleKey(s)
		g, ok := groups[k]
		if !ok {
			g = &keptGroup{v: make([]int64, n), labels: s.Label, stack: len(s.Location) > 0, symbols: hasLines(s)}
			groups[k] = g
			order = append(order, k)
		}
		for i := 0; i < n && i < len(s.Value); i++ {
			g.v[i] += s.Value[i]
		}
	}
	var out []*keptGroup
	for _, k := range order {
		g := groups[k]
		for _, v := range g.v {
			if v > 0 {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

func expectedTotals(p *profile.Profile) (expected, rawSum, symbolized []int64, negative []bool) {
	n := len(p.SampleType)
	negative = make([]bool, n)
	expected = make([]int64, n)
	rawSum = make([]int64, n)
	symbolized = make([]int64, n)
	for _, s := range p.Sample {
		for i := 0; i < n && i < len(s.Value); i++ {
			rawSum[i] += s.Value[i]
		}
	}
	for _, g := range keptGroups(p) {
		if !g.stack {
			continue
		}
		for i := range g.v {
			if g.v[i] < 0 {
				negative[i] = true
			}
			expected[i] += g.v[i]
			if g.symbols {
				symbolized[i] += g.v[i]
			}
		}
	}
	return expected, rawSum, symbolized, negative
}

// seriesLabelKeys are the pprof string label keys that upstream keeps per
// sample instead of turning them into series labels (pprofsplit; profile_id
// is renamed to span_id).
var seriesLabelKeys = map[string]bool{"trace_id": false, "span_id": false, "profile_id": false}

// pprofSeriesLabels returns, for every pprof string label key that becomes
// a series label upstream, the values of the kept samples.
func pprofSeriesLabels(p *profile.Profile) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, g := range keptGroups(p) {
		for k, vs := range g.labels {
			if keep, listed := seriesLabelKeys[k]; listed && !keep {
				continue
			}
			if k == "service_name" || k == "__name__" || strings.HasPrefix(k, "__") {
				continue
			}
			for _, v := range vs {
				if v == "" {
					continue
				}
				if out[k] == nil {
					out[k] = map[string]bool{}
				}
				out[k][v] = true
			}
		}
	}
	return out
}

// labelFilteredTotal is the expected total of sample type i over the kept
// samples whose pprof label key has the given value.
func labelFilteredTotal(p *profile.Profile, i int, key, value string) int64 {
	var sum int64
	for _, g := range keptGroups(p) {
		if g.stack && slices.Contains(g.labels[key], value) {
			sum += g.v[i]
		}
	}
	return sum
}

// queryWindow is the [start, end] (ms) the contract asks for: from one hour
// before the profile time (or now, if earlier / unset) to one hour from now.
func queryWindow(timeNanos int64, now time.Time) (start, end int64) {
	ts := now.UnixNano()
	if timeNanos > 0 && timeNanos < ts {
		ts = timeNanos
	}
	start = ts/int64(time.Millisecond) - int64(time.Hour/time.Millisecond)
	if start < 1 {
		start = 1
	}
	end = now.Add(time.Hour).UnixMilli()
	return start, end
}

// heaviestLeaf returns the function name with the largest flat value for
// sample type i (leaf = innermost line of the first location).
func heaviestLeaf(p *profile.Profile, i int) (string, int64) {
	flat := map[string]int64{}
	for _, s := range p.Sample {
		if len(s.Location) == 0 || len(s.Location[0].Line) == 0 || s.Location[0].Line[0].Function == nil {
			continue
		}
		flat[s.Location[0].Line[0].Function.Name] += s.Value[i]
	}
	best, bestV := "", int64(-1)
	for name, v := range flat {
		if v > bestV || (v == bestV && name < best) {
			best, bestV = name, v
		}
	}
	return best, bestV
}

// fgNode is one decoded flame graph node.
type fgNode struct {
	level          int
	x, total, self int64
	name           int64
}

// decodeFlameGraph checks the structural invariants of a flame graph and
// returns its nodes. Every violated invariant is one string in problems.
// With full unset (profiles with negative values) only the root, the
// level-1 sum and the name indexes are checked.
func decodeFlameGraph(fg *querierv1.FlameGraph, full bool) (nodes [][]fgNode, problems []string) {
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if fg == nil {
		return nil, []string{"flame graph is missing"}
	}
	if len(fg.Names) == 0 || fg.Names[0] != "total" {
		bad("names[0] = %q, want \"total\"", first(fg.Names))
	}
	if len(fg.Levels) == 0 {
		return nil, append(problems, "no levels")
	}
	var maxSelf int64
	for li, l := range fg.Levels {
		v := l.GetValues()
		if len(v)%4 != 0 {
			bad("level %d has %d values, not a multiple of 4", li, len(v))
			return nodes, problems
		}
		var prevEnd int64
		var level []fgNode
		for j := 0; j < len(v); j += 4 {
			n := fgNode{level: li, x: prevEnd + v[j], total: v[j+1], self: v[j+2], name: v[j+3]}
			if full && v[j] < 0 {
				bad("level %d node %d: negative x delta %d", li, j/4, v[j])
			}
			if n.name < 0 || n.name >= int64(len(fg.Names)) {
				bad("level %d node %d: name index %d out of range [0,%d)", li, j/4, n.name, len(fg.Names))
			}
			if n.total < 0 || n.self < 0 {
				if full {
					bad("level %d node %d: negative total %d or self %d", li, j/4, n.total, n.self)
				}
			} else if full && n.self > n.total {
				bad("level %d node %d: self %d > total %d", li, j/4, n.self, n.total)
			}
			if n.self > maxSelf {
				maxSelf = n.self
			}
			prevEnd = n.x + n.total
			level = append(level, n)
		}
		nodes = append(nodes, level)
	}
	root := fg.Levels[0].GetValues()
	if len(root) != 4 || root[0] != 0 || root[1] != fg.Total || root[2] != 0 || root[3] != 0 {
		bad("levels[0] = %v, want [0 %d 0 0]", root, fg.Total)
	}
	if len(nodes) > 1 {
		var sum int64
		for _, n := range nodes[1] {
			sum += n.total
		}
		if sum != fg.Total {
			bad("sum of level-1 totals = %d, want total %d", sum, fg.Total)
		}
	} else if fg.Total != 0 {
		bad("total %d but no level 1", fg.Total)
	}
	if full {
		if fg.MaxSelf != maxSelf {
			bad("max_self = %d, want %d (largest self)", fg.MaxSelf, maxSelf)
		}
		// Children of a node lie in [x+self, x+total) and their totals add
		// up to total-self.
		for li := 0; li+1 < len(nodes); li++ {
			parents, children := nodes[li], nodes[li+1]
			sums := make([]int64, len(parents))
			p := 0
			for ci, c := range children {
				if c.total == 0 {
					continue
				}
				for p < len(parents) && parents[p].x+parents[p].total <= c.x {
					p++
				}
				if p == len(parents) || c.x < parents[p].x+parents[p].self || c.x+c.total > parents[p].x+parents[p].total {
					bad("level %d node %d (x=%d total=%d) lies in no parent's child range", li+1, ci, c.x, c.total)
					break
				}
				sums[p] += c.total
			}
			for pi, pn := range parents {
				if sums[pi] != pn.total-pn.self {
					bad("level %d node %d (%s): children total %d, want total-self %d",
						li, pi, nameOf(fg, pn.name), sums[pi], pn.total-pn.self)
					break
				}
			}
		}
	}
	return nodes, problems
}

func nameOf(fg *querierv1.FlameGraph, i int64) string {
	if i >= 0 && i < int64(len(fg.Names)) {
		return fg.Names[i]
	}
	return fmt.Sprintf("#%d", i)
}

func first(s []string) string {
	if len(s) == 0 {
		return "<none>"
	}
	return s[0]
}

// sanitizeService turns a file path into a service_name value.
func sanitizeService(transport, rel string) string {
	r := strings.Map(func(c rune) rune {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
			return c
		}
		return '-'
	}, rel)
	return "peer-" + transport + "-" + r
}

// upstreamRejection says why upstream Pyroscope (pkg/validation
// ValidateProfile with the default limits, doc 7) rejects the raw profile
// with invalid_argument, or "" when it accepts it. The profile is decoded
// the way the distributor does (optional gzip, then google.v1.Profile
// without UTF-8 checks). The ingestion time window (reject-older-than) is
// not applied: the contract keeps old profile timestamps. Unlike upstream,
// Kiln ingests location or function id 0 and '-' in sample type names (its
// normaliser repairs ids, as issue 3 asks), so those are not rejections here.
func upstreamRejection(raw []byte) string {
	data := raw
	if len(raw) >= 2 && raw[0] == 0x1f && raw[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return "gzip: " + err.Error()
		}
		if data, err = io.ReadAll(zr); err != nil {
			return "gzip: " + err.Error()
		}
	} else if len(raw) == 0 {
		return "empty body (not gzip, gzip reader fails)"
	}
	var p googlev1.Profile
	if err := p.UnmarshalVT(data); err != nil {
		return "decode: " + err.Error()
	}
	const maxSize, maxSamples, maxSampleLabels = 4 << 20, 16000, 100
	if len(data) > maxSize {
		return fmt.Sprintf("%d bytes > max_profile_size_bytes %d", len(data), maxSize)
	}
	if len(p.Sample) > maxSamples {
		return fmt.Sprintf("%d samples > max_profile_stacktrace_samples %d", len(p.Sample), maxSamples)
	}
	for _, s := range p.Sample {
		if len(s.Label) > maxSampleLabels {
			return fmt.Sprintf("a sample has %d labels > max_profile_stacktrace_sample_labels %d", len(s.Label), maxSampleLabels)
		}
	}
	for i, s := range p.StringTable {
		if !utf8.ValidString(s) {
			return fmt.Sprintf("string_table[%d] is not valid UTF-8", i)
		}
	}
	return ""
}
