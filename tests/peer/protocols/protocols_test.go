package protocols

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/pprof/profile"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"google.golang.org/protobuf/proto"

	"kiln.dev/tests/lib/kilntest"
)

const typeID = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"

// protocol is one way a client reaches the HTTP port.
type protocol struct {
	name string
	h2c  bool // HTTP/2 over cleartext instead of HTTP/1.1
	opts []connect.ClientOption
}

var protocols = []protocol{
	{name: "connect", opts: nil},
	{name: "connect-json", opts: []connect.ClientOption{connect.WithProtoJSON()}},
	{name: "grpc", h2c: true, opts: []connect.ClientOption{connect.WithGRPC()}},
	{name: "grpc-web", opts: []connect.ClientOption{connect.WithGRPCWeb()}},
	{name: "grpc-web-json", opts: []connect.ClientOption{connect.WithGRPCWeb(), connect.WithProtoJSON()}},
	{name: "grpc-gzip", h2c: true, opts: []connect.ClientOption{connect.WithGRPC(), connect.WithSendGzip()}},
	{name: "grpc-web-gzip", opts: []connect.ClientOption{connect.WithGRPCWeb(), connect.WithSendGzip()}},
}

// clients returns the push and query clients of p against the HTTP port,
// and the HTTP version each request used (checked: gRPC must arrive as
// HTTP/2 on the same port as the HTTP/1.1 calls).
func clients(t *testing.T, s *kilntest.Server, p protocol) (pushv1connect.PusherServiceClient, querierv1connect.QuerierServiceClient, *protoRecorder) {
	t.Helper()
	var base http.RoundTripper
	if p.h2c {
		tr := kilntest.NewH2CTransport()
		t.Cleanup(tr.CloseIdleConnections)
		base = tr
	} else {
		tr := kilntest.NewH1Transport()
		t.Cleanup(tr.CloseIdleConnections)
		base = tr
	}
	rec := &protoRecorder{base: base}
	hc := &http.Client{Transport: rec}
	return pushv1connect.NewPusherServiceClient(hc, s.HTTPURL(), p.opts...),
		querierv1connect.NewQuerierServiceClient(hc, s.HTTPURL(), p.opts...), rec
}

type protoRecorder struct {
	base  http.RoundTripper
	proto string
}

func (r *protoRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	if err == nil {
		r.proto = resp.Proto
	}
	return resp, err
}

// cpuProfile is a pprof CPU profile taken now, with three stacks whose
// values sum to the returned total.
func cpuProfile(t *testing.T, scale int64) ([]byte, int64) {
	t.Helper()
	fn := func(id uint64, name string) *profile.Function {
		return &profile.Function{ID: id, Name: name, SystemName: name, Filename: "main.go"}
	}
	fns := []*profile.Function{fn(1, "main"), fn(2, "work"), fn(3, "hash"), fn(4, "io")}
	var locs []*profile.Location
	for i, f := range fns {
		locs = append(locs, &profile.Location{ID: uint64(i + 1), Line: []profile.Line{{Function: f, Line: int64(10 + i)}}})
	}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:     10_000_000,
		TimeNanos:  time.Now().UnixNano(),
		Function:   fns,
		Location:   locs,
		Sample: []*profile.Sample{
			{Location: []*profile.Location{locs[2], locs[1], locs[0]}, Value: []int64{30_000_000 * scale}},
			{Location: []*profile.Location{locs[3], locs[1], locs[0]}, Value: []int64{20_000_000 * scale}},
			{Location: []*profile.Location{locs[0]}, Value: []int64{10_000_000 * scale}},
		},
	}
	var b bytes.Buffer
	if err := p.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), 60_000_000 * scale
}

func pushReq(service string, raw []byte) *connect.Request[pushv1.PushRequest] {
	return connect.NewRequest(&pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
		Labels: []*typesv1.LabelPair{
			{Name: "__name__", Value: "process_cpu"},
			{Name: "service_name", Value: service},
		},
		Samples: []*pushv1.RawSample{{RawProfile: raw, ID: kilntest.NewUUID()}},
	}}})
}

