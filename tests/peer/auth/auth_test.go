package authpeer

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/grafana/pyroscope-go/upstream"
	"github.com/grafana/pyroscope-go/upstream/remote"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	collpb "go.opentelemetry.io/proto/otlp/collector/profiles/v1development"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"kiln.dev/tests/lib/kilntest"
)

// The clear tokens: the server only ever sees their SHA-256 hashes.
const (
	tokRWA   = "rw-a-7f1c0d"    // tenant A, read and write
	tokReadB = "read-ab-91e2aa" // tenants A and B, read
	tokWA    = "write-a-3b77"   // tenant A, write only
	tokRWB   = "rw-b-c0ffee"    // tenant B, read and write
)

type env struct {
	s      *kilntest.Server
	ta, tb string
	root   string
}

func hashOf(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// start writes the tokens file and starts kiln with authentication on
// (and opts, for example WithHTTPTLS).
func start(t *testing.T, opts ...kilntest.Option) *env {
	t.Helper()
	_, root := kilntest.RequireEnv(t)
	e := &env{ta: kilntest.NewTenant("auth-a"), tb: kilntest.NewTenant("auth-b"), root: root}
	file := filepath.Join(t.TempDir(), "tokens.yaml")
	yaml := fmt.Sprintf(`tokens:
  - sha256: %s
    tenant: %s
    scope: [read, write]
  - sha256: %s
    tenants: [%s, %s]
    scope: read
  - sha256: %s
    tenant: %s
    scope: write
  - sha256: %s
    tenant: %s
    scope: read,write
`, hashOf(tokRWA), e.ta, hashOf(tokReadB), e.ta, e.tb, hashOf(tokWA), e.ta, hashOf(tokRWB), e.tb)
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	opts = append([]kilntest.Option{kilntest.OTLPOnLoopback(),
		kilntest.Args("-auth.tokens-file="+file, "-auth.multitenancy-enabled=true")}, opts...)
	e.s = kilntest.Start(t, opts...)
	return e
}

// headerTransport adds fixed headers to every request.
type headerTransport struct {
	base http.RoundTripper
	hdr  map[string]string
}

func (h *headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h.hdr {
		r.Header.Set(k, v)
	}
	return h.base.RoundTrip(r)
}

// client speaks to e's HTTP port (HTTPS when e serves it) with hdr.
func (e *env) client(t *testing.T, hdr map[string]string) *http.Client {
	tr := e.s.NewHTTPTransport()
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: &headerTransport{tr, hdr}, Timeout: kilntest.RequestTimeout}
}

func bearer(tok, tenant string) map[string]string {
	h := map[string]string{"Authorization": "Bearer " + tok}
	if tenant != "" {
		h["X-Scope-OrgID"] = tenant
	}
	return h
}

// basic is what Grafana's data source and the SDKs send: user = tenant.
func basic(user, tok string) map[string]string {
	return map[string]string{"Authorization": "Basic " +
		base64.StdEncoding.EncodeToString([]byte(user+":"+tok))}
}

func (e *env) pusher(t *testing.T, hdr map[string]string) pushv1connect.PusherServiceClient {
	return pushv1connect.NewPusherServiceClient(e.client(t, hdr), e.s.HTTPURL())
}

func (e *env) querier(t *testing.T, hdr map[string]string) querierv1connect.QuerierServiceClient {
	return querierv1connect.NewQuerierServiceClient(e.client(t, hdr), e.s.HTTPURL())
}

func (e *env) profile(t *testing.T) []byte {
	b, err := os.ReadFile(filepath.Join(e.root, "grafana-pyroscope/cpu.pb.gz"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pushReq(app string, raw []byte) *pushv1.PushRequest {
	return &pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
		Labels: []*typesv1.LabelPair{
			{Name: "__name__", Value: "process_cpu"}, {Name: "service_name", Value: app}},
		Samples: []*pushv1.RawSample{{RawProfile: raw, ID: "00000000-0000-0000-0000-000000000001"}},
	}}}
}

// apps reads the service names stored for tenant (with a token that may
// read it), over every time.
func (e *env) apps(t *testing.T, tenant, tok string) []string {
	t.Helper()
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	now := time.Now()
	resp, err := e.querier(t, bearer(tok, tenant)).LabelValues(ctx, connect.NewRequest(
		&typesv1.LabelValuesRequest{Name: "service_name", Start: 1,
			End: now.Add(time.Minute).UnixMilli()}))
	if err != nil {
		t.Fatalf("label values of %s: %v", tenant, err)
	}
	return resp.Msg.Names
}

