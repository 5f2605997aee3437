package sweep

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	collpb "go.opentelemetry.io/proto/otlp/collector/profiles/v1development"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"kiln.dev/tests/lib/kilntest"
)

// utf8Accept is the capability header of profilecli and Grafana: label
// names that are not legacy Prometheus names may be returned.
const utf8Accept = "application/proto; allow-utf8-labelnames=true"

// otlpExport is the OTLP Export method, served over gRPC and Connect.
const otlpExport = "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export"

// pprofFiles are pushed before the sweep, each as its own service: several
// languages, profilers and profile types, numeric and string labels.
var pprofFiles = []string{
	"grafana-pyroscope/cpu_go_truncated_1.pb.gz",
	"grafana-pyroscope/profile_java",
	"grafana-pyroscope/profile_python",
	"grafana-pyroscope/profile_ruby",
	"grafana-pyroscope/profile_rust",
	"grafana-pyroscope/profile_nodejs",
	"grafana-pyroscope/nodejs-heap.pb.gz",
	"grafana-pyroscope/heap-js.pprof",
	"grafana-pyroscope/dotnet.labels.pprof",
	"grafana-pyroscope/jfr-kafka-cpu_lock0_alloc0.mutex_delay.pb.gz",
	"grafana-pyroscope/jfr-dump2.memory_live.pb.gz",
	"grafana-pyroscope/single_group_with_optional_span_id.pb.gz",
	"parca/alloc_space_delta.pb.gz",
	"parca/profile-with-labels.pb.gz",
	"parca/fgprof.pb.gz",
	"gdu/default.pgo",
}

// world is what the server holds before the sweep, and the pools the
// generators draw from.
type world struct {
	s            *kilntest.Server
	root         string
	tenants      []string // [0] and [1] hold the data
	ingestTenant string   // the ingest sweep writes here only
	start, end   int64    // ms, a window holding every profile
	labelNames   []string
	labelValues  []string
	typeIDs      []string
	apps         []string
	profileIDs   []string
	functions    []string
	pprofRaw     [][]byte // valid bodies to mutate
	otlpBin      []byte
	otlpJSON     []byte
	want         map[string]int64 // tenant/type/service -> total computed from the files
	h1, h2c      *http.Client
}

// clients bundles the upstream clients of the sweep; tenant and extra
// headers travel in the request context (recTransport).
type clients struct {
	push     pushv1connect.PusherServiceClient
	pushJSON pushv1connect.PusherServiceClient
	pushGRPC pushv1connect.PusherServiceClient
	query    map[string]querierv1connect.QuerierServiceClient
}

func newWorld(t *testing.T, s *kilntest.Server, root string) *world {
	h1t, h2t := kilntest.NewH1Transport(), kilntest.NewH2CTransport()
	h1t.MaxIdleConnsPerHost = 16
	t.Cleanup(func() { h1t.CloseIdleConnections(); h2t.CloseIdleConnections() })
	return &world{
		s: s, root: root,
		tenants:      []string{kilntest.NewTenant("sweep-a"), kilntest.NewTenant("sweep-b")},
		ingestTenant: kilntest.NewTenant("sweep-ingest"),
		want:         map[string]int64{},
		h1:           &http.Client{Transport: recTransport{h1t}},
		h2c:          &http.Client{Transport: recTransport{h2t}},
	}
}

func (w *world) clients() *clients {
	return &clients{
		push:     pushv1connect.NewPusherServiceClient(w.h1, w.s.HTTPURL()),
		pushJSON: pushv1connect.NewPusherServiceClient(w.h1, w.s.HTTPURL(), connect.WithProtoJSON()),
		pushGRPC: pushv1connect.NewPusherServiceClient(w.h2c, w.s.GRPCURL(), connect.WithGRPC()),
		query: map[string]querierv1connect.QuerierServiceClient{
			"connect-proto": querierv1connect.NewQuerierServiceClient(w.h1, w.s.HTTPURL()),
			"connect-json":  querierv1connect.NewQuerierServiceClient(w.h1, w.s.HTTPURL(), connect.WithProtoJSON()),
			"connect-gzip":  querierv1connect.NewQuerierServiceClient(w.h1, w.s.HTTPURL(), connect.WithSendGzip()),
			"grpc":          querierv1connect.NewQuerierServiceClient(w.h2c, w.s.GRPCURL(), connect.WithGRPC()),
		},
	}
}