// TestEveryProtocolOnTheHTTPPort pushes with each protocol and reads back
// with the same protocol: the flame graph's total, the label names, and an
// invalid selector's error code.
func TestEveryProtocolOnTheHTTPPort(t *testing.T) {
	s := kilntest.Start(t, kilntest.OTLPOff())
	for i, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			push, query, rec := clients(t, s, p)
			service := "proto-" + p.name
			raw, total := cpuProfile(t, int64(i+1))
			ctx, cancel := kilntest.ReqCtx(t)
			defer cancel()
			if _, err := push.Push(ctx, pushReq(service, raw)); err != nil {
				t.Fatalf("Push over %s: %v", p.name, err)
			}
			wantProto := "HTTP/1.1"
			if p.h2c {
				wantProto = "HTTP/2.0"
			}
			if rec.proto != wantProto {
				t.Errorf("the push went as %s, want %s", rec.proto, wantProto)
			}
			now := time.Now()
			start, end := now.Add(-time.Hour).UnixMilli(), now.Add(time.Hour).UnixMilli()
			maxNodes := int64(1024)
			resp, err := query.SelectMergeStacktraces(ctx, connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
				ProfileTypeID: typeID, LabelSelector: `{service_name="` + service + `"}`,
				Start: start, End: end, MaxNodes: &maxNodes,
			}))
			if err != nil {
				t.Fatalf("SelectMergeStacktraces over %s: %v", p.name, err)
			}
			fg := resp.Msg.GetFlamegraph()
			t.Logf("%s: total=%d want %d, %d names", p.name, fg.GetTotal(), total, len(fg.GetNames()))
			if fg.GetTotal() != total {
				t.Errorf("flame graph total %d, want %d", fg.GetTotal(), total)
			}
			if !contains(fg.GetNames(), "hash") {
				t.Errorf("flame graph names %v lack the pushed frame \"hash\"", fg.GetNames())
			}
			names, err := query.LabelNames(ctx, connect.NewRequest(&typesv1.LabelNamesRequest{
				Matchers: []string{`{service_name="` + service + `"}`}, Start: start, End: end,
			}))
			if err != nil {
				t.Fatalf("LabelNames over %s: %v", p.name, err)
			}
			if !contains(names.Msg.GetNames(), "service_name") {
				t.Errorf("LabelNames %v lack service_name", names.Msg.GetNames())
			}
			_, err = query.SelectMergeStacktraces(ctx, connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
				ProfileTypeID: typeID, LabelSelector: `{service_name=`, Start: start, End: end,
			}))
			if connect.CodeOf(err) != connect.CodeInvalidArgument {
				t.Errorf("a bad selector over %s: %v, want invalid_argument", p.name, err)
			} else {
				t.Logf("%s: bad selector -> %v", p.name, err)
			}
		})
	}
}

// TestUnknownMethodOverGRPCOnHTTPPort: the gRPC core answers a method it
// does not have with unimplemented, also on the HTTP port.
func TestUnknownMethodOverGRPCOnHTTPPort(t *testing.T) {
	s := kilntest.Start(t, kilntest.OTLPOff())
	tr := kilntest.NewH2CTransport()
	t.Cleanup(tr.CloseIdleConnections)
	c := connect.NewClient[typesv1.LabelNamesRequest, typesv1.LabelNamesResponse](
		&http.Client{Transport: tr}, s.HTTPURL()+"/querier.v1.QuerierService/NoSuchMethod", connect.WithGRPC())
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	_, err := c.CallUnary(ctx, connect.NewRequest(&typesv1.LabelNamesRequest{}))
	if connect.CodeOf(err) != connect.CodeUnimplemented {
		t.Errorf("unknown method over gRPC on the HTTP port: %v, want unimplemented", err)
	}
}

// webFrames splits a gRPC-Web body into its message frames and trailers.
func webFrames(t *testing.T, body []byte) (msgs [][]byte, trailers string) {
	t.Helper()
	for len(body) > 0 {
		if len(body) < 5 {
			t.Fatalf("truncated frame header %x", body)
		}
		n := int(binary.BigEndian.Uint32(body[1:5]))
		if len(body) < 5+n {
			t.Fatalf("frame of %d bytes, %d left", n, len(body)-5)
		}
		if body[0]&0x80 != 0 {
			trailers += string(body[5 : 5+n])
		} else {
			msgs = append(msgs, body[5:5+n])
		}
		body = body[5+n:]
	}
	return msgs, trailers
}

