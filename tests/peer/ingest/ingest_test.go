package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"github.com/grafana/pyroscope-go/upstream"
	"github.com/grafana/pyroscope-go/upstream/remote"

	"kiln.dev/tests/lib/kilntest"
)

// timeForm is one way of writing from/until, with the time it must give.
type timeForm struct {
	name        string
	from, until string
	want        int64         // ns
	tolerance   time.Duration // for the relative forms
}

func timeForms(base time.Time) []timeForm {
	now := time.Now()
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	if day.After(now) {
		day = day.AddDate(0, 0, -1)
	}
	end := base.Add(10 * time.Second)
	return []timeForm{
		{"seconds", strconv.FormatInt(base.Unix(), 10), strconv.FormatInt(end.Unix(), 10), base.Unix() * 1e9, 0},
		{"milliseconds", strconv.FormatInt(base.UnixMilli(), 10), strconv.FormatInt(end.UnixMilli(), 10), base.UnixMilli() * 1e6, 0},
		{"microseconds", strconv.FormatInt(base.UnixMicro(), 10), strconv.FormatInt(end.UnixMicro(), 10), base.UnixMicro() * 1e3, 0},
		{"nanoseconds", strconv.FormatInt(base.UnixNano(), 10), strconv.FormatInt(end.UnixNano(), 10), base.UnixNano(), 0},
		{"now-1h", "now-1h", "now-59m", now.Add(-time.Hour).UnixNano(), 2 * time.Minute},
		{"now-30m", "now-30m", "now", now.Add(-30 * time.Minute).UnixNano(), 2 * time.Minute},
		{"YYYYMMDD", day.Format("20060102"), "", day.UnixNano(), 0},
	}
}

// window is [want - tolerance - 1s, want + tolerance + 1s] in ms.
func (f timeForm) window() (int64, int64) {
	slack := (f.tolerance + time.Second).Milliseconds()
	return f.want/1e6 - slack, f.want/1e6 + slack
}

// TestIngestFoldedFiles posts every folded file of the test data to
// /ingest (name=<app>.cpu{env=test}, from/until in every form) and reads
// the totals back: sample counts times 1e9/sampleRate nanoseconds, at the
// time from says and nowhere else.
func TestIngestFoldedFiles(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	s := startServer(t)
	c := s.Clients(t, kilntest.NewTenant("ingest-folded"))
	files := manifestFiles(t, root, "folded")
	if len(files) < 10 {
		t.Fatalf("only %d folded files in the manifests", len(files))
	}
	forms := timeForms(time.Now().Add(-10 * time.Minute).Truncate(time.Second))
	for i, rel := range files {
		form := forms[i%len(forms)]
		t.Run(rel, func(t *testing.T) {
			body := readFile(t, root, rel)
			sum, lines, ok := foldedTotal(body)
			app := "fold-" + sanitize(rel)
			q := url.Values{"name": {app + ".cpu{env=test}"}, "from": {form.from}, "spyName": {"perf_script"}}
			if form.until != "" {
				q.Set("until", form.until)
			}
			r := post(t, s, c, "", q, "", body)
			if !ok {
				if r.status != 422 {
					t.Errorf("%s has lines that are not `stack count`: status %d (%s), want 422", rel, r.status, r.body)
				}
				t.Logf("%s: rejected as upstream does: %d %s", rel, r.status, r.body)
				return
			}
			if r.status != 200 || r.body != "" {
				t.Fatalf("%s: status %d body %q, want 200 and no body", rel, r.status, r.body)
			}
			sel := `{service_name="` + app + `",env="test"}`
			start, end := form.window()
			got := total(t, s, c, typeCPU, sel, start, end)
			t.Logf("%s: %d lines, sum %d, from=%s (%s): total %d", rel, lines, sum, form.from, form.name, got)
			if got != sum*cpuPeriod {
				t.Errorf("%s: total %d in [%d, %d], want %d (%d samples x %d ns)", rel, got, start, end, sum*cpuPeriod, sum, cpuPeriod)
			}
			if late := total(t, s, c, typeCPU, sel, end+1, end+60000); late != 0 {
				t.Errorf("%s: total %d after the from time, want 0: the profile time is not from", rel, late)
			}
			if spy := labelValues(t, s, c, "pyroscope_spy", sel); len(spy) != 1 || spy[0] != "perf_script" {
				t.Errorf("%s: pyroscope_spy values %v, want [perf_script]", rel, spy)
			}
		})
	}
	// The alias path, and names without a suffix (cpu).
	body := readFile(t, root, "speedscope/simple.txt")
	if r := post(t, s, c, "/pyroscope/ingest", url.Values{"name": {"fold-alias"}}, "", body); r.status != 200 {
		t.Errorf("/pyroscope/ingest: %d %s", r.status, r.body)
	}
	lo, hi := wideWindow()
	if got := total(t, s, c, typeCPU, `{service_name="fold-alias"}`, lo, hi); got != 14*cpuPeriod {
		t.Errorf("/pyroscope/ingest total %d, want %d", got, 14*cpuPeriod)
	}
}

