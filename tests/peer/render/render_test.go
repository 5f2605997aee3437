package render

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/pprof/profile"

	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"kiln.dev/tests/lib/kilntest"
)

const cpuType = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"

// pushed is one pprof file pushed as one service, with the figures the
// server must return, computed here from the file.
type pushed struct {
	rel     string
	service string
	prof    *profile.Profile
	timeMs  int64
	cpu     int64    // sum of cpu/nanoseconds over samples with a stack
	typeIDs []string // process_cpu:<type>:<unit>:<period type>:<period unit>
}

// loadAndPush reads a Go CPU profile from the test data and pushes it,
// unchanged, as service with __name__ process_cpu.
func loadAndPush(t *testing.T, c *kilntest.Clients, root, rel, service string) *pushed {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	p, err := profile.ParseData(raw)
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	if p.TimeNanos == 0 {
		t.Fatalf("%s: no time_nanos", rel)
	}
	f := &pushed{rel: rel, service: service, prof: p, timeMs: p.TimeNanos / 1e6}
	cpu := -1
	for i, st := range p.SampleType {
		f.typeIDs = append(f.typeIDs, strings.Join([]string{"process_cpu", st.Type, st.Unit,
			p.PeriodType.Type, p.PeriodType.Unit}, ":"))
		if st.Type == "cpu" && st.Unit == "nanoseconds" {
			cpu = i
		}
	}
	if cpu < 0 {
		t.Fatalf("%s: no cpu/nanoseconds sample type", rel)
	}
	for _, s := range p.Sample {
		if len(s.Location) > 0 {
			f.cpu += s.Value[cpu]
		}
	}
	ctx, cancel := kilntest.ReqCtxTimeout(t, requestTimeout)
	defer cancel()
	_, err = c.Push.Push(ctx, connect.NewRequest(&pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
		Labels: []*typesv1.LabelPair{
			{Name: "__name__", Value: "process_cpu"},
			{Name: "service_name", Value: service},
		},
		Samples: []*pushv1.RawSample{{RawProfile: raw, ID: kilntest.NewUUID()}},
	}}}))
	if err != nil {
		t.Fatalf("push %s: %v", rel, err)
	}
	t.Logf("pushed %s as %s: time %s, cpu total %d", rel, service,
		time.UnixMilli(f.timeMs).UTC().Format(time.RFC3339), f.cpu)
	return f
}

// requestTimeout bounds one request of the render tests.
const requestTimeout = 15 * time.Second

// startServer starts kiln (kilntest.Start) accepting old profiles, any
// ingestion rate and any query range.
func startServer(t *testing.T) *kilntest.Server {
	t.Helper()
	return kilntest.Start(t, kilntest.Args(
		"-validation.reject-older-than=0",
		"-distributor.ingestion-rate-limit-mb=0",
		// The files are years old, and one query spans both.
		"-querier.max-query-lookback=0",
		"-querier.max-query-length=0",
	))
}

// fixture is a server holding two files of one tenant, pushed as two
// services at their own (old) times.
type fixture struct {
	s    *kilntest.Server
	c    *kilntest.Clients
	a, b *pushed
}

func setup(t *testing.T) *fixture {
	t.Helper()
	_, root := kilntest.RequireEnv(t)
	s := startServer(t)
	c := s.Clients(t, "render-"+kilntest.RandomHex(6))
	a := loadAndPush(t, c, root, "grafana-pyroscope/go.cpu.labels.pprof", "render_a")
	b := loadAndPush(t, c, root, "grafana-pyroscope/cpu_go_truncated_1.pb.gz", "render_b")
	return &fixture{s: s, c: c, a: a, b: b}
}

// around is [t - 1h, t + 1h] in ms.
func around(p *pushed) (int64, int64) {
	return p.timeMs - time.Hour.Milliseconds(), p.timeMs + time.Hour.Milliseconds()
}

func TestRender(t *testing.T) {
	f := setup(t)
	t.Run("diff_rpc", f.testDiffRPC)
	t.Run("render_json", f.testRenderJSON)
	t.Run("render_legacy_query", f.testRenderLegacy)
	t.Run("render_group_by", f.testRenderGroupBy)
	t.Run("render_dot", f.testRenderDot)
	t.Run("render_diff", f.testRenderDiff)
	t.Run("label_values", f.testLabelValues)
	t.Run("errors", f.testErrors)
}

