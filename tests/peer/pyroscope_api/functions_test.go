package peer

import (
	"bytes"
	"encoding/json"
	"io"
	"sort"
	"strconv"
	"testing"
	"time"

	"connectrpc.com/connect"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"kiln.dev/tests/lib/kilntest"
)

// fnRow is one function table row as Drilldown reads it (int64 as strings).
type fnRow struct {
	Name  string `json:"name"`
	Self  string `json:"self"`
	Total string `json:"total"`
}

// postJSON posts body to a querier method as Drilldown's browser client
// does (Connect JSON over plain HTTP) and decodes the answer into out.
func postJSON(t *testing.T, s *kilntest.Server, c *kilntest.Clients, method string, body any, out any) {
	t.Helper()
	raw, _ := json.Marshal(body)
	res, err := c.HTTP.Post(s.HTTPURL()+"/querier.v1.QuerierService/"+method, "application/json", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if res.StatusCode != 200 {
		t.Fatalf("%s: HTTP %d: %.300s", method, res.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%s: %v: %.300s", method, err, b)
	}
}

// TestFunctionTable asks for PROFILE_FORMAT_FUNCTIONS as Drilldown's
// function table does and checks every row against the pushed pprof: self
// is the leaf frames' sum per name, total the samples a name is on (once,
// whatever the recursion); the Diff of the profile against itself joins
// both sides row by row.
func TestFunctionTable(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	s := kilntest.Start(t)
	c := s.Clients(t, kilntest.NewTenant("peer-functions"))
	pc, err := loadProfileCase(t, root, "gdu/default.pgo")
	if err != nil {
		t.Fatal(err)
	}
	service := "peer-functions-" + kilntest.RandomHex(4)
	if _, err := push(t, s, c, transports[0], pc.name, service, pc.raw); err != nil {
		t.Fatal(err)
	}
	i := len(pc.typeIDs) - 1
	self, total := map[string]int64{}, map[string]int64{}
	for _, smp := range pc.prof.Sample {
		f := rootFirst(smp)
		if len(f) == 0 {
			continue
		}
		self[f[len(f)-1]] += smp.Value[i]
		seen := map[string]bool{}
		for _, name := range f {
			if !seen[name] {
				total[name] += smp.Value[i]
				seen[name] = true
			}
		}
	}
	start, end := queryWindow(pc.timeNanos, time.Now())
	sel := map[string]any{"profileTypeID": pc.typeIDs[i], "labelSelector": `{service_name="` + service + `"}`,
		"start": start, "end": end}
	req := map[string]any{"format": "PROFILE_FORMAT_FUNCTIONS", "maxNodes": 5}
	for k, v := range sel {
		req[k] = v
	}
	var single struct {
		Functions struct {
			Total     string  `json:"total"`
			Functions []fnRow `json:"functions"`
		} `json:"functions"`
	}
	postJSON(t, s, c, "SelectMergeStacktraces", req, &single)
	if single.Functions.Total != strconv.FormatInt(pc.expected[i], 10) {
		t.Errorf("table total %q, want %d", single.Functions.Total, pc.expected[i])
	}
	names := make([]string, 0, len(total))
	for n := range total {
		names = append(names, n)
	}
	sort.Slice(names, func(a, b int) bool {
		if total[names[a]] != total[names[b]] {
			return total[names[a]] > total[names[b]]
		}
		return names[a] < names[b]
	})
	if len(single.Functions.Functions) != 5 {
		t.Fatalf("maxNodes 5: %d rows", len(single.Functions.Functions))
	}
	for k, r := range single.Functions.Functions {
		want := fnRow{names[k], strconv.FormatInt(self[names[k]], 10), strconv.FormatInt(total[names[k]], 10)}
		if want.Self == "0" {
			want.Self = "" // protojson leaves zero out
		}
		if r != want {
			t.Errorf("row %d: %+v, want %+v", k, r, want)
		}
	}

	var diff struct {
		Functions struct {
			LeftTotal  string `json:"leftTotal"`
			RightTotal string `json:"rightTotal"`
			Functions  []struct {
				Name       string `json:"name"`
				LeftTotal  string `json:"leftTotal"`
				RightTotal string `json:"rightTotal"`
			} `json:"functions"`
		} `json:"functions"`
	}
	postJSON(t, s, c, "Diff", map[string]any{"left": sel, "right": sel, "format": "PROFILE_FORMAT_FUNCTIONS"}, &diff)
	f := diff.Functions
	if f.LeftTotal != f.RightTotal || f.LeftTotal != single.Functions.Total || len(f.Functions) < 5 {
		t.Errorf("diff: totals %s/%s, %d rows; want %s and all rows", f.LeftTotal, f.RightTotal,
			len(f.Functions), single.Functions.Total)
	}
	for k, r := range f.Functions {
		// Go generic names are shortened at ingest ("[...]"), as Pyroscope
		// does: only names kept as they are have a figure from the file.
		_, known := total[r.Name]
		if r.LeftTotal != r.RightTotal || (known && r.LeftTotal != strconv.FormatInt(total[r.Name], 10)) {
			t.Errorf("diff row %d: %+v, want total %d on both sides", k, r, total[r.Name])
		}
	}
}

// TestHeatmapExemplars reads SelectHeatmap's and SelectSeries' individual
// exemplars with the Connect client and feeds the exemplar's profile id back to
// profile_id_selector, as Grafana does when a heatmap cell is clicked.
func TestHeatmapExemplars(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	s := kilntest.Start(t)
	c := s.Clients(t, kilntest.NewTenant("peer-exemplars"))
	pc, err := loadProfileCase(t, root, "gdu/default.pgo")
	if err != nil {
		t.Fatal(err)
	}
	service := "peer-exemplars-" + kilntest.RandomHex(4)
	uuid := kilntest.NewUUID()
	if _, err := pushID(t, s, c, transports[0], pc.name, service, pc.raw, uuid); err != nil {
		t.Fatal(err)
	}
	i := len(pc.typeIDs) - 1
	start, end := queryWindow(pc.timeNanos, time.Now())
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	heat := func(et typesv1.ExemplarType) []*typesv1.Exemplar {
		h, err := c.Query.SelectHeatmap(ctx, connect.NewRequest(&querierv1.SelectHeatmapRequest{
			ProfileTypeID: pc.typeIDs[i], LabelSelector: `{service_name="` + service + `"}`,
			Start: start, End: end, Step: float64(end-start) / 1000 / 4, QueryType: querierv1.HeatmapQueryType_HEATMAP_QUERY_TYPE_INDIVIDUAL,
			ExemplarType: et,
		}))
		if err != nil {
			t.Fatal(err)
		}
		var ex []*typesv1.Exemplar
		for _, hs := range h.Msg.Series {
			for _, sl := range hs.Slots {
				ex = append(ex, sl.Exemplars...)
			}
		}
		return ex
	}
	if ex := heat(typesv1.ExemplarType_EXEMPLAR_TYPE_NONE); len(ex) != 0 {
		t.Errorf("EXEMPLAR_TYPE_NONE: %d exemplars", len(ex))
	}
	ex := heat(typesv1.ExemplarType_EXEMPLAR_TYPE_INDIVIDUAL)
	// An exemplar's value is the profile's total, frameless samples included
	// (as series totals are).
	if want := pc.expected[i] + pc.frameless[i]; len(ex) != 1 || ex[0].Value != want || ex[0].ProfileId == "" {
		t.Fatalf("want one exemplar of value %d, got %v", want, ex)
	}
	t.Logf("exemplar %v", ex[0])
	series := func(et typesv1.ExemplarType) []*typesv1.Exemplar {
		r, err := c.Query.SelectSeries(ctx, connect.NewRequest(&querierv1.SelectSeriesRequest{
			ProfileTypeID: pc.typeIDs[i], LabelSelector: `{service_name="` + service + `"}`,
			Start: start, End: end, Step: float64(end-start) / 1000 / 4, ExemplarType: et,
		}))
		if err != nil {
			t.Fatal(err)
		}
		var ex []*typesv1.Exemplar
		for _, sr := range r.Msg.Series {
			for _, pt := range sr.Points {
				ex = append(ex, pt.Exemplars...)
			}
		}
		return ex
	}
	if sx := series(typesv1.ExemplarType_EXEMPLAR_TYPE_NONE); len(sx) != 0 {
		t.Errorf("SelectSeries EXEMPLAR_TYPE_NONE: %d exemplars", len(sx))
	}
	if sx := series(typesv1.ExemplarType_EXEMPLAR_TYPE_INDIVIDUAL); len(sx) != 1 ||
		sx[0].ProfileId != ex[0].ProfileId || sx[0].Value != ex[0].Value || sx[0].Timestamp != ex[0].Timestamp {
		t.Errorf("SelectSeries exemplars %v, want the heatmap's %v", sx, ex[0])
	}
	for _, id := range []string{ex[0].ProfileId, uuid, "0123456789abcdef"} {
		r, err := c.Query.SelectMergeStacktraces(ctx, connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
			ProfileTypeID: pc.typeIDs[i], LabelSelector: `{service_name="` + service + `"}`,
			Start: start, End: end, ProfileIdSelector: []string{id},
		}))
		if err != nil {
			t.Fatal(err)
		}
		want := pc.expected[i]
		if id == "0123456789abcdef" {
			want = 0
		}
		if got := r.Msg.GetFlamegraph().GetTotal(); got != want {
			t.Errorf("profile_id_selector %q: total %d, want %d", id, got, want)
		}
	}
}
