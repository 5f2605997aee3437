package otlppeer

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"

	"connectrpc.com/connect"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	collpb "go.opentelemetry.io/proto/otlp/collector/profiles/v1development"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	grpcgzip "google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"kiln.dev/tests/lib/kilntest"
)

const (
	httpPath   = "/v1development/profiles"
	exportPath = "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export"
)

// startServer starts kiln (kilntest.Start) with its OTLP gRPC listener on
// 127.0.0.1 and a free port (Server.OTLPAddr), accepting before it returns.
func startServer(t *testing.T) *kilntest.Server {
	t.Helper()
	return kilntest.Start(t, kilntest.OTLPOnLoopback())
}

// exportGRPC sends req with the OTLP gRPC client, gzip-compressed as the
// OTel eBPF profiler and Collector do.
func exportGRPC(t *testing.T, addr, tenant string, req *collpb.ExportProfilesServiceRequest) (*collpb.ExportProfilesServiceResponse, error) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("grpc client: %v", err)
	}
	defer conn.Close()
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "x-scope-orgid", tenant)
	return collpb.NewProfilesServiceClient(conn).Export(ctx, req, grpc.UseCompressor(grpcgzip.Name))
}

type httpResult struct {
	status      int
	contentType string
	body        []byte
}

// postHTTP sends body to path as OTLP/HTTP does, gzipped when gz.
func postHTTP(t *testing.T, s *kilntest.Server, tenant, path, contentType string, body []byte, gz bool) httpResult {
	t.Helper()
	if gz {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		_, _ = w.Write(body)
		_ = w.Close()
		body = b.Bytes()
	}
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.HTTPURL()+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if gz {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := kilntest.TenantClient(t, tenant).Do(req)
	if err != nil {
		s.RequireAlive(t)
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return httpResult{resp.StatusCode, resp.Header.Get("Content-Type"), out}
}

// decodeResponse parses a 200 OTLP/HTTP answer in the encoding it names.
func decodeResponse(t *testing.T, r httpResult) *collpb.ExportProfilesServiceResponse {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("HTTP %d (%s): %s", r.status, r.contentType, r.body)
	}
	out := &collpb.ExportProfilesServiceResponse{}
	var err error
	if strings.HasPrefix(r.contentType, "application/json") {
		err = protojson.Unmarshal(r.body, out)
	} else {
		err = proto.Unmarshal(r.body, out)
	}
	if err != nil {
		t.Fatalf("response (%s): %v", r.contentType, err)
	}
	return out
}

// method is one way of sending a capture to Kiln.
type method struct {
	name string
	send func(t *testing.T, s *kilntest.Server, tenant string, c *capture) (*collpb.ExportProfilesServiceResponse, error)
	json bool // expectations come from the .pb.json file
}

func httpMethod(name, contentType string, json, gz bool) method {
	return method{name: name, json: json, send: func(t *testing.T, s *kilntest.Server, tenant string, c *capture) (*collpb.ExportProfilesServiceResponse, error) {
		body := c.bin
		if json {
			body = c.json
		}
		return decodeResponse(t, postHTTP(t, s, tenant, httpPath, contentType, body, gz)), nil
	}}
}

var methods = []method{
	{name: "grpc-gzip-otlp-port", send: func(t *testing.T, s *kilntest.Server, tenant string, c *capture) (*collpb.ExportProfilesServiceResponse, error) {
		return exportGRPC(t, s.OTLPAddr, tenant, c.req)
	}},
	{name: "grpc-gzip-main-port", send: func(t *testing.T, s *kilntest.Server, tenant string, c *capture) (*collpb.ExportProfilesServiceResponse, error) {
		return exportGRPC(t, s.GRPCAddr, tenant, c.req)
	}},
	httpMethod("http-protobuf", "application/x-protobuf", false, false),
	httpMethod("http-protobuf-gzip", "application/x-protobuf", false, true),
	httpMethod("http-application-protobuf", "application/protobuf", false, false),
	httpMethod("http-json", "application/json", true, false),
	httpMethod("http-json-gzip", "application/json", true, true),
	{name: "connect-proto-http-port", send: func(t *testing.T, s *kilntest.Server, tenant string, c *capture) (*collpb.ExportProfilesServiceResponse, error) {
		return decodeResponse(t, postHTTP(t, s, tenant, exportPath, "application/proto", c.bin, false)), nil
	}},
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// checkStored reads the tenant's data back through Pyroscope's Connect
// querier client and compares it with want.
func checkStored(t *testing.T, s *kilntest.Server, tenant string, want expectation) {
	t.Helper()
	q := querierv1connect.NewQuerierServiceClient(kilntest.TenantClient(t, tenant), s.HTTPURL())
	start, end := want.window()
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	pt, err := q.ProfileTypes(ctx, connect.NewRequest(&querierv1.ProfileTypesRequest{Start: start, End: end}))
	if err != nil {
		s.RequireAlive(t)
		t.Fatalf("ProfileTypes: %v", err)
	}
	got := map[string]bool{}
	for _, p := range pt.Msg.GetProfileTypes() {
		got[p.GetID()] = true
	}
	if g, w := strings.Join(sortedKeys(got), " "), strings.Join(sortedKeys(want.types), " "); g != w {
		t.Errorf("ProfileTypes: got %s, want %s", g, w)
	}
	lv, err := q.LabelValues(ctx, connect.NewRequest(&typesv1.LabelValuesRequest{Name: "service_name", Start: start, End: end}))
	if err != nil {
		t.Fatalf("LabelValues service_name: %v", err)
	}
	got = map[string]bool{}
	for _, n := range lv.Msg.GetNames() {
		got[n] = true
	}
	if g, w := strings.Join(sortedKeys(got), " | "), strings.Join(sortedKeys(want.services), " | "); g != w {
		t.Errorf("LabelValues service_name: got %s, want %s", g, w)
	}
	for k, v := range want.totals {
		if total := mergedTotal(t, q, k.typeID, `{service_name=`+strconv.Quote(k.service)+`}`, start, end); total != v {
			t.Errorf("SelectMergeStacktraces %s %s: total %d, want %d", k.typeID, k.service, total, v)
		}
	}
}

func mergedTotal(t *testing.T, q querierv1connect.QuerierServiceClient, typeID, selector string, start, end int64) int64 {
	t.Helper()
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	r, err := q.SelectMergeStacktraces(ctx, connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
		ProfileTypeID: typeID, LabelSelector: selector, Start: start, End: end,
	}))
	if err != nil {
		t.Fatalf("SelectMergeStacktraces %s %s: %v", typeID, selector, err)
	}
	return r.Msg.GetFlamegraph().GetTotal()
}