// ---- Diff through the upstream Connect client ----

func (f *fixture) diff(t *testing.T, maxNodes int64) (*querierv1.FlameGraphDiff, error) {
	t.Helper()
	la, lb := around(f.a)
	ra, rb := around(f.b)
	ctx, cancel := kilntest.ReqCtxTimeout(t, requestTimeout)
	defer cancel()
	resp, err := f.c.Query.Diff(ctx, connect.NewRequest(&querierv1.DiffRequest{
		Left: &querierv1.SelectMergeStacktracesRequest{
			ProfileTypeID: cpuType, LabelSelector: `{service_name="render_a"}`,
			Start: la, End: lb, MaxNodes: &maxNodes,
		},
		// The right side selects every service, but only b lies in its range.
		Right: &querierv1.SelectMergeStacktracesRequest{
			ProfileTypeID: cpuType, LabelSelector: `{}`, Start: ra, End: rb, MaxNodes: &maxNodes,
		},
	}))
	if err != nil {
		return nil, err
	}
	return resp.Msg.Flamegraph, nil
}

func (f *fixture) testDiffRPC(t *testing.T) {
	for _, maxNodes := range []int64{0, 20} {
		d, err := f.diff(t, maxNodes)
		if err != nil {
			t.Fatalf("Diff max_nodes %d: %v", maxNodes, err)
		}
		if d.LeftTicks != f.a.cpu || d.RightTicks != f.b.cpu || d.Total != f.a.cpu+f.b.cpu {
			t.Errorf("max_nodes %d: ticks %d/%d total %d, want %d/%d total %d", maxNodes,
				d.LeftTicks, d.RightTicks, d.Total, f.a.cpu, f.b.cpu, f.a.cpu+f.b.cpu)
		}
		levels := make([][]int64, len(d.Levels))
		for i, l := range d.Levels {
			levels[i] = l.Values
		}
		kept := checkDiffLevels(t, d.Names, levels, d.LeftTicks, d.RightTicks, d.MaxSelf, maxNodes)
		t.Logf("max_nodes %d: %d levels, %d names, %d nodes besides \"other\"", maxNodes,
			len(levels), len(d.Names), kept)
	}
	// Both sides are checked like SelectMergeStacktraces requests.
	ctx, cancel := kilntest.ReqCtxTimeout(t, requestTimeout)
	defer cancel()
	_, err := f.c.Query.Diff(ctx, connect.NewRequest(&querierv1.DiffRequest{
		Left: &querierv1.SelectMergeStacktracesRequest{ProfileTypeID: cpuType, Start: 1, End: 2},
	}))
	if connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Errorf("Diff without a right side: %v, want invalid_argument", err)
	}
}

// checkDiffLevels checks the 7-value layout [xL, totalL, selfL, xR, totalR,
// selfR, name] on both sides, and truncation: nodes besides "other" (root
// included) whose larger total exceeds the smallest such total number
// fewer than maxNodes (ties with the threshold are kept, so more may be
// drawn). Returns how many nodes are not "other".
func checkDiffLevels(t *testing.T, names []string, levels [][]int64, left, right, maxSelf, maxNodes int64) int {
	t.Helper()
	if len(names) == 0 || names[0] != "total" {
		t.Fatalf("names[0] = %q, want total", names)
	}
	if len(levels) == 0 || !slices.Equal(levels[0], []int64{0, left, 0, 0, right, 0, 0}) {
		t.Fatalf("levels[0] = %v, want [0 %d 0 0 %d 0 0]", levels[0], left, right)
	}
	var gotMax int64
	kept := []int64{max(left, right)}
	for l, lv := range levels {
		if len(lv)%7 != 0 {
			t.Fatalf("level %d has %d values", l, len(lv))
		}
		for i := 0; i < len(lv); i += 7 {
			if lv[i+6] < 0 || int(lv[i+6]) >= len(names) {
				t.Fatalf("level %d: name index %d of %d", l, lv[i+6], len(names))
			}
			if l > 0 && names[lv[i+6]] != "other" {
				kept = append(kept, max(lv[i+1], lv[i+4]))
			}
			gotMax = max(gotMax, lv[i+2], lv[i+5])
		}
	}
	if gotMax != maxSelf {
		t.Errorf("max_self %d, largest self %d", maxSelf, gotMax)
	}
	checkSide(t, "left", levels, 7, 0, left)
	checkSide(t, "right", levels, 7, 3, right)
	if maxNodes > 0 {
		least, above := slices.Min(kept), 0
		for _, v := range kept {
			if v > least {
				above++
			}
		}
		if above >= int(maxNodes) {
			t.Errorf("max_nodes %d: %d nodes above the smallest kept total %d", maxNodes, above, least)
		}
		if !slices.Contains(names, "other") {
			t.Errorf("max_nodes %d: nothing folded into \"other\"", maxNodes)
		}
	}
	return len(kept)
}