func wantCode(t *testing.T, what string, err error, want connect.Code) {
	t.Helper()
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != want {
		t.Errorf("%s: got %v, want %v", what, err, want)
	} else {
		t.Logf("%s: refused with %v: %s", what, want, ce.Message())
	}
}

// TestConnectBasicAndBearer: Grafana's Connect clients write with Basic
// auth (user = tenant) and read with a bearer token and X-Scope-OrgID.
func TestConnectBasicAndBearer(t *testing.T) {
	e := start(t)
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	if _, err := e.pusher(t, basic(e.ta, tokRWA)).Push(ctx, connect.NewRequest(pushReq("auth-basic", e.profile(t)))); err != nil {
		t.Fatalf("push with Basic auth: %v", err)
	}
	if _, err := e.pusher(t, bearer(tokRWB, e.tb)).Push(ctx, connect.NewRequest(pushReq("auth-bearer", e.profile(t)))); err != nil {
		t.Fatalf("push with a bearer token: %v", err)
	}
	if got := e.apps(t, e.ta, tokRWA); !slices.Equal(got, []string{"auth-basic"}) {
		t.Errorf("tenant A apps %v, want [auth-basic]", got)
	}
	if got := e.apps(t, e.ta+"|"+e.tb, tokReadB); !slices.Equal(got, []string{"auth-basic", "auth-bearer"}) {
		t.Errorf("tenants A|B apps %v, want both", got)
	}
	// Basic auth reads name the tenant by the user alone.
	resp, err := e.querier(t, basic(e.tb, tokRWB)).ProfileTypes(ctx, connect.NewRequest(&querierv1.ProfileTypesRequest{
		Start: 1, End: time.Now().Add(time.Minute).UnixMilli()}))
	if err != nil || len(resp.Msg.ProfileTypes) == 0 {
		t.Errorf("profile types of B with Basic auth: %v", err)
	}
	// /ready and /metrics stay open; failures are counted per source.
	e.pusher(t, bearer("nope", e.ta)).Push(ctx, connect.NewRequest(pushReq("x", e.profile(t))))
	m := e.get(t, e.s.HTTPURL()+"/metrics")
	if !strings.Contains(m, `kiln_auth_failures_total{source="127.0.0.1",reason="invalid_token"}`) {
		t.Errorf("/metrics has no failure count:\n%s", grepLines(m, "auth"))
	}
}

func (e *env) get(t *testing.T, url string) string {
	t.Helper()
	r, err := e.client(t, nil).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if r.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, r.StatusCode)
	}
	return b.String()
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

type errLogger struct{ errs []string }

func (l *errLogger) Infof(string, ...interface{})  {}
func (l *errLogger) Debugf(string, ...interface{}) {}
func (l *errLogger) Errorf(f string, a ...interface{}) {
	l.errs = append(l.errs, fmt.Sprintf(f, a...))
}