// postWebText sends one message as a browser's grpc-web-text client does.
func postWebText(t *testing.T, s *kilntest.Server, path string, msg proto.Message) (*http.Response, []byte) {
	t.Helper()
	b, err := proto.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	frame := append([]byte{0, 0, 0, 0, 0}, b...)
	binary.BigEndian.PutUint32(frame[1:5], uint32(len(b)))
	req, err := http.NewRequest("POST", s.HTTPURL()+path, strings.NewReader(base64.StdEncoding.EncodeToString(frame)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/grpc-web-text")
	req.Header.Set("Accept", "application/grpc-web-text")
	req.Header.Set("X-Grpc-Web", "1")
	req.Header.Set("Origin", "http://ui.example")
	hc := kilntest.TenantClient(t, "")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	text, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(string(text))
	if err != nil {
		t.Fatalf("the answer is not base64: %v (%q)", err, text)
	}
	return resp, raw
}

// TestRawGRPCWebText: a grpc-web-text call built by hand, as
// @grpc/grpc-web or improbable-eng's client send it from a browser.
func TestRawGRPCWebText(t *testing.T) {
	s := kilntest.Start(t, kilntest.OTLPOff())
	raw, _ := cpuProfile(t, 1)
	push, _, _ := clients(t, s, protocols[0])
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	if _, err := push.Push(ctx, pushReq("web-text", raw)); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	resp, body := postWebText(t, s, "/querier.v1.QuerierService/LabelNames", &typesv1.LabelNamesRequest{
		Start: now.Add(-time.Hour).UnixMilli(), End: now.Add(time.Hour).UnixMilli(),
	})
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/grpc-web-text") {
		t.Fatalf("HTTP %d %q, want 200 application/grpc-web-text", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "http://ui.example" {
		t.Errorf("Access-Control-Allow-Origin %q, want the caller's origin", got)
	}
	msgs, trailers := webFrames(t, body)
	t.Logf("frames: %d message(s), trailers %q", len(msgs), trailers)
	if len(msgs) != 1 || !strings.Contains(trailers, "grpc-status: 0\r\n") {
		t.Fatalf("want one message and grpc-status 0; got %d and %q", len(msgs), trailers)
	}
	var names typesv1.LabelNamesResponse
	if err := proto.Unmarshal(msgs[0], &names); err != nil {
		t.Fatal(err)
	}
	if !contains(names.GetNames(), "service_name") {
		t.Errorf("names %v lack service_name", names.GetNames())
	}

	// An error is HTTP 200 with the status in the trailers frame.
	resp, body = postWebText(t, s, "/querier.v1.QuerierService/SelectMergeStacktraces",
		&querierv1.SelectMergeStacktracesRequest{ProfileTypeID: typeID, LabelSelector: "{", Start: 1, End: 2})
	msgs, trailers = webFrames(t, body)
	t.Logf("bad selector: HTTP %d, %d message(s), trailers %q", resp.StatusCode, len(msgs), trailers)
	if resp.StatusCode != 200 || len(msgs) != 0 || !strings.Contains(trailers, "grpc-status: 3\r\n") ||
		!strings.Contains(trailers, "grpc-message: ") {
		t.Errorf("want HTTP 200, no message, grpc-status 3 and a grpc-message")
	}
}

// TestCORSPreflight: a browser on another origin may call the API.
func TestCORSPreflight(t *testing.T) {
	s := kilntest.Start(t, kilntest.OTLPOff())
	req, _ := http.NewRequest("OPTIONS", s.HTTPURL()+"/querier.v1.QuerierService/LabelNames", nil)
	req.Header.Set("Origin", "http://ui.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type,x-grpc-web,x-scope-orgid")
	resp, err := kilntest.TenantClient(t, "").Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := resp.Header
	t.Logf("preflight: HTTP %d %v", resp.StatusCode, h)
	if resp.StatusCode/100 != 2 || h.Get("Access-Control-Allow-Origin") != "http://ui.example" ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "x-grpc-web") {
		t.Errorf("preflight not allowed")
	}
}

// TestManyConnectionsBothWays opens HTTP/1.1 and HTTP/2 connections at
// once to the one port; every call is answered by the right server.
func TestManyConnectionsBothWays(t *testing.T) {
	const n = 32
	// 2n queries at once: above the default per-tenant limit of 32,
	// which is not what this test is about.
	s := kilntest.Start(t, kilntest.OTLPOff(),
		kilntest.Args(fmt.Sprintf("-querier.max-query-parallelism=%d", 4*n)))
	errs := make(chan error, 2*n)
	for i := 0; i < n; i++ {
		for _, p := range []protocol{protocols[0], protocols[2]} {
			go func() {
				_, query, _ := clients(t, s, p)
				ctx, cancel := kilntest.ReqCtx(t)
				defer cancel()
				_, err := query.LabelNames(ctx, connect.NewRequest(&typesv1.LabelNamesRequest{}))
				if err != nil {
					err = fmt.Errorf("%s: %w", p.name, err)
				}
				errs <- err
			}()
		}
	}
	for i := 0; i < 2*n; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