type fgNode struct{ x, total, self int64 }

// checkSide decodes one side of a flame graph's levels (width values a
// node, x delta-encoded at index k) and checks that every non-empty node
// lies in its parent's children range, that totals are self plus
// children, and that level 1 sums to the root's total.
func checkSide(t *testing.T, side string, levels [][]int64, width, k int, total int64) {
	t.Helper()
	prev := []fgNode{{0, total, 0}}
	for l := 1; l < len(levels); l++ {
		var cur []fgNode
		sum := make([]int64, len(prev))
		var end, levelSum int64
		p := 0
		for i := k; i < len(levels[l]); i += width {
			v := levels[l][i : i+3]
			if v[0] < 0 || v[1] < 0 || v[2] < 0 || v[2] > v[1] {
				t.Fatalf("%s level %d: bad node %v", side, l, v)
			}
			n := fgNode{end + v[0], v[1], v[2]}
			end = n.x + n.total
			cur = append(cur, n)
			levelSum += n.total
			for p < len(prev) && (prev[p].total == 0 || n.x >= prev[p].x+prev[p].total) {
				p++
			}
			if n.total == 0 {
				continue
			}
			if p == len(prev) || n.x < prev[p].x+prev[p].self || end > prev[p].x+prev[p].total {
				t.Fatalf("%s level %d: node at %d+%d outside its parent", side, l, n.x, n.total)
			}
			sum[p] += n.total
		}
		for i, pn := range prev {
			if pn.total != pn.self+sum[i] {
				t.Errorf("%s level %d: node total %d != self %d + children %d", side, l-1,
					pn.total, pn.self, sum[i])
			}
		}
		if l == 1 && levelSum != total {
			t.Errorf("%s: level 1 sums to %d, want %d", side, levelSum, total)
		}
		prev = cur
	}
}

// ---- /pyroscope/render ----

type timelineJSON struct {
	StartTime     int64    `json:"startTime"`
	Samples       []uint64 `json:"samples"`
	DurationDelta int64    `json:"durationDelta"`
}

type flamebearerJSON struct {
	Version     int `json:"version"`
	Flamebearer struct {
		Names    []string  `json:"names"`
		Levels   [][]int64 `json:"levels"`
		NumTicks int64     `json:"numTicks"`
		MaxSelf  int64     `json:"maxSelf"`
	} `json:"flamebearer"`
	Metadata struct {
		Format     string `json:"format"`
		SpyName    string `json:"spyName"`
		SampleRate uint32 `json:"sampleRate"`
		Units      string `json:"units"`
		Name       string `json:"name"`
	} `json:"metadata"`
	Timeline   *timelineJSON            `json:"timeline"`
	Groups     map[string]*timelineJSON `json:"groups"`
	Heatmap    json.RawMessage          `json:"heatmap"`
	LeftTicks  int64                    `json:"leftTicks"`
	RightTicks int64                    `json:"rightTicks"`
}