// TestExportCaptures sends each capture by each method, to a tenant of its
// own, and reads back every profile type and service total.
func TestExportCaptures(t *testing.T) {
	s := startServer(t)
	for _, base := range []string{ebpfCapture, ebpfCapture2025} {
		c := loadCapture(t, base)
		want, wantJSON := expect(c.req, nil), expect(c.jsonReq, nil)
		if len(want.totals) == 0 {
			t.Fatalf("%s: nothing expected", base)
		}
		t.Logf("%s: %d profile types, %d services, %d series totals", base, len(want.types), len(want.services), len(want.totals))
		for _, m := range methods {
			t.Run(strings.ReplaceAll(base, "/", "_")+"/"+m.name, func(t *testing.T) {
				tenant := kilntest.NewTenant("otlp")
				resp, err := m.send(t, s, tenant, c)
				if err != nil {
					s.RequireAlive(t)
					t.Fatalf("export: %v", err)
				}
				if ps := resp.GetPartialSuccess(); ps.GetRejectedProfiles() != 0 || ps.GetErrorMessage() != "" {
					t.Errorf("partial success: rejected %d: %s", ps.GetRejectedProfiles(), ps.GetErrorMessage())
				}
				if m.json {
					checkStored(t, s, tenant, wantJSON)
				} else {
					checkStored(t, s, tenant, want)
				}
			})
		}
	}
}