// TestGoSDKBasicAuth: pyroscope-go's uploader with BasicAuthUser and
// BasicAuthPassword and no tenant header lands in the user's tenant.
func TestGoSDKBasicAuth(t *testing.T) {
	e := start(t)
	for _, tc := range []struct{ app, tok string }{{"sdk-ok", tokWA}, {"sdk-wrong", "guess"}} {
		log := &errLogger{}
		r, err := remote.NewRemote(remote.Config{Address: e.s.HTTPURL(), BasicAuthUser: e.ta,
			BasicAuthPassword: tc.tok, Threads: 1, Timeout: 10 * time.Second, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		r.Start()
		now := time.Now()
		r.Upload(&upstream.UploadJob{Name: tc.app, StartTime: now.Add(-10 * time.Second), EndTime: now,
			SpyName: "gospy", SampleRate: 100, Units: "samples", AggregationType: "sum",
			Format: upstream.FormatPprof, Profile: e.profile(t)})
		r.Flush()
		r.Stop()
		t.Logf("%s: uploader errors %v", tc.app, log.errs)
		if (tc.app == "sdk-ok") != (len(log.errs) == 0) {
			t.Errorf("%s: uploader errors %v", tc.app, log.errs)
		}
	}
	if got := e.apps(t, e.ta, tokRWA); !slices.Equal(got, []string{"sdk-ok"}) {
		t.Errorf("tenant A apps %v, want [sdk-ok]", got)
	}
}

func exportGRPC(t *testing.T, addr string, md ...string) error {
	t.Helper()
	return exportGRPCWith(t, addr, insecure.NewCredentials(), md...)
}

// exportGRPCWith exports the OTLP test profile to addr over creds (plain
// text or TLS) with the metadata md.
func exportGRPCWith(t *testing.T, addr string, creds credentials.TransportCredentials, md ...string) error {
	t.Helper()
	c, err := os.ReadFile(filepath.Join(os.Getenv("KILN_TESTDATA"), "grafana-pyroscope/otel-ebpf-profile.pb.bin"))
	if err != nil {
		t.Fatal(err)
	}
	req := &collpb.ExportProfilesServiceRequest{}
	if err := proto.Unmarshal(c, req); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, md...)
	_, err = collpb.NewProfilesServiceClient(conn).Export(ctx, req)
	return err
}

func wantGRPC(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if status.Code(err) != want {
		t.Errorf("%s: got %v, want %v", what, err, want)
	} else {
		t.Logf("%s: refused with %v", what, want)
	}
}

// TestOTLPGRPCHeader: the OTLP exporter with an authorization header on
// the OTLP gRPC port; wrong or foreign tokens are refused with gRPC codes.
func TestOTLPGRPCHeader(t *testing.T) {
	e := start(t)
	wantGRPC(t, "no credentials", exportGRPC(t, e.s.OTLPAddr, "x-scope-orgid", e.tb), codes.Unauthenticated)
	wantGRPC(t, "wrong token", exportGRPC(t, e.s.OTLPAddr, "authorization", "Bearer wrong", "x-scope-orgid", e.tb), codes.Unauthenticated)
	wantGRPC(t, "token of another tenant", exportGRPC(t, e.s.OTLPAddr, "authorization", "Bearer "+tokRWA, "x-scope-orgid", e.tb), codes.PermissionDenied)
	wantGRPC(t, "read-only token writing", exportGRPC(t, e.s.GRPCAddr, "authorization", "Bearer "+tokReadB, "x-scope-orgid", e.tb), codes.PermissionDenied)
	if got := e.apps(t, e.tb, tokRWB); len(got) != 0 {
		t.Fatalf("refused exports stored %v", got)
	}
	if err := exportGRPC(t, e.s.OTLPAddr, "authorization", "Bearer "+tokRWB, "x-scope-orgid", e.tb); err != nil {
		t.Fatalf("export with a token: %v", err)
	}
	if got := e.apps(t, e.tb, tokRWB); len(got) == 0 {
		t.Errorf("tenant B has no apps after the export")
	} else {
		t.Logf("tenant B apps after the OTLP export: %v", got)
	}
	if got := e.apps(t, e.ta, tokRWA); len(got) != 0 {
		t.Errorf("tenant A has apps %v from B's export", got)
	}
}

// TestRefused: each negative case over Connect gets its code and stores
// nothing.
func TestRefused(t *testing.T) {
	e := start(t)
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	raw := e.profile(t)
	push := func(hdr map[string]string, app string) error {
		_, err := e.pusher(t, hdr).Push(ctx, connect.NewRequest(pushReq(app, raw)))
		return err
	}
	wantCode(t, "wrong token", push(bearer("wrong", e.ta), "neg-wrong"), connect.CodeUnauthenticated)
	wantCode(t, "no credentials", push(map[string]string{"X-Scope-OrgID": e.ta}, "neg-none"), connect.CodeUnauthenticated)
	wantCode(t, "token of another tenant", push(bearer(tokRWB, e.ta), "neg-other"), connect.CodePermissionDenied)
	wantCode(t, "Basic user of another tenant", push(basic(e.ta, tokRWB), "neg-basic"), connect.CodePermissionDenied)
	wantCode(t, "read-only token writing", push(bearer(tokReadB, e.ta), "neg-ro"), connect.CodePermissionDenied)
	q := func(hdr map[string]string) error {
		_, err := e.querier(t, hdr).LabelValues(ctx, connect.NewRequest(&typesv1.LabelValuesRequest{
			Name: "service_name", Start: 1, End: time.Now().UnixMilli()}))
		return err
	}
	wantCode(t, "reading a tenant not in the token", q(bearer(tokRWA, e.ta+"|"+e.tb)), connect.CodePermissionDenied)
	wantCode(t, "write-only token reading", q(bearer(tokWA, e.ta)), connect.CodePermissionDenied)
	err := q(bearer(tokRWA, e.tb))
	wantCode(t, "token of another tenant reading", err, connect.CodePermissionDenied)
	var ce *connect.Error
	if errors.As(err, &ce) && strings.Contains(ce.Message(), e.ta) {
		t.Errorf("the refusal names the token's own tenant: %s", ce.Message())
	}
	// The same over gRPC (h2c to the gRPC port), where a query is checked
	// before it queues for a query worker.
	h2 := kilntest.NewH2CTransport()
	t.Cleanup(h2.CloseIdleConnections)
	for _, tc := range []struct {
		what string
		hdr  map[string]string
		want connect.Code
	}{
		{"gRPC query with a wrong token", bearer("wrong", e.ta), connect.CodeUnauthenticated},
		{"gRPC query of a tenant not in the token", bearer(tokRWA, e.tb), connect.CodePermissionDenied},
		{"gRPC query with a write-only token", bearer(tokWA, e.ta), connect.CodePermissionDenied},
	} {
		hc := &http.Client{Transport: &headerTransport{h2, tc.hdr}, Timeout: kilntest.RequestTimeout}
		_, err := querierv1connect.NewQuerierServiceClient(hc, e.s.GRPCURL(), connect.WithGRPC()).
			LabelValues(ctx, connect.NewRequest(&typesv1.LabelValuesRequest{Name: "service_name", Start: 1,
				End: time.Now().UnixMilli()}))
		wantCode(t, tc.what, err, tc.want)
	}
	// The legacy /ingest and render routes are behind the same check.
	r, err := e.client(t, bearer(tokReadB, e.ta)).Post(e.s.HTTPURL()+"/ingest?name=neg-ingest&format=folded", "text/plain", strings.NewReader("a;b 1\n"))
	if err != nil || r.StatusCode != 403 {
		t.Errorf("/ingest with a read-only token: %v %v", err, r)
	} else {
		r.Body.Close()
	}
	r, err = e.client(t, nil).Get(e.s.HTTPURL() + "/pyroscope/render?query=process_cpu:cpu:nanoseconds:cpu:nanoseconds{}&from=now-1h")
	if err != nil || r.StatusCode != 401 {
		t.Errorf("/pyroscope/render without credentials: %v %v", err, r)
	} else {
		r.Body.Close()
	}
	for _, tn := range []string{e.ta, e.tb} {
		if got := e.apps(t, tn, tokReadB); len(got) != 0 {
			t.Errorf("refused requests stored %v in %s", got, tn)
		}
	}
}

// TestMultitenancyNoTenant: with -auth.multitenancy-enabled and no tokens
// file, a request without X-Scope-OrgID is refused with 401 and stores
// nothing; with a tenant it passes. With -server.metrics-tenant-labels=false
// the open /metrics names no tenant.
func TestMultitenancyNoTenant(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	e := &env{root: root, ta: kilntest.NewTenant("mt")}
	e.s = kilntest.Start(t, kilntest.Args("-auth.multitenancy-enabled=true",
		"-server.metrics-tenant-labels=false"))
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	_, err := e.pusher(t, nil).Push(ctx, connect.NewRequest(pushReq("mt-none", e.profile(t))))
	wantCode(t, "push without a tenant", err, connect.CodeUnauthenticated)
	if _, err := e.pusher(t, map[string]string{"X-Scope-OrgID": e.ta}).Push(ctx, connect.NewRequest(pushReq("mt-ok", e.profile(t)))); err != nil {
		t.Fatalf("push with a tenant: %v", err)
	}
	for _, tn := range []string{e.ta, "anonymous"} {
		resp, err := e.querier(t, map[string]string{"X-Scope-OrgID": tn}).LabelValues(ctx, connect.NewRequest(&typesv1.LabelValuesRequest{
			Name: "service_name", Start: 1, End: time.Now().Add(time.Minute).UnixMilli()}))
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"mt-ok"}
		if tn == "anonymous" {
			want = nil
		}
		if !slices.Equal(resp.Msg.Names, want) {
			t.Errorf("%s apps %v, want %v", tn, resp.Msg.Names, want)
		}
	}
	m := e.get(t, e.s.HTTPURL()+"/metrics")
	if strings.Contains(m, e.ta) || strings.Contains(m, "tenant=") {
		t.Errorf("/metrics names tenants:\n%s", grepLines(m, "tenant"))
	}
	if !strings.Contains(m, "kiln_ingested_profiles_total{} 1") {
		t.Errorf("/metrics lost the summed series:\n%s", grepLines(m, "ingested"))
	}
}
