package ingesterrors

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/pprof/profile"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	collpb "go.opentelemetry.io/proto/otlp/collector/profiles/v1development"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	profilespb "go.opentelemetry.io/proto/otlp/profiles/v1development"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"kiln.dev/tests/lib/kilntest"
)

// result is what one request got: the Connect/gRPC code name ("ok" on
// success; "" for plain HTTP) and the HTTP status (0 for gRPC).
type result struct {
	code   string
	status int
	msg    string
}

func (r result) String() string {
	return fmt.Sprintf("code=%q status=%d msg=%.160q", r.code, r.status, r.msg)
}

// pprofProfile is a CPU profile with n one-frame stacks whose function names
// are nameLen bytes long, at time ts; uncompressed, so its size is known.
func pprofProfile(t testing.TB, n, nameLen int, ts time.Time) []byte {
	t.Helper()
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:     10000000,
		TimeNanos:  ts.UnixNano(),
	}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("f%d_", i)
		name += strings.Repeat("x", max(0, nameLen-len(name)))
		fn := &profile.Function{ID: uint64(i + 1), Name: name}
		loc := &profile.Location{ID: uint64(i + 1), Line: []profile.Line{{Function: fn}}}
		p.Function = append(p.Function, fn)
		p.Location = append(p.Location, loc)
		p.Sample = append(p.Sample, &profile.Sample{Location: []*profile.Location{loc}, Value: []int64{10000000}})
	}
	var b bytes.Buffer
	if err := p.WriteUncompressed(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gzipBytes(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// zeroBomb is gzip of n zero bytes, written in chunks.
func zeroBomb(t testing.TB, n int) []byte {
	t.Helper()
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	chunk := make([]byte, 1<<20)
	for left := n; left > 0; left -= len(chunk) {
		if _, err := w.Write(chunk[:min(left, len(chunk))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// pushRequest wraps raw pprof bytes in a PushRequest with labels.
func pushRequest(raw []byte, labels ...string) *pushv1.PushRequest {
	ls := []*typesv1.LabelPair{{Name: "__name__", Value: "process_cpu"}, {Name: "service_name", Value: "errors-svc"}}
	for i := 0; i+1 < len(labels); i += 2 {
		ls = append(ls, &typesv1.LabelPair{Name: labels[i], Value: labels[i+1]})
	}
	return &pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
		Labels: ls, Samples: []*pushv1.RawSample{{RawProfile: raw}},
	}}}
}

// pushGRPC sends req with Pyroscope's push client over gRPC.
func pushGRPC(t testing.TB, s *kilntest.Server, tenant string, req *pushv1.PushRequest) result {
	t.Helper()
	c := s.Clients(t, tenant)
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	_, err := c.PushGRPC.Push(ctx, connect.NewRequest(req))
	if err == nil {
		return result{code: "ok"}
	}
	return result{code: connect.CodeOf(err).String(), msg: err.Error()}
}

// postRaw POSTs body to path with headers (k, v pairs) and the tenant.
func postRaw(t testing.TB, s *kilntest.Server, tenant, path string, body []byte, headers ...string) (int, []byte) {
	t.Helper()
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.HTTPURL()+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := kilntest.TenantClient(t, tenant).Do(req)
	if err != nil {
		s.RequireAlive(t)
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// pushConnect sends req as Connect binary proto (what Alloy sends), with
// extra headers, reading the HTTP status and the Connect error code.
func pushConnect(t testing.TB, s *kilntest.Server, tenant string, req *pushv1.PushRequest, headers ...string) result {
	t.Helper()
	body, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return connectResult(postRaw(t, s, tenant, "/push.v1.PusherService/Push", body,
		append([]string{"Content-Type", "application/proto"}, headers...)...))
}

func connectResult(st int, body []byte) result {
	if st == http.StatusOK {
		return result{code: "ok", status: st}
	}
	var e struct{ Code, Message string }
	_ = json.Unmarshal(body, &e)
	return result{code: e.Code, status: st, msg: e.Message}
}

// ingest POSTs body to /ingest?query.
func ingest(t testing.TB, s *kilntest.Server, tenant, query string, body []byte, headers ...string) result {
	t.Helper()
	st, out := postRaw(t, s, tenant, "/ingest?"+query, body, headers...)
	return result{status: st, msg: string(out)}
}

// folded is a folded-stacks body of about n bytes (distinct stacks).
func folded(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "main;work_%06d;leaf 1\n", i)
	}
	return b.Bytes()
}

// otlpCapture is the OTel eBPF capture of the shared test data.
func otlpCapture(t testing.TB) *collpb.ExportProfilesServiceRequest {
	t.Helper()
	_, root := kilntest.RequireEnv(t)
	bin, err := os.ReadFile(filepath.Join(root, "grafana-pyroscope/otel-ebpf-profile.pb.bin"))
	if err != nil {
		t.Fatal(err)
	}
	req := &collpb.ExportProfilesServiceRequest{}
	if err := proto.Unmarshal(bin, req); err != nil {
		t.Fatal(err)
	}
	return req
}

// otlpOne is the capture cut to its first profile, timed now, its samples
// copied to n (0 keeps them), then changed by mutate (may be nil).
func otlpOne(t testing.TB, n int, mutate func(*collpb.ExportProfilesServiceRequest)) *collpb.ExportProfilesServiceRequest {
	t.Helper()
	req := otlpCapture(t)
	for _, rp := range req.ResourceProfiles {
		if len(rp.ScopeProfiles) > 0 && len(rp.ScopeProfiles[0].Profiles) > 0 {
			sp := rp.ScopeProfiles[0]
			sp.Profiles = sp.Profiles[:1]
			rp.ScopeProfiles = rp.ScopeProfiles[:1]
			req.ResourceProfiles = []*profilespb.ResourceProfiles{rp}
			break
		}
	}
	p := req.ResourceProfiles[0].ScopeProfiles[0].Profiles[0]
	p.TimeUnixNano = uint64(time.Now().UnixNano())
	if n > 0 {
		s0 := p.Samples[0]
		p.Samples = make([]*profilespb.Sample, n)
		for i := range p.Samples {
			p.Samples[i] = proto.Clone(s0).(*profilespb.Sample)
			p.Samples[i].TimestampsUnixNano = nil
			p.Samples[i].Values = []int64{int64(i + 1)}
		}
	}
	if mutate != nil {
		mutate(req)
	}
	return req
}

func otlpProfile(req *collpb.ExportProfilesServiceRequest) *profilespb.Profile {
	return req.ResourceProfiles[0].ScopeProfiles[0].Profiles[0]
}

// addResourceAttr adds a string attribute to the request's resource.
func addResourceAttr(req *collpb.ExportProfilesServiceRequest, k, v string) {
	rp := req.ResourceProfiles[0]
	if rp.Resource == nil {
		rp.Resource = &resourcepb.Resource{}
	}
	rp.Resource.Attributes = append(rp.Resource.Attributes, &commonpb.KeyValue{
		Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}})
}

// otlpGRPC exports req with the OTLP gRPC client to the main gRPC port.
func otlpGRPC(t testing.TB, s *kilntest.Server, tenant string, req *collpb.ExportProfilesServiceRequest) result {
	t.Helper()
	conn, err := grpc.NewClient(s.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "x-scope-orgid", tenant)
	_, err = collpb.NewProfilesServiceClient(conn).Export(ctx, req)
	if err == nil {
		return result{code: "ok"}
	}
	return result{code: connect.Code(status.Code(err)).String(), msg: err.Error()}
}

// otlpHTTP posts body to OTLP/HTTP as protobuf, with extra headers.
func otlpHTTP(t testing.TB, s *kilntest.Server, tenant string, body []byte, headers ...string) result {
	t.Helper()
	st, out := postRaw(t, s, tenant, "/v1development/profiles", body,
		append([]string{"Content-Type", "application/x-protobuf"}, headers...)...)
	return result{status: st, msg: string(out)}
}

func marshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type collOTLP = collpb.ExportProfilesServiceRequest

func decodeOTLP(t testing.TB, b []byte) *collOTLP {
	t.Helper()
	r := &collOTLP{}
	if err := proto.Unmarshal(b, r); err != nil {
		t.Fatal(err)
	}
	return r
}
