// Package drilldown replays the requests Grafana Profiles Drilldown makes
// (requests.json, read from its source) against a real kiln holding real
// profiles, and checks that every answer decodes and, where data exists, is
// not empty. The steps Kiln does not serve yet are listed in notYet: they
// are sent too, and their outcome is logged, never skipped silently.
package drilldown

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/pprof/profile"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	googlev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	settingsv1 "github.com/grafana/pyroscope/api/gen/proto/go/settings/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"kiln.dev/tests/lib/kilntest"
)

// notYet names the steps (view and expectation) that belong to other
// issues, with why; none today. Drilldown degrades on such a step, so it
// must still answer cleanly.
var notYet = map[string]string{}

type step struct {
	View      string          `json:"view"`
	Transport string          `json:"transport"`
	Method    string          `json:"method"`
	Source    string          `json:"source"`
	Accept    string          `json:"accept"`
	Body      json.RawMessage `json:"body"`
	Expect    string          `json:"expect"`
}

// The message types of the methods the replay calls.
var types = map[string]struct{ req, resp func() proto.Message }{
	"/settings.v1.SettingsService/Get": {
		func() proto.Message { return &settingsv1.GetSettingsRequest{} },
		func() proto.Message { return &settingsv1.GetSettingsResponse{} }},
	"/settings.v1.SettingsService/Set": {
		func() proto.Message { return &settingsv1.SetSettingsRequest{} },
		func() proto.Message { return &settingsv1.SetSettingsResponse{} }},
	"/querier.v1.QuerierService/GetProfileStats": {
		func() proto.Message { return &typesv1.GetProfileStatsRequest{} },
		func() proto.Message { return &typesv1.GetProfileStatsResponse{} }},
	"/querier.v1.QuerierService/Series": {
		func() proto.Message { return &querierv1.SeriesRequest{} },
		func() proto.Message { return &querierv1.SeriesResponse{} }},
	"/querier.v1.QuerierService/LabelNames": {
		func() proto.Message { return &typesv1.LabelNamesRequest{} },
		func() proto.Message { return &typesv1.LabelNamesResponse{} }},
	"/querier.v1.QuerierService/LabelValues": {
		func() proto.Message { return &typesv1.LabelValuesRequest{} },
		func() proto.Message { return &typesv1.LabelValuesResponse{} }},
	"/querier.v1.QuerierService/SelectSeries": {
		func() proto.Message { return &querierv1.SelectSeriesRequest{} },
		func() proto.Message { return &querierv1.SelectSeriesResponse{} }},
	"/querier.v1.QuerierService/SelectMergeStacktraces": {
		func() proto.Message { return &querierv1.SelectMergeStacktracesRequest{} },
		func() proto.Message { return &querierv1.SelectMergeStacktracesResponse{} }},
	"/querier.v1.QuerierService/SelectMergeProfile": {
		func() proto.Message { return &querierv1.SelectMergeProfileRequest{} },
		func() proto.Message { return &googlev1.Profile{} }},
	"/querier.v1.QuerierService/Diff": {
		func() proto.Message { return &querierv1.DiffRequest{} },
		func() proto.Message { return &querierv1.DiffResponse{} }},
	"/querier.v1.QuerierService/SelectHeatmap": {
		func() proto.Message { return &querierv1.SelectHeatmapRequest{} },
		func() proto.Message { return &querierv1.SelectHeatmapResponse{} }},
}