// get issues GET path?params with the tenant header and returns the
// status, Content-Type and body.
func (f *fixture) get(t *testing.T, path string, params url.Values) (int, string, []byte) {
	t.Helper()
	ctx, cancel := kilntest.ReqCtxTimeout(t, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.s.HTTPURL()+path+"?"+params.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.c.HTTP.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

func (f *fixture) render(t *testing.T, params url.Values) *flamebearerJSON {
	t.Helper()
	status, ct, body := f.get(t, "/pyroscope/render", params)
	if status != http.StatusOK || !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("render %v: HTTP %d %s: %.300s", params, status, ct, body)
	}
	var fb flamebearerJSON
	if err := json.Unmarshal(body, &fb); err != nil {
		t.Fatalf("render: %v: %.300s", err, body)
	}
	if string(fb.Heatmap) != "null" {
		t.Errorf("heatmap %s, want null", fb.Heatmap)
	}
	return &fb
}

func ms(v int64) string { return fmt.Sprint(v) }

// checkSingle checks a "single" flamebearer against the expected total.
func checkSingle(t *testing.T, fb *flamebearerJSON, want int64) {
	t.Helper()
	b := fb.Flamebearer
	if fb.Version != 1 || fb.Metadata.Format != "single" {
		t.Errorf("version %d format %q", fb.Version, fb.Metadata.Format)
	}
	if fb.Metadata.Units != "samples" || fb.Metadata.SampleRate != 1e9 || fb.Metadata.Name != "cpu" {
		t.Errorf("metadata %+v, want cpu in samples at 1e9", fb.Metadata)
	}
	if b.NumTicks != want {
		t.Errorf("numTicks %d, want %d", b.NumTicks, want)
	}
	if len(b.Levels) == 0 || !slices.Equal(b.Levels[0], []int64{0, want, 0, 0}) || b.Names[0] != "total" {
		t.Fatalf("root %v (%q), want [0 %d 0 0]", b.Levels[0], b.Names[0], want)
	}
	for l, lv := range b.Levels {
		for i := 0; i+3 < len(lv); i += 4 {
			if lv[i+3] < 0 || int(lv[i+3]) >= len(b.Names) {
				t.Fatalf("level %d: name index %d of %d", l, lv[i+3], len(b.Names))
			}
		}
	}
	checkSide(t, "single", b.Levels, 4, 0, b.NumTicks)
}

func timelineSum(tl *timelineJSON) int64 {
	var s int64
	for _, v := range tl.Samples {
		s += int64(v)
	}
	return s
}

func (f *fixture) testRenderJSON(t *testing.T) {
	from, until := around(f.a)
	fb := f.render(t, url.Values{
		"query": {cpuType + `{service_name="render_a"}`},
		"from":  {ms(from)}, "until": {ms(until)},
	})
	checkSingle(t, fb, f.a.cpu)
	tl := fb.Timeline
	if tl == nil {
		t.Fatal("no timeline")
	}
	// 2 h / 1500 is under the 15 s minimum step.
	if tl.DurationDelta != 15 || tl.StartTime != from/1000/15*15 || len(tl.Samples) != 480 {
		t.Errorf("timeline start %d step %d samples %d, want %d, 15, 480", tl.StartTime,
			tl.DurationDelta, len(tl.Samples), from/1000/15*15)
	}
	if got := timelineSum(tl); got != f.a.cpu {
		t.Errorf("timeline sums to %d, want %d", got, f.a.cpu)
	}
	if fb.Groups != nil {
		t.Errorf("groups %v without groupBy", fb.Groups)
	}
	// maxNodes truncates into "other" and keeps the totals.
	fb = f.render(t, url.Values{
		"query": {cpuType + `{service_name="render_a"}`},
		"from":  {ms(from)}, "until": {ms(until)}, "maxNodes": {"10"},
	})
	checkSingle(t, fb, f.a.cpu)
	if !slices.Contains(fb.Flamebearer.Names, "other") {
		t.Errorf("maxNodes=10: no \"other\" in %q", fb.Flamebearer.Names)
	}
}

func (f *fixture) testRenderLegacy(t *testing.T) {
	from, until := around(f.b)
	// Times in seconds, an attime format.
	fb := f.render(t, url.Values{
		"query": {`render_b.cpu{}`},
		"from":  {fmt.Sprint(from / 1000)}, "until": {fmt.Sprint(until / 1000)},
	})
	checkSingle(t, fb, f.b.cpu)
	if got := timelineSum(fb.Timeline); got != f.b.cpu {
		t.Errorf("timeline sums to %d, want %d", got, f.b.cpu)
	}
}

// span is a range around both files with a margin of a tenth of their
// distance (many timeline steps) on each side.
func (f *fixture) span() (int64, int64) {
	lo, hi := min(f.a.timeMs, f.b.timeMs), max(f.a.timeMs, f.b.timeMs)
	margin := (hi-lo)/10 + time.Hour.Milliseconds()
	return lo - margin, hi + margin
}

func (f *fixture) testRenderGroupBy(t *testing.T) {
	from, until := f.span()
	for _, agg := range []string{"sum", "avg"} {
		fb := f.render(t, url.Values{
			"query": {cpuType + `{}`}, "from": {ms(from)}, "until": {ms(until)},
			"groupBy": {"service_name"}, "aggregation": {agg},
		})
		checkSingle(t, fb, f.a.cpu+f.b.cpu)
		got := map[string]int64{}
		for k, tl := range fb.Groups {
			got[k] = timelineSum(tl)
			if tl.DurationDelta != fb.Timeline.DurationDelta || len(tl.Samples) != len(fb.Timeline.Samples) {
				t.Errorf("%s: group %s has another shape than the timeline", agg, k)
			}
		}
		if agg == "sum" {
			want := map[string]int64{"render_a": f.a.cpu, "render_b": f.b.cpu}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("sum: groups %v, want %v", got, want)
			}
			if sum := timelineSum(fb.Timeline); sum != f.a.cpu+f.b.cpu {
				t.Errorf("sum: timeline sums to %d, want %d", sum, f.a.cpu+f.b.cpu)
			}
			continue
		}
		// The pprof labels of file a split it into several series, hence
		// several profiles in its step, averaged; b is one profile.
		if len(got) != 2 || got["render_b"] != f.b.cpu || got["render_a"] <= 0 || got["render_a"] > f.a.cpu {
			t.Errorf("avg: groups %v (sums %d, %d)", got, f.a.cpu, f.b.cpu)
		}
	}
}