// TestIngestKindsAndRates checks the app-name suffixes that are not cpu,
// and sampleRate scaling, on speedscope/simple.txt (14 samples).
func TestIngestKindsAndRates(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	s := startServer(t)
	c := s.Clients(t, kilntest.NewTenant("ingest-kinds"))
	body := readFile(t, root, "speedscope/simple.txt")
	cases := []struct {
		name, sampleRate, format, typeID string
		want                             int64
	}{
		{"k-wall.wall", "", "", typeWall, 14 * cpuPeriod},
		{"k-itimer.itimer", "", "", typeCPU, 14 * cpuPeriod},
		{"k-rate.cpu", "1000", "", typeCPU, 14 * 1000000},
		{"k-mem.alloc_objects", "", "", "memory:alloc_objects:count::", 14},
		{"k-space.inuse_space", "", "", "memory:inuse_space:bytes::", 14},
		{"k-mutex.mutex_duration", "", "", "mutex:delay:nanoseconds::", 14},
		{"k-block.block_count", "", "", "block:contentions:count::", 14},
		{"k-gor.goroutines", "", "", "goroutine:goroutines:count::", 14},
		{"k-dots.v1.2.cpu", "", "", typeCPU, 14 * cpuPeriod},
		{"k-unknown-format.cpu", "", "perf_script", typeCPU, 14 * cpuPeriod}, // upstream: folded
	}
	lo, hi := wideWindow()
	for _, tc := range cases {
		q := url.Values{"name": {tc.name}}
		if tc.sampleRate != "" {
			q.Set("sampleRate", tc.sampleRate)
		}
		if tc.format != "" {
			q.Set("format", tc.format)
		}
		if r := post(t, s, c, "", q, "", body); r.status != 200 {
			t.Errorf("%s: %d %s", tc.name, r.status, r.body)
			continue
		}
		app := tc.name[:strings.LastIndexByte(tc.name, '.')]
		if got := total(t, s, c, tc.typeID, `{service_name="`+app+`"}`, lo, hi); got != tc.want {
			t.Errorf("%s: %s total %d, want %d", tc.name, tc.typeID, got, tc.want)
		}
	}
	// A service_name tag wins; the app name then becomes app_name.
	q := url.Values{"name": {"k-app.cpu{service_name=k-svc,__hidden=x}"}}
	if r := post(t, s, c, "", q, "", body); r.status != 200 {
		t.Fatalf("service_name tag: %d %s", r.status, r.body)
	}
	if got := labelValues(t, s, c, "app_name", `{service_name="k-svc"}`); len(got) != 1 || got[0] != "k-app" {
		t.Errorf("app_name values %v, want [k-app]", got)
	}
	if got := labelValues(t, s, c, "__hidden", `{service_name="k-svc"}`); len(got) != 0 {
		t.Errorf("a __ tag was stored: %v", got)
	}
}