// restamp returns a profile file's bytes with its time set to at.
func restamp(t *testing.T, raw []byte, at time.Time) []byte {
	t.Helper()
	p, err := profile.ParseData(raw)
	if err != nil {
		t.Fatal(err)
	}
	p.TimeNanos = at.UnixNano()
	var b bytes.Buffer
	if err := p.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

type dataset struct {
	vars map[string]string
}

// pushData pushes two services' CPU and heap profiles, restamped to the
// last 25 minutes, with a "region" label, and returns the replay's variables.
func pushData(t *testing.T, s *kilntest.Server, c *kilntest.Clients, root string) dataset {
	cpu := kilntest.LoadProfile(t, root, "grafana-pyroscope/cpu.pb.gz")
	heap := kilntest.LoadProfile(t, root, "grafana-pyroscope/req_5.pprof")
	now := time.Now()
	services := []string{"drilldown-api", "drilldown-db"}
	regions := []string{"eu-west", "us-east"}
	for i := 0; i < 10; i++ {
		at := now.Add(-time.Duration(25-2*i) * time.Minute)
		for si, svc := range services {
			for _, p := range []*kilntest.Profile{cpu, heap} {
				ctx, cancel := kilntest.ReqCtx(t)
				_, err := c.Push.Push(ctx, connect.NewRequest(&pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
					Labels: []*typesv1.LabelPair{{Name: "__name__", Value: p.Name},
						{Name: "service_name", Value: svc}, {Name: "region", Value: regions[(i+si)%2]}},
					Samples: []*pushv1.RawSample{{RawProfile: restamp(t, p.Raw, at), ID: kilntest.NewUUID()}},
				}}}))
				cancel()
				if err != nil {
					s.CheckAfterError(t, err)
					t.Fatalf("push %s for %s: %v", p.Rel, svc, err)
				}
			}
		}
	}
	from, to := now.Add(-30*time.Minute).UnixMilli(), now.Add(time.Minute).UnixMilli()
	return dataset{map[string]string{
		"FROM": strconv.FormatInt(from, 10), "TO": strconv.FormatInt(to, 10),
		"MID": strconv.FormatInt((from+to)/2, 10), "TYPE": cpu.TypeIDs[len(cpu.TypeIDs)-1],
		"TYPE2": cpu.TypeIDs[0], "SERVICE": services[0], "SERVICE2": services[1],
		"LABEL": "region", "VALUE": regions[0], "FUNCTION": "runtime.main",
	}}
}

// fill replaces "${NAME}" (a whole JSON string: becomes a number when the
// value is one) and ${NAME} inside strings.
func (d dataset) fill(body string) string {
	for k, v := range d.vars {
		if _, err := strconv.ParseInt(v, 10, 64); err == nil {
			body = strings.ReplaceAll(body, `"${`+k+`}"`, v)
		}
		body = strings.ReplaceAll(body, "${"+k+"}", strings.ReplaceAll(v, `"`, `\"`))
	}
	return body
}

type outcome struct {
	status int
	resp   proto.Message
	raw    []byte
	err    error
}