var dotNode = regexp.MustCompile(`(?m)^N\d+ \[label="`)

func (f *fixture) testRenderDot(t *testing.T) {
	from, until := around(f.a)
	params := url.Values{
		"query": {cpuType + `{service_name="render_a"}`}, "from": {ms(from)}, "until": {ms(until)},
		"format": {"dot"}, "max-nodes": {"12"},
	}
	status, _, body := f.get(t, "/pyroscope/render", params)
	text := string(body)
	if status != http.StatusOK || !strings.HasPrefix(text, "digraph \"") || !strings.HasSuffix(text, "}\n") ||
		!strings.Contains(text, " -> ") {
		t.Fatalf("dot: HTTP %d: %.400s", status, text)
	}
	// 12 kept tree nodes and "other": at most 13 functions.
	if n := len(dotNode.FindAllString(text, -1)); n == 0 || n > 13 {
		t.Errorf("dot with max-nodes=12 has %d nodes", n)
	}
	t.Logf("dot: %d bytes, %d nodes", len(body), len(dotNode.FindAllString(text, -1)))
	// Nothing selected: an empty 200, as upstream answers.
	params.Set("query", cpuType+`{service_name="nobody"}`)
	if status, _, body := f.get(t, "/pyroscope/render", params); status != http.StatusOK || len(body) != 0 {
		t.Errorf("empty dot: HTTP %d %q", status, body)
	}
}

// ---- /pyroscope/render-diff and /pyroscope/label-values ----