// TestIngestLines posts the lines format: one stack per line, value 1.
func TestIngestLines(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	s := startServer(t)
	c := s.Clients(t, kilntest.NewTenant("ingest-lines"))
	var body bytes.Buffer
	n := int64(0)
	for _, line := range strings.Split(string(readFile(t, root, "speedscope/simple.txt")), "\n") {
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		k, _ := strconv.Atoi(line[i+1:])
		for j := 0; j < k; j++ {
			body.WriteString(line[:i] + "\r\n")
			n++
		}
	}
	lo, hi := wideWindow()
	for _, name := range []string{"lines-app.cpu", "lines-wall.wall"} {
		if r := post(t, s, c, "", url.Values{"name": {name}, "format": {"lines"}}, "", body.Bytes()); r.status != 200 {
			t.Fatalf("%s: %d %s", name, r.status, r.body)
		}
	}
	if got := total(t, s, c, typeCPU, `{service_name="lines-app"}`, lo, hi); got != n*cpuPeriod {
		t.Errorf("lines cpu total %d, want %d", got, n*cpuPeriod)
	}
	if got := total(t, s, c, typeWall, `{service_name="lines-wall"}`, lo, hi); got != n*cpuPeriod {
		t.Errorf("lines wall total %d, want %d", got, n*cpuPeriod)
	}
}

