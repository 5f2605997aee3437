package sweep

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// gen draws one request's parameters from a PRNG seeded by the run's seed
// and the request's index, so that any request can be replayed alone.
type gen struct {
	r *rand.Rand
	w *world
}

func newGen(seed uint64, stream, i int, w *world) *gen {
	return &gen{r: rand.New(rand.NewPCG(seed, uint64(stream)<<32|uint64(i))), w: w}
}

func (g *gen) n(n int) int            { return g.r.IntN(n) }
func (g *gen) p(prob float64) bool    { return g.r.Float64() < prob }
func (g *gen) pick(s []string) string { return s[g.r.IntN(len(s))] }

// huge is a 100 KB string, the "huge selector" of the issue.
var huge = strings.Repeat("x", 100<<10)

// labelName is a label name to ask for: the data's own (legacy, dotted,
// UTF-8), reserved ones, missing ones and malformed ones.
func (g *gen) labelName() string {
	switch g.n(10) {
	case 0:
		return g.pick([]string{"", " ", "a b", "x\x00y", "x\ny", "\xff\xfe", strings.Repeat("n", 2048), "{", "\"", "=~"})
	case 1:
		return g.pick([]string{"missing_label", "__profile_type__", "__name__", "__type__", "__service_name__", "__session_id__"})
	default:
		return g.pick(g.w.labelNames)
	}
}

// labelValue is a value to match: the data's own, empty, regex-looking,
// quoting trouble, invalid UTF-8, huge.
func (g *gen) labelValue() string {
	switch g.n(12) {
	case 0:
		return g.pick([]string{"", "*", ".*", ".+", "\\", "\"", "\x00", "\xff", "h1", "ünï", "名前", "\u2028"})
	case 1:
		return huge
	default:
		return g.pick(g.w.labelValues)
	}
}

// quote writes s as a FlameQL string: usually Go-quoted (valid escapes),
// sometimes raw in backquotes or single quotes, sometimes unterminated.
func (g *gen) quote(s string) string {
	switch g.n(10) {
	case 0:
		return "`" + s + "`"
	case 1:
		return "'" + strings.ReplaceAll(s, "'", "\\'") + "'"
	case 2:
		return "\"" + s // unterminated or raw bytes
	default:
		return strconv.Quote(s)
	}
}

// matcherName writes a label name as FlameQL allows (bare, or quoted for
// UTF-8 names) or not.
func (g *gen) matcherName(n string) string {
	if g.p(0.3) || strings.ContainsAny(n, ".- \"{}") {
		if g.p(0.5) {
			return strconv.Quote(n)
		}
	}
	return n
}

var ops = []string{"=", "!=", "=~", "!~"}

// regex is a regular expression: a value's, a prefix, a broken one or one
// that backtracks.
func (g *gen) regex() string {
	switch g.n(8) {
	case 0:
		return g.pick([]string{"(", "[", "*", "a{99999}", "(?<n>", "\\", "(a*)*b", "(a|aa)*$", "(x+x+)+y", "\\1", "(?=a)", "\\p{Zz}"})
	case 1:
		return strings.Repeat("(", 300) + strings.Repeat(")", 300)
	case 2:
		return ".*" + g.labelValue() + ".*"
	default:
		v := g.pick(g.w.labelValues)
		return regexpQuoteMeta(v[:g.n(len(v)+1)]) + ".*"
	}
}