func (f *fixture) testRenderDiff(t *testing.T) {
	la, lb := around(f.a)
	ra, rb := around(f.b)
	params := url.Values{
		"leftQuery": {cpuType + `{service_name="render_a"}`}, "leftFrom": {ms(la)}, "leftUntil": {ms(lb)},
		"rightQuery": {cpuType + `{}`}, "rightFrom": {ms(ra)}, "rightUntil": {ms(rb)},
		"max-nodes": {"50"},
	}
	status, ct, body := f.get(t, "/pyroscope/render-diff", params)
	if status != http.StatusOK || !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("render-diff: HTTP %d %s: %.300s", status, ct, body)
	}
	var fb flamebearerJSON
	if err := json.Unmarshal(body, &fb); err != nil {
		t.Fatalf("render-diff: %v", err)
	}
	if fb.Metadata.Format != "double" || fb.LeftTicks != f.a.cpu || fb.RightTicks != f.b.cpu ||
		fb.Flamebearer.NumTicks != f.a.cpu+f.b.cpu || fb.Timeline != nil {
		t.Errorf("render-diff: format %q ticks %d/%d numTicks %d timeline %v, want double %d/%d",
			fb.Metadata.Format, fb.LeftTicks, fb.RightTicks, fb.Flamebearer.NumTicks, fb.Timeline,
			f.a.cpu, f.b.cpu)
	}
	kept := checkDiffLevels(t, fb.Flamebearer.Names, fb.Flamebearer.Levels, fb.LeftTicks,
		fb.RightTicks, fb.Flamebearer.MaxSelf, 50)
	t.Logf("render-diff max-nodes=50: %d nodes besides \"other\"", kept)
	// Both sides must select one profile type.
	params.Set("rightQuery", `process_cpu:samples:count:cpu:nanoseconds{}`)
	if status, _, body := f.get(t, "/pyroscope/render-diff", params); status != http.StatusBadRequest {
		t.Errorf("render-diff of two types: HTTP %d %s, want 400", status, body)
	}
}

func (f *fixture) labelValues(t *testing.T, label string) []string {
	t.Helper()
	status, ct, body := f.get(t, "/pyroscope/label-values", url.Values{"label": {label}})
	if status != http.StatusOK || !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("label-values %s: HTTP %d %s: %s", label, status, ct, body)
	}
	var v []string
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("label-values %s: %v: %s", label, err, body)
	}
	return v
}

func (f *fixture) testLabelValues(t *testing.T) {
	var types []string
	for _, id := range append(slices.Clone(f.a.typeIDs), f.b.typeIDs...) {
		if !slices.Contains(types, id) {
			types = append(types, id)
		}
	}
	sort.Strings(types)
	if got := f.labelValues(t, "__name__"); !slices.Equal(got, types) {
		t.Errorf("label-values __name__ = %q, want %q", got, types)
	}
	if got := f.labelValues(t, "service_name"); !slices.Equal(got, []string{"render_a", "render_b"}) {
		t.Errorf("label-values service_name = %q", got)
	}
	if got := f.labelValues(t, "no_such_label"); len(got) != 0 {
		t.Errorf("label-values no_such_label = %q", got)
	}
}

// connectError is the JSON error body upstream writes.
type connectError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (f *fixture) testErrors(t *testing.T) {
	cases := []struct {
		path   string
		params url.Values
	}{
		{"/pyroscope/render", url.Values{}},
		{"/pyroscope/render", url.Values{"query": {`{service_name="x"}`}}},
		{"/pyroscope/render", url.Values{"query": {cpuType + `{service_name=}`}}},
		{"/pyroscope/render", url.Values{"query": {cpuType + `{}`}, "max-nodes": {"-1"}}},
		{"/pyroscope/render-diff", url.Values{"leftQuery": {cpuType + `{}`}}},
		{"/pyroscope/label-values", url.Values{}},
	}
	for _, c := range cases {
		status, ct, body := f.get(t, c.path, c.params)
		var e connectError
		err := json.Unmarshal(body, &e)
		if status != http.StatusBadRequest || !strings.HasPrefix(ct, "application/json") || err != nil ||
			e.Code != "invalid_argument" || e.Message == "" {
			t.Errorf("%s %v: HTTP %d %s %s, want 400 invalid_argument", c.path, c.params, status, ct, body)
		}
	}
	// Reads accept several tenants; a bad tenant id is refused.
	req, _ := http.NewRequest(http.MethodGet, f.s.HTTPURL()+"/pyroscope/label-values?label=service_name", nil)
	req.Header.Set("X-Scope-OrgID", f.c.Tenant+"|other-tenant")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "render_a") {
		t.Errorf("two tenants: HTTP %d %s", resp.StatusCode, body)
	}
	req.Header.Set("X-Scope-OrgID", "..")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("tenant \"..\": HTTP %d, want 400", resp.StatusCode)
	}
}
