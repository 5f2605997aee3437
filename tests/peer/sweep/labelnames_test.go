package sweep

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"connectrpc.com/connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"google.golang.org/protobuf/proto"

	"kiln.dev/tests/lib/kilntest"
)

// TestLabelNamesWithoutCapability is issue #10 item 1: LabelNames without
// allow-utf8-labelnames in Accept (curl, application/proto, older data
// sources) crashed the process once the tenant had a dotted label name
// (strcmp with a NULL label in collect_names). Each client kind now gets
// the legacy names only, with the header the dotted ones too, and
// LabelValues of a dotted name answers either way.
func TestLabelNamesWithoutCapability(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	s := kilntest.Start(t, kilntest.OTLPOff())
	w := newWorld(t, s, root)
	c := w.clients()
	tenant := w.tenants[0]
	now := strconv.FormatInt(time.Now().Unix(), 10)
	q := url.Values{"name": {"app.cpu{host.name=h1}"}, "from": {now}, "until": {now}}
	if r, _ := w.post(t.Context(), tenant, http.MethodPost, "/ingest?"+q.Encode(), "", []byte(foldedBody), nil); r.err != nil {
		t.Fatalf("/ingest: %v", r.err)
	}
	p := kilntest.LoadProfile(t, root, "grafana-pyroscope/profile_python")
	ctx, cancel := reqCtx(t.Context(), tenant, false)
	defer cancel()
	_, err := c.push.Push(ctx, connect.NewRequest(&pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
		Labels: []*typesv1.LabelPair{{Name: "__name__", Value: p.Name}, {Name: "service_name", Value: "py"},
			{Name: "k8s.pod.name", Value: "pod-1"}},
		Samples: []*pushv1.RawSample{{RawProfile: p.Raw}},
	}}}))
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	start, end := int64(1), time.Now().Add(time.Hour).UnixMilli()
	req := &typesv1.LabelNamesRequest{Start: start, End: end}
	legacy := []string{"__name__", "service_name"}
	dotted := []string{"host.name", "k8s.pod.name"}
	check := func(what string, names []string, utf8 bool) {
		t.Helper()
		for _, n := range legacy {
			if !slices.Contains(names, n) {
				t.Errorf("%s: %s missing from %q", what, n, names)
			}
		}
		for _, n := range dotted {
			if slices.Contains(names, n) != utf8 {
				t.Errorf("%s: %s listed=%v, want %v (allow-utf8-labelnames=%v): %q", what, n, !utf8, utf8, utf8, names)
			}
		}
	}

	// curl -H 'Content-Type: application/proto' --data-binary @req.pb
	body, _ := proto.Marshal(req)
	r, out := w.curl(withHeaders(t.Context(), http.Header{"X-Scope-Orgid": {tenant}}), "/querier.v1.QuerierService/LabelNames", body)
	if r.err != nil || r.http != http.StatusOK {
		s.RequireAlive(t)
		t.Fatalf("curl-like LabelNames: HTTP %d: %v", r.http, r.err)
	}
	resp := &typesv1.LabelNamesResponse{}
	if err := proto.Unmarshal(out, resp); err != nil {
		t.Fatalf("curl-like LabelNames: %v", err)
	}
	check("curl-like LabelNames", resp.Names, false)

	for _, name := range []string{"connect-proto", "connect-json", "grpc"} {
		for _, utf8 := range []bool{false, true} {
			ctx, cancel := reqCtx(t.Context(), tenant, utf8)
			ln, err := c.query[name].LabelNames(ctx, connect.NewRequest(req))
			if err != nil {
				cancel()
				s.CheckAfterError(t, err)
				t.Fatalf("%s LabelNames (utf8 %v): %v", name, utf8, err)
			}
			check(name+" LabelNames", ln.Msg.Names, utf8)
			lv, err := c.query[name].LabelValues(ctx, connect.NewRequest(&typesv1.LabelValuesRequest{Name: "host.name", Start: start, End: end}))
			cancel()
			if err != nil || !slices.Equal(lv.Msg.GetNames(), []string{"h1"}) {
				t.Errorf("%s LabelValues(host.name) (utf8 %v): %v %v", name, utf8, lv, err)
			}
		}
	}
	s.RequireAlive(t)
	if code := s.ReadyStatus(); code != http.StatusOK {
		t.Fatalf("GET /ready after the LabelNames calls: %d", code)
	}
}