// reqCtx is a request context for tenant ("" sends no header), with the
// capability header when utf8.
func reqCtx(parent context.Context, tenant string, utf8 bool) (context.Context, context.CancelFunc) {
	h := http.Header{}
	if tenant != "" {
		h.Set("X-Scope-OrgID", tenant)
	}
	if utf8 {
		h.Set("Accept", utf8Accept)
	}
	ctx, cancel := context.WithTimeout(parent, sweepTimeout)
	return withHeaders(ctx, h), cancel
}

func wantKey(tenant, typeID, service string) string { return tenant + "/" + typeID + "/" + service }

// pushData pushes the data the sweep runs against: every pprof file over
// Connect or gRPC with dotted and UTF-8 labels, the OTLP capture over
// OTLP/HTTP and gRPC with a k8s.pod.name resource attribute, and folded
// and lines bodies on /ingest with dotted and UTF-8 tags.
func (w *world) pushData(t *testing.T, c *clients) {
	t.Helper()
	w.start, w.end = 1, time.Now().Add(time.Hour).UnixMilli()
	for i, rel := range pprofFiles {
		p := kilntest.LoadProfile(t, w.root, rel)
		tenant := w.tenants[i%3/2] // two of three in the first tenant
		service := "sweep-" + strings.Trim(strings.ReplaceAll(filepath.Base(rel), ".", "-"), "-")
		id := kilntest.NewUUID()
		req := &pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
			Labels: []*typesv1.LabelPair{
				{Name: "__name__", Value: p.Name}, {Name: "service_name", Value: service},
				{Name: "k8s.pod.name", Value: fmt.Sprintf("pod-%d.example", i)},
				{Name: "région", Value: "ünï-名前"}, {Name: "env", Value: "prod"},
				// Cumulative sample types count as pushed (no delta against
				// a previous push), as the other peer tests push them.
				{Name: "__delta__", Value: "false"},
			},
			Samples: []*pushv1.RawSample{{RawProfile: p.Raw, ID: id}},
		}}}
		pc := c.push
		if i%2 == 1 {
			pc = c.pushGRPC
		}
		ctx, cancel := reqCtx(t.Context(), tenant, false)
		_, err := pc.Push(ctx, connect.NewRequest(req))
		cancel()
		if err != nil {
			w.s.CheckAfterError(t, err)
			t.Fatalf("push %s: %v", rel, err)
		}
		for k, id := range p.TypeIDs {
			if p.PerPush[k] != 0 {
				w.want[wantKey(tenant, id, service)] += p.PerPush[k]
			}
		}
		w.profileIDs = append(w.profileIDs, id)
		w.pprofRaw = append(w.pprofRaw, p.Raw)
	}
	w.pushOTLP(t)
	w.pushIngest(t)
}

func (w *world) pushOTLP(t *testing.T) {
	t.Helper()
	var err error
	if w.otlpBin, err = os.ReadFile(filepath.Join(w.root, "grafana-pyroscope/otel-ebpf-profile.pb.bin")); err != nil {
		t.Fatal(err)
	}
	if w.otlpJSON, err = os.ReadFile(filepath.Join(w.root, "grafana-pyroscope/otel-ebpf-profile.pb.json")); err != nil {
		t.Fatal(err)
	}
	req := &collpb.ExportProfilesServiceRequest{}
	if err := proto.Unmarshal(w.otlpBin, req); err != nil {
		t.Fatal(err)
	}
	for i, rp := range req.ResourceProfiles {
		if rp.Resource != nil {
			rp.Resource.Attributes = append(rp.Resource.Attributes, &commonpb.KeyValue{Key: "k8s.pod.name",
				Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: fmt.Sprintf("otlp-pod-%d", i%3)}}})
		}
	}
	body, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := w.post(t.Context(), w.tenants[0], http.MethodPost, "/v1development/profiles", "application/x-protobuf", body, nil)
	if r.err != nil {
		t.Fatalf("OTLP/HTTP push: %v", r.err)
	}
	ctx, cancel := reqCtx(t.Context(), w.tenants[1], false)
	defer cancel()
	var out raw
	jreq := &collpb.ExportProfilesServiceRequest{}
	if err := protojson.Unmarshal(w.otlpJSON, jreq); err != nil {
		t.Fatal(err)
	}
	in := raw(looseMarshal(jreq))
	cl := connect.NewClient[raw, raw](w.h2c, w.s.GRPCURL()+otlpExport, connect.WithGRPC(), connect.WithCodec(rawCodec{}))
	if _, err := cl.CallUnary(ctx, connect.NewRequest(&in)); err != nil {
		w.s.CheckAfterError(t, err)
		t.Fatalf("OTLP gRPC push: %v", err)
	}
	_ = out
}