// browser POSTs the body as Drilldown's fetch does (Connect JSON, or proto).
func browser(t *testing.T, c *kilntest.Clients, base string, st step, body string, asProto bool) outcome {
	var payload []byte
	ct := "application/json"
	payload = []byte(body)
	if asProto {
		req := types[st.Method].req()
		if err := protojson.Unmarshal(payload, req); err != nil {
			t.Fatalf("%s: body is not a %T: %v", st.Method, req, err)
		}
		payload, _ = proto.Marshal(req)
		ct = "application/proto"
	}
	hr, _ := http.NewRequest(http.MethodPost, base+st.Method, bytes.NewReader(payload))
	hr.Header.Set("Content-Type", ct)
	if st.Accept != "" {
		hr.Header.Set("Accept", st.Accept)
	}
	res, err := c.HTTP.Do(hr)
	if err != nil {
		return outcome{err: err}
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	o := outcome{status: res.StatusCode, raw: raw}
	if res.StatusCode != 200 {
		o.err = fmt.Errorf("HTTP %d: %.300s", res.StatusCode, raw)
		return o
	}
	o.resp = types[st.Method].resp()
	if asProto {
		o.err = proto.Unmarshal(raw, o.resp)
	} else {
		o.err = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(raw, o.resp)
	}
	return o
}

// datasource sends the body as Grafana's Pyroscope data source does: the
// Connect Go client, proto.
func datasource(t *testing.T, c *kilntest.Clients, st step, body string) outcome {
	req := types[st.Method].req()
	if err := protojson.Unmarshal([]byte(body), req); err != nil {
		t.Fatalf("%s: body is not a %T: %v", st.Method, req, err)
	}
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	var resp proto.Message
	var err error
	switch r := req.(type) {
	case *querierv1.SelectSeriesRequest:
		var res *connect.Response[querierv1.SelectSeriesResponse]
		if res, err = c.Query.SelectSeries(ctx, connect.NewRequest(r)); err == nil {
			resp = res.Msg
		}
	case *querierv1.SelectMergeStacktracesRequest:
		var res *connect.Response[querierv1.SelectMergeStacktracesResponse]
		if res, err = c.Query.SelectMergeStacktraces(ctx, connect.NewRequest(r)); err == nil {
			resp = res.Msg
		}
	case *querierv1.SelectHeatmapRequest:
		var res *connect.Response[querierv1.SelectHeatmapResponse]
		if res, err = c.Query.SelectHeatmap(ctx, connect.NewRequest(r)); err == nil {
			resp = res.Msg
		}
	default:
		t.Fatalf("%s: no data source call for %T", st.Method, req)
	}
	o := outcome{status: 200, resp: resp, err: err}
	if err != nil {
		o.status = connectHTTP(err)
	}
	return o
}

func connectHTTP(err error) int {
	switch connect.CodeOf(err) {
	case connect.CodeUnimplemented:
		return 501
	case connect.CodeNotFound:
		return 404
	}
	return 500
}

// get sends an HTTP GET with the body's fields as query parameters.
func get(c *kilntest.Clients, base string, st step, body string) outcome {
	var params map[string]any
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber() /* ms times stay integers, not 1.7e+12 */
	if err := dec.Decode(&params); err != nil {
		return outcome{err: err}
	}
	q := url.Values{}
	for k, v := range params {
		q.Set(k, fmt.Sprint(v))
	}
	res, err := c.HTTP.Get(base + st.Method + "?" + q.Encode())
	if err != nil {
		return outcome{err: err}
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	o := outcome{status: res.StatusCode, raw: raw}
	if res.StatusCode != 200 {
		o.err = fmt.Errorf("HTTP %d: %.300s", res.StatusCode, raw)
	}
	return o
}

func contains(list []string, want string) bool {
	for _, s := range list {
		if s == want {
			return true
		}
	}
	return false
}

// functionsEmpty says why an answer is not a non-empty function table as
// Drilldown's FunctionTableApiClient reads it ("" = fine): "functions" with
// rows and a total (the diff's leftTotal and rightTotal).
func functionsEmpty(raw []byte) string {
	var r struct {
		Functions *struct {
			Total      string `json:"total"`
			LeftTotal  string `json:"leftTotal"`
			RightTotal string `json:"rightTotal"`
			Functions  []struct {
				Name string `json:"name"`
			} `json:"functions"`
		} `json:"functions"`
	}
	if err := json.Unmarshal(raw, &r); err != nil || r.Functions == nil {
		return fmt.Sprintf("no function table: %v: %.300s", err, raw)
	}
	f := r.Functions
	if len(f.Functions) == 0 || f.Functions[0].Name == "" {
		return fmt.Sprintf("no function rows: %.300s", raw)
	}
	if f.Total == "" && (f.LeftTotal == "" || f.RightTotal == "") {
		return fmt.Sprintf("no totals: %.300s", raw)
	}
	return ""
}

// sandwichEmpty says why an answer is not a sandwich of fn as Drilldown's
// SandwichApiClient reads it ("" = fine): "sandwich" with a names table,
// both halves rooted at fn, and totals.
func sandwichEmpty(raw []byte, fn string) string {
	type node struct {
		NameIndex int    `json:"nameIndex"`
		Total     string `json:"total"`
	}
	var r struct {
		Sandwich *struct {
			Names   []string `json:"names"`
			Callers *node    `json:"callers"`
			Callees *node    `json:"callees"`
			Total   string   `json:"total"`
		} `json:"sandwich"`
	}
	if err := json.Unmarshal(raw, &r); err != nil || r.Sandwich == nil {
		return fmt.Sprintf("no sandwich: %v: %.300s", err, raw)
	}
	sw := r.Sandwich
	for _, h := range []*node{sw.Callers, sw.Callees} {
		if h == nil || h.NameIndex < 0 || h.NameIndex >= len(sw.Names) || sw.Names[h.NameIndex] != fn ||
			h.Total == "" || h.Total == "0" {
			return fmt.Sprintf("a half is not rooted at %s or empty: %.300s", fn, raw)
		}
	}
	if sw.Total == "" || sw.Total == "0" {
		return fmt.Sprintf("no total: %.300s", raw)
	}
	return ""
}

// nonEmpty says why an answer that should carry data does not ("" = fine).
func nonEmpty(d dataset, st step, o outcome) string {
	switch m := o.resp.(type) {
	case *settingsv1.GetSettingsResponse:
		if len(m.Settings) == 0 {
			return "no settings"
		}
	case *settingsv1.SetSettingsResponse:
		if m.GetSetting().GetName() != "pluginSettings" || m.GetSetting().GetModifiedAt() == 0 {
			return fmt.Sprintf("setting not echoed: %v", m.GetSetting())
		}
	case *typesv1.GetProfileStatsResponse:
		if !m.DataIngested || m.NewestProfileTime < m.OldestProfileTime {
			return fmt.Sprintf("stats say no data: %v", m)
		}
	case *querierv1.SeriesResponse:
		if len(m.LabelsSet) == 0 {
			return "no series"
		}
	case *typesv1.LabelNamesResponse:
		if !contains(m.Names, d.vars["LABEL"]) {
			return fmt.Sprintf("label %q missing from %v", d.vars["LABEL"], m.Names)
		}
	case *typesv1.LabelValuesResponse:
		if !contains(m.Names, d.vars["VALUE"]) {
			return fmt.Sprintf("value %q missing from %v", d.vars["VALUE"], m.Names)
		}
	case *querierv1.SelectSeriesResponse:
		return seriesEmpty(st, m)
	case *querierv1.SelectMergeStacktracesResponse:
		if m.GetFlamegraph().GetTotal() <= 0 || len(m.GetFlamegraph().GetNames()) < 2 {
			return "empty flame graph"
		}
	case *googlev1.Profile:
		if len(m.Sample) == 0 {
			return "pprof without samples"
		}
	case *querierv1.SelectHeatmapResponse:
		if len(m.Series) == 0 || len(m.Series[0].Slots) == 0 {
			return "no heatmap series"
		}
	case nil:
		return renderDiffEmpty(o.raw)
	}
	return ""
}

func seriesEmpty(st step, m *querierv1.SelectSeriesResponse) string {
	var points int
	var sum float64
	for _, s := range m.Series {
		for _, p := range s.Points {
			points++
			sum += p.Value
		}
	}
	if points == 0 || sum <= 0 {
		return fmt.Sprintf("%d series, %d points, sum %v", len(m.Series), points, sum)
	}
	if strings.Contains(string(st.Body), `"groupBy": ["`) && len(m.Series) < 2 {
		return fmt.Sprintf("grouped by a label of two values, got %d series", len(m.Series))
	}
	return ""
}

func renderDiffEmpty(raw []byte) string {
	var fb struct {
		Flamebearer struct {
			NumTicks int64 `json:"numTicks"`
			Names    []string
		} `json:"flamebearer"`
		LeftTicks  int64 `json:"leftTicks"`
		RightTicks int64 `json:"rightTicks"`
	}
	if err := json.Unmarshal(raw, &fb); err != nil {
		return "not flamebearer JSON: " + err.Error()
	}
	if fb.Flamebearer.NumTicks <= 0 || fb.LeftTicks <= 0 || fb.RightTicks <= 0 {
		return fmt.Sprintf("empty diff: ticks %d left %d right %d: %.300s", fb.Flamebearer.NumTicks,
			fb.LeftTicks, fb.RightTicks, raw)
	}
	return ""
}

// served says whether a not-yet feature answered as Drilldown wants it.
func served(st step, o outcome) bool {
	switch st.Expect {
	case "functions":
		return bytes.Contains(o.raw, []byte(`"functions"`))
	case "sandwich":
		return bytes.Contains(o.raw, []byte(`"sandwich"`))
	case "exemplars":
		if m, ok := o.resp.(*querierv1.SelectHeatmapResponse); ok {
			for _, s := range m.Series {
				for _, sl := range s.Slots {
					if len(sl.Exemplars) > 0 {
						return true
					}
				}
			}
		}
	}
	return false
}

func loadSteps(t *testing.T) []step {
	raw, err := os.ReadFile("requests.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Steps []step `json:"steps"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	return f.Steps
}

func send(t *testing.T, c *kilntest.Clients, s *kilntest.Server, st step, body string) outcome {
	switch st.Transport {
	case "browser":
		return browser(t, c, s.HTTPURL(), st, body, false)
	case "browser-proto":
		return browser(t, c, s.HTTPURL(), st, body, true)
	case "datasource":
		return datasource(t, c, st, body)
	case "get":
		return get(c, s.HTTPURL(), st, body)
	}
	t.Fatalf("unknown transport %q", st.Transport)
	return outcome{}
}

// TestDrilldownReplay sends Drilldown's sequence in order.
func TestDrilldownReplay(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	s := kilntest.Start(t)
	c := s.Clients(t, kilntest.NewTenant("drilldown"))
	d := pushData(t, s, c, root)
	steps := loadSteps(t)
	var pending []string
	for i, st := range steps {
		body := d.fill(string(st.Body))
		o := send(t, c, s, st, body)
		key := st.View + "/" + st.Expect
		name := fmt.Sprintf("%d %s %s %s", i+1, st.View, st.Transport, st.Method)
		if why, later := notYet[key]; later {
			if o.status == 404 || (o.err != nil && o.status != 501) {
				t.Errorf("%s: a not-yet step must still answer 200 or 501: %v", name, o.err)
			} else if served(st, o) {
				t.Logf("%s: served now; drop %q from notYet", name, key)
			} else {
				pending = append(pending, fmt.Sprintf("%s (%s; HTTP %d)", name, why, o.status))
			}
			continue
		}
		if o.err != nil {
			s.CheckAfterError(t, o.err)
			t.Errorf("%s: %v", name, o.err)
			continue
		}
		if st.Expect == "exemplars" && !served(st, o) {
			t.Errorf("%s: no heatmap exemplars\nbody: %s", name, body)
			continue
		}
		if st.Expect == "sandwich" {
			if why := sandwichEmpty(o.raw, d.vars["FUNCTION"]); why != "" {
				t.Errorf("%s: %s\nbody: %s", name, why, body)
				continue
			}
		}
		if st.Expect == "functions" {
			if why := functionsEmpty(o.raw); why != "" {
				t.Errorf("%s: %s\nbody: %s", name, why, body)
				continue
			}
		}
		if st.Expect == "data" {
			if why := nonEmpty(d, st, o); why != "" {
				t.Errorf("%s: %s\nbody: %s", name, why, body)
				continue
			}
		}
		t.Logf("%s: ok", name)
	}
	for _, p := range pending {
		t.Logf("not yet: %s", p)
	}
	if len(pending) != len(notYet) {
		t.Errorf("%d not-yet steps answered as not yet, the list has %d", len(pending), len(notYet))
	}
	s.RequireAlive(t)
}

// TestDrilldownStartsOnEmpty is Drilldown's start on a tenant with no data:
// settings, stats and series answer (empty), never 404, so the landing page
// renders its onboarding instead of aborting.
func TestDrilldownStartsOnEmpty(t *testing.T) {
	kilntest.RequireEnv(t)
	s := kilntest.Start(t)
	c := s.Clients(t, kilntest.NewTenant("empty"))
	d := dataset{map[string]string{"FROM": "1", "TO": strconv.FormatInt(time.Now().UnixMilli(), 10)}}
	for _, st := range loadSteps(t)[:3] {
		o := send(t, c, s, st, d.fill(string(st.Body)))
		if o.err != nil || o.status != 200 {
			t.Errorf("%s on an empty tenant: HTTP %d %v", st.Method, o.status, o.err)
		}
	}
}

// TestUnservedMethodsAre501 checks the rule Drilldown relies on to degrade:
// an API method Kiln lacks is unimplemented (501), a path outside the API
// is 404.
func TestUnservedMethodsAre501(t *testing.T) {
	kilntest.RequireEnv(t)
	s := kilntest.Start(t)
	c := s.Clients(t, kilntest.NewTenant("api"))
	for path, want := range map[string]int{
		"/vcs.v1.VCSService/GetFile":                                501,
		"/settings.v1.RecordingRulesService/ListRecordingRules":     200,
		"/debuginfo.v1alpha1.DebuginfoService/ShouldInitiateUpload": 501,
		"/vcs.v1.VCSService/NoSuchMethod":                           404,
		"/settings.v1.SettingsService/Get":                          200,
		"/version.v1.Version/Version":                               200,
		"/capabilities.v1.FeatureFlagsService/GetFeatureFlags":      200,
		"/status.v1.StatusService/GetBuildInfo":                     200,
	} {
		res, err := c.HTTP.Post(s.HTTPURL()+path, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("%s: HTTP %d, want %d: %s", path, res.StatusCode, want, raw)
		}
		if want == 501 && !bytes.Contains(raw, []byte(`"code":"unimplemented"`)) {
			t.Errorf("%s: not a Connect unimplemented error: %s", path, raw)
		}
	}
}