// TestCorruptedCapture: the capture whose samples point past the stack
// table is refused by every method with a message naming the bad index, and
// nothing of it is stored.
func TestCorruptedCapture(t *testing.T) {
	s := startServer(t)
	c := loadCapture(t, corruptedCapture)
	const bad = "stack_index 1000000000 out of range"
	for _, addr := range []string{s.OTLPAddr, s.GRPCAddr} {
		tenant := kilntest.NewTenant("corrupt")
		_, err := exportGRPC(t, addr, tenant, c.req)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), bad) {
			t.Errorf("gRPC %s: got %v, want InvalidArgument naming %q", addr, err, bad)
		}
	}
	tenant := kilntest.NewTenant("corrupt")
	r := postHTTP(t, s, tenant, httpPath, "application/x-protobuf", c.bin, false)
	st := &rpcstatus.Status{}
	if err := proto.Unmarshal(r.body, st); r.status != http.StatusBadRequest || err != nil ||
		st.GetCode() != int32(codes.InvalidArgument) || !strings.Contains(st.GetMessage(), bad) {
		t.Errorf("HTTP protobuf: %d %s %q (%v)", r.status, r.contentType, r.body, err)
	}
	r = postHTTP(t, s, tenant, httpPath, "application/json", c.json, true)
	st = &rpcstatus.Status{}
	if err := protojson.Unmarshal(r.body, st); r.status != http.StatusBadRequest || err != nil ||
		!strings.Contains(st.GetMessage(), bad) {
		t.Errorf("HTTP JSON: %d %s %q (%v)", r.status, r.contentType, r.body, err)
	}
	q := querierv1connect.NewQuerierServiceClient(kilntest.TenantClient(t, tenant), s.HTTPURL())
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	pt, err := q.ProfileTypes(ctx, connect.NewRequest(&querierv1.ProfileTypesRequest{Start: 0, End: 1 << 62}))
	if err != nil || len(pt.Msg.GetProfileTypes()) != 0 {
		t.Errorf("after the corrupted capture: %v, %v", pt, err)
	}
}

// TestPartialSuccess: one bad profile among good ones is reported in
// partial_success and the others are stored.
func TestPartialSuccess(t *testing.T) {
	s := startServer(t)
	c := loadCapture(t, ebpfCapture)
	req := proto.Clone(c.req).(*collpb.ExportProfilesServiceRequest)
	req.ResourceProfiles[1].ScopeProfiles[0].Profiles[0].Samples[0].StackIndex = 5000
	want := expect(req, func(i, j, k int) bool { return i == 1 && j == 0 && k == 0 })
	for _, viaGRPC := range []bool{true, false} {
		tenant := kilntest.NewTenant("partial")
		var resp *collpb.ExportProfilesServiceResponse
		if viaGRPC {
			var err error
			if resp, err = exportGRPC(t, s.OTLPAddr, tenant, req); err != nil {
				t.Fatalf("export: %v", err)
			}
		} else {
			body, _ := proto.Marshal(req)
			resp = decodeResponse(t, postHTTP(t, s, tenant, httpPath, "application/x-protobuf", body, false))
		}
		ps := resp.GetPartialSuccess()
		if ps.GetRejectedProfiles() != 1 || !strings.Contains(ps.GetErrorMessage(),
			"resource_profiles[1].scope_profiles[0].profiles[0].samples[0].stack_index 5000 out of range") {
			t.Errorf("partial success: %v", ps)
		}
		checkStored(t, s, tenant, want)
	}
}

// TestBadRequests: a broken dictionary, a missing dictionary and an
// unsupported media type fail the whole request.
func TestBadRequests(t *testing.T) {
	s := startServer(t)
	c := loadCapture(t, ebpfCapture)
	tenant := kilntest.NewTenant("bad")
	req := proto.Clone(c.req).(*collpb.ExportProfilesServiceRequest)
	req.Dictionary.StackTable[1].LocationIndices[0] = 99999
	_, err := exportGRPC(t, s.OTLPAddr, tenant, req)
	want := fmt.Sprintf("dictionary.stack_table[1].location_indices[0] 99999 out of range (location_table has %d entries)",
		len(req.Dictionary.LocationTable))
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), want) {
		t.Errorf("broken dictionary: %v, want InvalidArgument %q", err, want)
	}
	req.Dictionary = nil
	_, err = exportGRPC(t, s.OTLPAddr, tenant, req)
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "dictionary") {
		t.Errorf("no dictionary: %v", err)
	}
	if r := postHTTP(t, s, tenant, httpPath, "text/plain", c.bin, false); r.status != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain: HTTP %d %s", r.status, r.body)
	}
	if r := postHTTP(t, s, tenant, httpPath, "application/x-protobuf", []byte{0xff, 0xff}, false); r.status != http.StatusBadRequest {
		t.Errorf("malformed protobuf: HTTP %d %s", r.status, r.body)
	}
}