// foldedBody is a few folded stacks with UTF-8 frames.
const foldedBody = "main;work;compute 120\nmain;work;io 30\nmain;ünïcode;名前 7\nmain;idle 1\n"

func (w *world) pushIngest(t *testing.T) {
	t.Helper()
	now := strconv.FormatInt(time.Now().Unix(), 10)
	pushes := []struct{ name, format, body string }{
		{"app.cpu{host.name=h1}", "", foldedBody},
		{"sweep-folded.cpu{host.name=h2,region=ünï-名前}", "folded", foldedBody},
		{"sweep-lines.wall{host.name=h1,pod=p-1}", "lines", "main;a;b\nmain;a;b\nmain;c\n"},
		{"sweep-alloc.alloc_space{k8s.pod.name=x-1}", "", "main;alloc 4096\nmain;grow 1024\n"},
	}
	if raw, err := os.ReadFile(filepath.Join(w.root, "async-profiler/sample1.collapsed")); err == nil {
		pushes = append(pushes, struct{ name, format, body string }{"sweep-async.itimer{host.name=h3}", "", string(raw)})
	}
	for _, p := range pushes {
		q := url.Values{"name": {p.name}, "from": {now}, "until": {now}, "spyName": {"sweep"}}
		if p.format != "" {
			q.Set("format", p.format)
		}
		r, _ := w.post(t.Context(), w.tenants[0], http.MethodPost, "/ingest?"+q.Encode(), "", []byte(p.body), nil)
		if r.err != nil {
			t.Fatalf("/ingest %s: %v", p.name, r.err)
		}
	}
}

// post sends one raw HTTP request as tenant and returns its result and
// body.
func (w *world) post(parent context.Context, tenant, method, path, contentType string, body []byte, h http.Header) (result, []byte) {
	ctx, cancel := context.WithTimeout(parent, sweepTimeout)
	defer cancel()
	// The query string goes out as it is, malformed escapes included.
	route, query, _ := strings.Cut(path, "?")
	req, err := http.NewRequestWithContext(ctx, method, w.s.HTTPURL()+route, bytes.NewReader(body))
	if err != nil {
		return result{err: err}, nil
	}
	req.URL.RawQuery = query
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if tenant != "" {
		req.Header.Set("X-Scope-OrgID", tenant)
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	return rawResult(w.h1, req)
}

// snapshot is what tenant holds: the SelectMergeStacktraces total of
// every (profile type, service) pair the Series call lists, and the label
// names (with the capability header). Any failure fails the test.
func (w *world) snapshot(t *testing.T, c *clients, tenant string) map[string]int64 {
	t.Helper()
	q := c.query["connect-proto"]
	ctx, cancel := reqCtx(t.Context(), tenant, true)
	defer cancel()
	sr, err := q.Series(ctx, connect.NewRequest(&querierv1.SeriesRequest{
		LabelNames: []string{"__profile_type__", "service_name"}, Start: w.start, End: w.end}))
	if err != nil {
		w.s.CheckAfterError(t, err)
		t.Fatalf("Series(%s): %v", tenant, err)
	}
	out := map[string]int64{}
	maxNodes := int64(1 << 20)
	for _, ls := range sr.Msg.LabelsSet {
		var typeID, service string
		for _, l := range ls.Labels {
			switch l.Name {
			case "__profile_type__":
				typeID = l.Value
			case "service_name":
				service = l.Value
			}
		}
		if _, ok := out[wantKey(tenant, typeID, service)]; ok {
			continue
		}
		r, err := q.SelectMergeStacktraces(ctx, connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
			ProfileTypeID: typeID, LabelSelector: `{service_name=` + strconv.Quote(service) + `}`,
			Start: w.start, End: w.end, MaxNodes: &maxNodes}))
		if err != nil {
			w.s.CheckAfterError(t, err)
			t.Fatalf("SelectMergeStacktraces(%s, %s, %s): %v", tenant, typeID, service, err)
		}
		out[wantKey(tenant, typeID, service)] = r.Msg.Flamegraph.GetTotal()
	}
	ln, err := q.LabelNames(ctx, connect.NewRequest(&typesv1.LabelNamesRequest{Start: w.start, End: w.end}))
	if err != nil {
		w.s.CheckAfterError(t, err)
		t.Fatalf("LabelNames(%s): %v", tenant, err)
	}
	out[tenant+"/label names: "+strings.Join(ln.Msg.Names, ",")] = int64(len(ln.Msg.Names))
	return out
}