func regexpQuoteMeta(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// matchers is the inside of a {...} selector.
func (g *gen) matchers() string {
	k := g.n(4)
	if g.p(0.02) {
		k = 2000 // many matchers
	}
	parts := make([]string, 0, k)
	for i := 0; i < k; i++ {
		op := ops[g.n(len(ops))]
		v := g.labelValue()
		if k > 100 {
			v = g.pick(g.w.labelValues) // many matchers, not many huge ones
		}
		if op == "=~" || op == "!~" {
			v = g.regex()
		}
		name := g.labelName()
		if g.p(0.5) {
			name = g.pick([]string{"service_name", "service_name", "service.name", "k8s.pod.name", "host.name"})
		}
		parts = append(parts, g.matcherName(name)+op+g.quote(v))
	}
	sep := ","
	if g.p(0.05) {
		sep = g.pick([]string{" , ", ",,", " and ", ";", ""})
	}
	return strings.Join(parts, sep)
}

// selector is a FlameQL selector: mostly well formed over the data's own
// labels, sometimes empty, huge or broken.
func (g *gen) selector() string {
	switch g.n(20) {
	case 0:
		return ""
	case 1:
		return g.pick([]string{"{", "}", "{service_name=}", "{service_name=\"x\"", "{=\"a\"}", "{{}}",
			"{a=\"b\"}{c=\"d\"}", "{service_name~\"x\"}", "{,}", "{a=\"b\",}", "\x00", "{\xff=\"a\"}",
			strings.Repeat("{", 10000), "app.cpu{", "{a=\"\\z\"}", "{a=\"\\u00\"}", "{a=\"\\xZZ\"}"})
	case 2:
		return "{service_name=\"" + huge + "\"}"
	case 3:
		return huge
	case 4:
		return "{service_name=~\"" + strings.Repeat("a|", 50<<10) + "b\"}"
	case 5:
		return g.typeID() + "{" + g.matchers() + "}"
	case 6:
		return g.pick(g.w.apps) + "{" + g.matchers() + "}"
	default:
		return "{" + g.matchers() + "}"
	}
}

// typeID is a profile type id: the data's own, unknown, malformed.
func (g *gen) typeID() string {
	switch g.n(10) {
	case 0:
		return g.pick([]string{"", "a", "a:b", "::::", ":::::", "a:b:c:d:e:f", ":cpu:nanoseconds:cpu:nanoseconds",
			"process_cpu:cpu:nanoseconds:cpu", "x:y:z:w:v", "ünï:b:c:d:e", "a\x00b:c:d:e:f", huge})
	default:
		return g.pick(g.w.typeIDs)
	}
}

// timeRange is [start, end] in ms: the data's window mostly, else
// inverted, zero, negative, max int64, nanoseconds where ms are due.
func (g *gen) timeRange() (int64, int64) {
	s, e := g.w.start, g.w.end
	switch g.n(14) {
	case 0:
		return e, s
	case 1:
		return 0, 0
	case 2:
		return 0, math.MaxInt64
	case 3:
		return math.MinInt64, math.MaxInt64
	case 4:
		return -1, -1
	case 5:
		return math.MaxInt64, math.MaxInt64
	case 6:
		return s * 1e6, e * 1e6 // nanoseconds
	case 7:
		return math.MinInt64, 0
	case 8:
		now := time.Now().UnixMilli()
		return now, now
	case 9:
		return 1, math.MaxInt64 - 1
	default:
		return s, e
	}
}

// step is a SelectSeries/SelectHeatmap step in seconds.
func (g *gen) step(start, end int64) float64 {
	switch g.n(10) {
	case 0:
		return []float64{0, -1, math.NaN(), math.Inf(1), math.Inf(-1), 1e-9, 1e-3, math.MaxFloat64, -math.MaxFloat64, 5e-324}[g.n(10)]
	case 1:
		return 1 // one second over whatever the range is
	default:
		return math.Max(float64(end-start)/1000/float64(1+g.n(200)), 1)
	}
}

// maxNodes is a max_nodes value (nil: absent).
func (g *gen) maxNodes() *int64 {
	vs := []int64{0, 0, 1, 2, 16, 100, 8192, 65536, 1048576, 1048577, -1, math.MaxInt64, math.MinInt64}
	if g.p(0.3) {
		return nil
	}
	v := vs[g.n(len(vs))]
	return &v
}

// limit is a limit value (nil: absent).
func (g *gen) limit() *int64 {
	if g.p(0.5) {
		return nil
	}
	v := []int64{0, 1, 2, 10, -1, math.MaxInt64, math.MinInt64}[g.n(7)]
	return &v
}

// groupBy is a group_by list: the data's labels, missing, dotted, many.
func (g *gen) groupBy() []string {
	switch g.n(8) {
	case 0:
		return nil
	case 1:
		out := make([]string, 200)
		for i := range out {
			out[i] = g.labelName()
		}
		return out
	case 2:
		return []string{"", ""}
	default:
		out := make([]string, 1+g.n(3))
		for i := range out {
			out[i] = g.labelName()
		}
		return out
	}
}

// ids are profile id selectors: pushed ids, random, empty, many.
func (g *gen) ids() []string {
	switch g.n(8) {
	case 0:
		return []string{""}
	case 1:
		out := make([]string, 5000)
		for i := range out {
			out[i] = fmt.Sprintf("%08x-0000-4000-8000-%012x", g.r.Uint32(), g.r.Uint64()&0xffffffffffff)
		}
		return out
	case 2:
		return []string{huge}
	case 3, 4:
		return []string{g.pick(g.w.profileIDs)}
	default:
		return nil
	}
}

// spans are span selectors (16 hex digits when well formed).
func (g *gen) spans() []string {
	switch g.n(6) {
	case 0:
		return []string{""}
	case 1:
		return []string{"zz", "1", "00000000000000000", "0000000000000001", "ffffffffffffffff"}
	case 2:
		out := make([]string, 3000)
		for i := range out {
			out[i] = fmt.Sprintf("%016x", g.r.Uint64())
		}
		return out
	case 3:
		return []string{huge}
	default:
		return []string{fmt.Sprintf("%016x", g.r.Uint64())}
	}
}

// tenant is the X-Scope-OrgID to send: one of the data's tenants mostly,
// several, none, unknown or invalid.
func (g *gen) tenant() string {
	switch g.n(16) {
	case 0:
		return ""
	case 1:
		return g.pick([]string{"|", "a|", "..", ".", "a/b", "x\ty", "ünï", strings.Repeat("t", 200), "a|b|c|d|e|f|g"})
	case 2:
		return g.w.tenants[0] + "|" + g.w.tenants[1]
	case 3:
		return g.w.tenants[0] + "|" + g.w.tenants[0]
	case 4:
		return g.pick([]string{"unknown-tenant", g.w.ingestTenant, g.w.ingestTenant + "|" + g.w.tenants[0]})
	case 5, 6:
		return g.w.tenants[1]
	default:
		return g.w.tenants[0]
	}
}

// garbage is random bytes, sometimes a valid body cut or with flipped
// bytes.
func (g *gen) garbage(valid []byte) []byte {
	switch {
	case len(valid) > 0 && g.p(0.4):
		b := append([]byte(nil), valid[:g.n(len(valid)+1)]...)
		return b
	case len(valid) > 0 && g.p(0.5):
		b := append([]byte(nil), valid...)
		for k := 0; k < 1+g.n(8); k++ {
			b[g.n(len(b))] = byte(g.r.Uint32())
		}
		return b
	default:
		b := make([]byte, g.n(512))
		for i := range b {
			b[i] = byte(g.r.Uint32())
		}
		return b
	}
}