// speedscopeWeights sums each profile's weights of a speedscope file.
func speedscopeWeights(t *testing.T, b []byte) []float64 {
	t.Helper()
	var f struct {
		Profiles []struct {
			Weights []float64
		}
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	var out []float64
	for _, p := range f.Profiles {
		sum := 0.0
		for _, w := range p.Weights {
			sum += w
		}
		out = append(out, sum)
	}
	return out
}

// TestIngestSpeedscope posts the speedscope files: one profile keeps the
// app name's type; several become <name>.<unit> (seconds: wall) with a
// profile_name label each.
func TestIngestSpeedscope(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	s := startServer(t)
	c := s.Clients(t, kilntest.NewTenant("ingest-speedscope"))
	lo, hi := wideWindow()
	one := readFile(t, root, "speedscope/simple-sampled.speedscope.json")
	w := speedscopeWeights(t, one)
	if r := post(t, s, c, "", url.Values{"name": {"ss-one.cpu"}, "format": {"speedscope"}}, "", one); r.status != 200 {
		t.Fatalf("simple-sampled: %d %s", r.status, r.body)
	}
	if got, want := total(t, s, c, typeCPU, `{service_name="ss-one"}`, lo, hi), int64(w[0]*1e9); got != want {
		t.Errorf("simple-sampled total %d, want %d (seconds as ns)", got, want)
	}
	two := readFile(t, root, "speedscope/two-sampled.speedscope.json")
	w = speedscopeWeights(t, two)
	if r := post(t, s, c, "", url.Values{"name": {"ss-two{env=test}"}, "format": {"speedscope"}}, "", two); r.status != 200 {
		t.Fatalf("two-sampled: %d %s", r.status, r.body)
	}
	if got, want := total(t, s, c, typeWall, `{service_name="ss-two",env="test"}`, lo, hi), int64((w[0]+w[1])*1e9); got != want {
		t.Errorf("two-sampled total %d, want %d", got, want)
	}
	for i, name := range []string{"one", "two"} {
		if got, want := total(t, s, c, typeWall, `{service_name="ss-two",profile_name="`+name+`"}`, lo, hi), int64(w[i]*1e9); got != want {
			t.Errorf("two-sampled profile %s total %d, want %d", name, got, want)
		}
	}
}

// recLogger is pyroscope-go's logger; it keeps the errors.
type recLogger struct {
	t    *testing.T
	mu   sync.Mutex
	errs []string
}

func (l *recLogger) Infof(f string, a ...interface{})  { l.t.Logf("pyroscope-go: "+f, a...) }
func (l *recLogger) Debugf(f string, a ...interface{}) { l.t.Logf("pyroscope-go: "+f, a...) }
func (l *recLogger) Errorf(f string, a ...interface{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, fmt.Sprintf(f, a...))
}

// pprofTotals parses raw with github.com/google/pprof and returns, per
// sample type, the profile type ID under metric and the sum of the values
// of samples that have a stack and some positive value.
func pprofTotals(t *testing.T, raw []byte, metric string) (*profile.Profile, []string, []int64) {
	t.Helper()
	p, err := profile.ParseData(raw)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	sums := make([]int64, len(p.SampleType))
	pt, pu := "", ""
	if p.PeriodType != nil {
		pt, pu = p.PeriodType.Type, p.PeriodType.Unit
	}
	for _, st := range p.SampleType {
		ids = append(ids, metric+":"+st.Type+":"+st.Unit+":"+pt+":"+pu)
	}
	for _, smp := range p.Sample {
		pos := false
		for _, v := range smp.Value {
			pos = pos || v > 0
		}
		if !pos || len(smp.Location) == 0 {
			continue
		}
		for i, v := range smp.Value {
			sums[i] += v
		}
	}
	return p, ids, sums
}

// TestIngestGoSDKForm uploads profiles with pyroscope-go's own uploader
// (upstream/remote: the multipart form with profile and sample_type_config,
// from/until in ns, spyName gospy) and reads every sample type back.
func TestIngestGoSDKForm(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	s := startServer(t)
	tenant := kilntest.NewTenant("ingest-sdk")
	c := s.Clients(t, tenant)
	log := &recLogger{t: t}
	r, err := remote.NewRemote(remote.Config{Address: s.HTTPURL(), TenantID: tenant, Threads: 2,
		Timeout: 10 * time.Second, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	r.Start()
	defer r.Stop()
	const tags = "{__session_id__=0a1b2c3d4e5f6071,env=test,otel.scope.name=com.grafana.pyroscope/go," +
		"otel.scope.version=v1.4.3,process.runtime.name=go,process.runtime.version=go1.26.0}"
	heap := map[string]*upstream.SampleType{
		"alloc_objects": {Units: "objects"}, "alloc_space": {Units: "bytes"},
		"inuse_space": {Units: "bytes", Aggregation: "average"}, "inuse_objects": {Units: "objects", Aggregation: "average"},
	}
	block := map[string]*upstream.SampleType{
		"contentions": {DisplayName: "block_count", Units: "lock_samples"},
		"delay":       {DisplayName: "block_duration", Units: "lock_nanoseconds"},
	}
	gor := map[string]*upstream.SampleType{"goroutine": {DisplayName: "goroutines", Units: "goroutines", Aggregation: "average"}}
	cases := []struct {
		app, file, metric string
		cfg               map[string]*upstream.SampleType
	}{
		{"sdk-cpu", "grafana-pyroscope/cpu.pb.gz", "process_cpu", nil},
		{"sdk-heap", "datadog-go-profiler-notes/memory-profiler.pprof", "memory", heap},
		{"sdk-block", "datadog-go-profiler-notes/block.pb.gz", "block", block},
		{"sdk-goroutine", "datadog-go-profiler-notes/2.pprof.lookup.goroutine.debug0.pb.gz", "goroutines", gor},
	}
	end := time.Now()
	for _, tc := range cases {
		r.Upload(&upstream.UploadJob{
			Name: tc.app + tags, StartTime: end.Add(-10 * time.Second), EndTime: end, SpyName: "gospy",
			SampleRate: 100, Units: "samples", AggregationType: "sum", Format: upstream.FormatPprof,
			Profile: readFile(t, root, tc.file), SampleTypeConfig: tc.cfg,
		})
	}
	r.Flush()
	log.mu.Lock()
	for _, e := range log.errs {
		t.Errorf("pyroscope-go upload failed: %s", e)
	}
	log.mu.Unlock()
	lo, hi := wideWindow()
	for _, tc := range cases {
		_, ids, sums := pprofTotals(t, readFile(t, root, tc.file), tc.metric)
		sel := `{service_name="` + tc.app + `",env="test"}`
		for i, id := range ids {
			if got := total(t, s, c, id, sel, lo, hi); got != sums[i] {
				t.Errorf("%s %s: total %d, want %d", tc.file, id, got, sums[i])
			} else {
				t.Logf("%s %s: total %d", tc.file, id, got)
			}
		}
		if spy := labelValues(t, s, c, "pyroscope_spy", sel); len(spy) != 1 || spy[0] != "gospy" {
			t.Errorf("%s: pyroscope_spy %v, want [gospy]", tc.app, spy)
		}
		if v := labelValues(t, s, c, "otel.scope.name", sel); len(v) != 1 || v[0] != "com.grafana.pyroscope/go" {
			t.Errorf("%s: otel.scope.name %v", tc.app, v)
		}
	}
}

// zeroTimeProfile is cpu-rate.pprof with time_nanos 0 (not compressed), as
// old SDKs sent it: the server must use from.
func zeroTimeProfile(t *testing.T, root string) ([]byte, []int64, []string) {
	t.Helper()
	p, ids, sums := pprofTotals(t, readFile(t, root, "datadog-go-profiler-notes/cpu-rate.pprof"), "process_cpu")
	p.TimeNanos = 0
	var buf bytes.Buffer
	if err := p.WriteUncompressed(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), sums, ids
}

// TestIngestPprofBodies posts pprof as a raw body (format=pprof) and as the
// Node.js SDK's form (a gzipped profile part only, no format, seconds).
func TestIngestPprofBodies(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	s := startServer(t)
	c := s.Clients(t, kilntest.NewTenant("ingest-pprof"))
	raw, sums, ids := zeroTimeProfile(t, root)
	base := time.Now().Add(-5 * time.Minute).Truncate(time.Second)
	from := strconv.FormatInt(base.Unix(), 10)
	// Raw: the name's suffix does not matter; service_name is the whole name.
	q := url.Values{"name": {"raw-app.cpu{env=test}"}, "format": {"pprof"}, "from": {from}}
	if r := post(t, s, c, "", q, "application/octet-stream", raw); r.status != 200 {
		t.Fatalf("format=pprof: %d %s", r.status, r.body)
	}
	// Node.js: multipart, profile part only, gzipped, spyName nodespy.
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("profile", "profile.pprof")
	fw.Write(gzipBytes(t, raw))
	mw.Close()
	q = url.Values{"name": {"node-app{env=test}"}, "from": {from}, "until": {strconv.FormatInt(base.Unix()+10, 10)}, "spyName": {"nodespy"}}
	if r := post(t, s, c, "", q, mw.FormDataContentType(), body.Bytes()); r.status != 200 {
		t.Fatalf("node form: %d %s", r.status, r.body)
	}
	lo, hi := base.UnixMilli()-1000, base.UnixMilli()+1000
	for _, app := range []string{"raw-app.cpu", "node-app"} {
		for i, id := range ids {
			if got := total(t, s, c, id, `{service_name="`+app+`",env="test"}`, lo, hi); got != sums[i] {
				t.Errorf("%s %s: total %d at from, want %d", app, id, got, sums[i])
			}
		}
	}
	if spy := labelValues(t, s, c, "pyroscope_spy", `{service_name="node-app"}`); len(spy) != 1 || spy[0] != "nodespy" {
		t.Errorf("node-app: pyroscope_spy %v", spy)
	}
	// Empty bodies are accepted and store nothing, as upstream.
	if r := post(t, s, c, "", url.Values{"name": {"empty"}, "format": {"pprof"}}, "", nil); r.status != 200 {
		t.Errorf("empty pprof: %d %s", r.status, r.body)
	}
	body.Reset()
	mw = multipart.NewWriter(&body)
	mw.WriteField("other", "x")
	mw.Close()
	if r := post(t, s, c, "", url.Values{"name": {"empty"}}, mw.FormDataContentType(), body.Bytes()); r.status != 200 {
		t.Errorf("form without profile: %d %s", r.status, r.body)
	}
}

// TestIngestErrors checks the status of every kind of rejection, and that
// the server lives on.
func TestIngestErrors(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	s := startServer(t)
	c := s.Clients(t, kilntest.NewTenant("ingest-errors"))
	folded := readFile(t, root, "speedscope/simple.txt")
	cpu := readFile(t, root, "grafana-pyroscope/cpu.pb.gz")
	form := func(parts ...string) (string, []byte) {
		var b bytes.Buffer
		mw := multipart.NewWriter(&b)
		for i := 0; i+1 < len(parts); i += 2 {
			fw, _ := mw.CreateFormFile(parts[i], parts[i]+".bin")
			fw.Write([]byte(parts[i+1]))
		}
		mw.Close()
		return mw.FormDataContentType(), b.Bytes()
	}
	prevCT, prevBody := form("profile", string(cpu), "prev_profile", string(cpu))
	cfgCT, cfgBody := form("profile", string(cpu), "sample_type_config", "{not json")
	bombCT, bombBody := form("profile", string(gzipBytes(t, make([]byte, 5<<20))))
	cases := []struct {
		what   string
		q      url.Values
		ct     string
		body   []byte
		status int
	}{
		{"no name", url.Values{}, "", folded, 400},
		{"space in name", url.Values{"name": {"my app"}}, "", folded, 400},
		{"bad tag key", url.Values{"name": {"app{a-b=1}"}}, "", folded, 400},
		{"unknown suffix", url.Values{"name": {"app.bogus"}}, "", folded, 400},
		{"bad count", url.Values{"name": {"app"}}, "", []byte("a;b 1\na;b x\n"), 422},
		{"invalid lines file", url.Values{"name": {"app"}}, "", readFile(t, root, "speedscope/simple-with-invalids.txt"), 422},
		{"invalid UTF-8 frame", url.Values{"name": {"app"}}, "", []byte("a;\xff\xfe 1\n"), 400},
		{"trie", url.Values{"name": {"app"}, "format": {"trie"}}, "", folded, 422},
		{"tree", url.Values{"name": {"app"}}, "binary/octet-stream+tree", folded, 422},
		{"jfr", url.Values{"name": {"app"}, "format": {"jfr"}}, "", folded, 422},
		{"garbage pprof", url.Values{"name": {"app"}, "format": {"pprof"}}, "", []byte("\x0a\xff\xff"), 422},
		{"pprof with bad UTF-8", url.Values{"name": {"app"}, "format": {"pprof"}}, "", readFile(t, root, "hard/grafana-pyroscope/invalid_utf8.pb.gz"), 422},
		{"gzip bomb", url.Values{"name": {"app"}, "format": {"pprof"}}, "", gzipBytes(t, make([]byte, 5<<20)), 413},
		{"gzip bomb in form", url.Values{"name": {"app"}}, bombCT, bombBody, 413},
		{"prev_profile", url.Values{"name": {"app"}}, prevCT, prevBody, 422},
		{"bad sample_type_config", url.Values{"name": {"app"}}, cfgCT, cfgBody, 422},
		{"no boundary", url.Values{"name": {"app"}}, "multipart/form-data", cpu, 422},
		{"truncated form", url.Values{"name": {"app"}}, prevCT, prevBody[:len(prevBody)/2], 422},
		{"speedscope not JSON", url.Values{"name": {"app"}, "format": {"speedscope"}}, "", folded, 422},
		{"speedscope schema", url.Values{"name": {"app"}, "format": {"speedscope"}}, "", []byte(`{"$schema":"x","profiles":[]}`), 422},
	}
	for _, tc := range cases {
		r := post(t, s, c, "", tc.q, tc.ct, tc.body)
		if r.status != tc.status || r.body == "" {
			t.Errorf("%s: status %d (%q), want %d with a message", tc.what, r.status, r.body, tc.status)
		} else {
			t.Logf("%s: %d %s", tc.what, r.status, r.body)
		}
	}
	bad := s.Clients(t, "../bad")
	if r := post(t, s, bad, "", url.Values{"name": {"app"}}, "", folded); r.status != 400 {
		t.Errorf("invalid tenant: status %d (%s), want 400", r.status, r.body)
	}
	if s.GetReady(t) != 200 {
		t.Error("server not ready after the errors")
	}
}

// TestIngestRateLimited runs a server with a tiny ingestion burst: a body
// larger than the burst can never pass and is answered 413 (not the
// retryable 429, issue #10 item 6); bodies within the burst pass until the
// bucket is empty, then 429.
func TestIngestRateLimited(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	if !kilntest.HasFlag(t, "distributor.ingestion-rate-limit-mb") {
		t.Skip("this kiln has no -distributor.ingestion-rate-limit-mb")
	}
	s := startServer(t, "-distributor.ingestion-rate-limit-mb=0.0001", "-distributor.ingestion-burst-size-mb=0.001")
	c := s.Clients(t, kilntest.NewTenant("ingest-rate"))
	big := readFile(t, root, "flamegraph/perf-vertx-stacks-01-collapsed-all.txt")
	if r := post(t, s, c, "", url.Values{"name": {"rate.cpu"}}, "", big); r.status != 413 || !strings.Contains(r.body, "burst") {
		t.Errorf("over the burst: status %d (%s), want 413 naming the burst", r.status, r.body)
	} else {
		t.Logf("over the burst: %d %s", r.status, r.body)
	}
	small := []byte(strings.Repeat("main;work 1\n", 50)) // 600 bytes: within the burst
	first := post(t, s, c, "", url.Values{"name": {"rate.cpu"}}, "", small)
	second := post(t, s, c, "", url.Values{"name": {"rate.cpu"}}, "", small)
	if first.status != 200 || second.status != 429 || !strings.Contains(second.body, "rate limit") {
		t.Errorf("within the burst: %d then %d (%s), want 200 then 429", first.status, second.status, second.body)
	}
}

// TestIngestValidation: what f6ae369 accepted silently is stored or refused
// now (issue #10, item 7): a gzip-encoded body is decoded and stored;
// sampleRate 0, negative or not a number is 400; a negative folded count is
// 422 (unreadable body) naming the line; -validation.max-profile-size-bytes holds for folded
// and lines bodies (413); a newline in a tag value is 400.
func TestIngestValidation(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	s := startServer(t, "-validation.max-profile-size-bytes=1KiB")
	c := s.Clients(t, kilntest.NewTenant("ingest-valid"))
	body := readFile(t, root, "speedscope/simple.txt") // 14 samples
	lo, hi := wideWindow()
	q := url.Values{"name": {"v-gzip.cpu"}}
	if r := postEncoded(t, s, c, q, "gzip", gzipBytes(t, body)); r.status != 200 {
		t.Errorf("gzip-encoded folded: %d %s", r.status, r.body)
	} else if got := total(t, s, c, typeCPU, `{service_name="v-gzip"}`, lo, hi); got != 14*cpuPeriod {
		t.Errorf("gzip-encoded folded stored total %d, want %d", got, 14*cpuPeriod)
	}
	if r := postEncoded(t, s, c, url.Values{"name": {"v-br.cpu"}}, "br", body); r.status != 415 {
		t.Errorf("Content-Encoding br: %d %s, want 415", r.status, r.body)
	}
	for _, rate := range []string{"0", "-5", "fast"} {
		q := url.Values{"name": {"v-rate.cpu"}, "sampleRate": {rate}}
		if r := post(t, s, c, "", q, "", body); r.status != 400 || !strings.Contains(r.body, "sampleRate") {
			t.Errorf("sampleRate=%s: %d %s, want 400", rate, r.status, r.body)
		}
	}
	neg := []byte("a;b 3\na;c -2\n")
	if r := post(t, s, c, "", url.Values{"name": {"v-neg.cpu"}}, "", neg); r.status != 422 || !strings.Contains(r.body, "line 2") {
		t.Errorf("negative count: %d %s, want 422 naming line 2", r.status, r.body)
	}
	big := []byte(strings.Repeat("main;a_rather_long_function_name_here 1\n", 6600)) // 264 KB
	for _, format := range []string{"", "lines"} {
		q := url.Values{"name": {"v-big.cpu"}, "format": {format}}
		if r := post(t, s, c, "", q, "", big); r.status != 413 || !strings.Contains(r.body, "limit") {
			t.Errorf("264 KB %q body under a 1 KiB limit: %d %s, want 413", format, r.status, r.body)
		}
	}
	if r := post(t, s, c, "", url.Values{"name": {"v-nl.cpu{k=a\nb}"}}, "", body); r.status != 400 {
		t.Errorf("newline in a tag value: %d %s, want 400", r.status, r.body)
	}
	if got := labelValues(t, s, c, "service_name", "{}"); len(got) != 1 || got[0] != "v-gzip" {
		t.Errorf("services stored %v, want only v-gzip", got)
	}
}

// postEncoded posts body to /ingest with Content-Encoding enc.
func postEncoded(t *testing.T, s *kilntest.Server, c *kilntest.Clients, q url.Values, enc string, body []byte) ingestResp {
	t.Helper()
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.HTTPURL()+"/ingest?"+q.Encode(), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Encoding", enc)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		s.RequireAlive(t)
		t.Fatalf("POST /ingest: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return ingestResp{resp.StatusCode, strings.TrimSpace(string(b))}
}