// learn fills the generators' pools from what the server holds.
func (w *world) learn(t *testing.T, c *clients, snaps ...map[string]int64) {
	t.Helper()
	q := c.query["connect-proto"]
	names, values, types := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, tenant := range w.tenants {
		ctx, cancel := reqCtx(t.Context(), tenant, true)
		ln, err := q.LabelNames(ctx, connect.NewRequest(&typesv1.LabelNamesRequest{Start: w.start, End: w.end}))
		if err != nil {
			cancel()
			t.Fatalf("LabelNames: %v", err)
		}
		for _, n := range ln.Msg.Names {
			names[n] = true
			lv, err := q.LabelValues(ctx, connect.NewRequest(&typesv1.LabelValuesRequest{Name: n, Start: w.start, End: w.end}))
			if err != nil {
				cancel()
				t.Fatalf("LabelValues(%s): %v", n, err)
			}
			for k, v := range lv.Msg.Names {
				if k < 50 {
					values[v] = true
				}
			}
		}
		pt, err := q.ProfileTypes(ctx, connect.NewRequest(&querierv1.ProfileTypesRequest{Start: w.start, End: w.end}))
		cancel()
		if err != nil {
			t.Fatalf("ProfileTypes: %v", err)
		}
		for _, p := range pt.Msg.ProfileTypes {
			types[p.ID] = true
		}
	}
	w.labelNames, w.labelValues, w.typeIDs = keys(names), keys(values), keys(types)
	w.apps = []string{"app.cpu", "sweep-folded.cpu", "sweep-lines.wall", "process_cpu", "memory", "app", "app.unknown"}
	// Function names for call-site selectors: the first levels of one tree.
	ctx, cancel := reqCtx(t.Context(), w.tenants[0], false)
	defer cancel()
	for _, id := range w.typeIDs[:min(3, len(w.typeIDs))] {
		r, err := q.SelectMergeStacktraces(ctx, connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
			ProfileTypeID: id, LabelSelector: "{}", Start: w.start, End: w.end}))
		if err == nil {
			names := r.Msg.Flamegraph.GetNames()
			w.functions = append(w.functions, names[:min(20, len(names))]...)
		}
	}
	w.functions = append(w.functions, "", "missing_function", huge)
	t.Logf("pools: %d label names %q, %d values, %d profile types, %d functions",
		len(w.labelNames), w.labelNames, len(w.labelValues), len(w.typeIDs), len(w.functions))
	if len(w.typeIDs) == 0 || !slices.Contains(w.labelNames, "k8s.pod.name") || !slices.Contains(w.labelNames, "host.name") {
		t.Fatalf("the pushed data lack profile types or dotted label names: %q", w.labelNames)
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
