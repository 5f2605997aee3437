package tlspeer

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"io"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	collpb "go.opentelemetry.io/proto/otlp/collector/profiles/v1development"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"kiln.dev/tests/lib/kilntest"
)

const (
	profileFile  = "grafana-pyroscope/cpu.pb.gz"
	otlpFile     = "grafana-pyroscope/otel-ebpf-profile.pb.bin"
	ingesterPush = "/ingester.v1.IngesterService/Push"
)

// baseArgs turn off the limits that would refuse the years-old test
// profiles or queries over them.
var baseArgs = []string{
	"-validation.reject-older-than=0",
	"-validation.reject-newer-than=0",
	"-distributor.ingestion-rate-limit-mb=0",
	"-querier.max-query-length=0",
	"-querier.max-query-lookback=0",
}

func grpcTLSArgs(c kilntest.Cert, extra ...string) []string {
	return append([]string{"-server.grpc-tls-cert-path=" + c.CertPath, "-server.grpc-tls-key-path=" + c.KeyPath}, extra...)
}

func clusterTLSArgs(ca *kilntest.CA, c kilntest.Cert) []string {
	return []string{"-cluster.tls-cert-path=" + c.CertPath, "-cluster.tls-key-path=" + c.KeyPath,
		"-cluster.tls-ca-path=" + ca.CAPath}
}

// tenantRT adds X-Scope-OrgID to every request.
type tenantRT struct {
	base   http.RoundTripper
	tenant string
}

func (r tenantRT) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("X-Scope-OrgID", r.tenant)
	return r.base.RoundTrip(req)
}

// h2TLS is an HTTP/2-over-TLS client (ALPN h2) sending tenant's header.
func h2TLS(t *testing.T, cfg *tls.Config, tenant string) *http.Client {
	tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tenantRT{tr, tenant}}
}

func pushReq(prof *kilntest.Profile, service string) *pushv1.PushRequest {
	return &pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
		Labels: []*typesv1.LabelPair{
			{Name: "__name__", Value: prof.Name},
			{Name: "service_name", Value: service},
		},
		Samples: []*pushv1.RawSample{{RawProfile: prof.Raw, ID: kilntest.NewUUID()}},
	}}}
}

func window(prof *kilntest.Profile) (int64, int64) {
	ms := prof.TimeNanos / int64(time.Millisecond)
	return ms - time.Hour.Milliseconds(), ms + time.Hour.Milliseconds()
}

// services lists tenant's service_name values over plain Connect on the
// HTTP port.
func services(t *testing.T, s *kilntest.Server, tenant string) []string {
	t.Helper()
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	resp, err := s.Clients(t, tenant).Query.LabelValues(ctx, connect.NewRequest(&typesv1.LabelValuesRequest{
		Name: "service_name", Start: 1, End: time.Now().Add(time.Hour).UnixMilli()}))
	if err != nil {
		s.CheckAfterError(t, err)
		t.Fatalf("LabelValues(%s): %v", tenant, err)
	}
	return resp.Msg.Names
}

// expectNothing fails when tenant has any service stored.
func expectNothing(t *testing.T, s *kilntest.Server, tenant string) {
	t.Helper()
	if got := services(t, s, tenant); len(got) != 0 {
		t.Errorf("refused calls stored %v for %s", got, tenant)
	} else {
		t.Logf("tenant %s: nothing stored", tenant)
	}
}

func wantGRPC(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if status.Code(err) != want {
		t.Errorf("%s: got %v, want %v", what, err, want)
	} else {
		t.Logf("%s: refused with %v (%v)", what, want, err)
	}
}

func dial(t *testing.T, addr string, creds credentials.TransportCredentials) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// ---- OTLP exporter and Connect gRPC clients over TLS -------------------------

func exportOTLP(t *testing.T, conn *grpc.ClientConn, tenant string) error {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(os.Getenv("KILN_TESTDATA"), otlpFile))
	if err != nil {
		t.Fatal(err)
	}
	req := &collpb.ExportProfilesServiceRequest{}
	if err := proto.Unmarshal(data, req); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "x-scope-orgid", tenant)
	_, err = collpb.NewProfilesServiceClient(conn).Export(ctx, req)
	return err
}

// TestGRPCTLSClients: the OTLP exporter on the OTLP gRPC port and
// Pyroscope's Connect clients (connect.WithGRPC) on the gRPC port, both
// over TLS; plain text there fails, while gRPC on the HTTP port (h2c)
// stays plain.
func TestGRPCTLSClients(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	prof := kilntest.LoadProfile(t, root, profileFile)
	ca := kilntest.NewCA(t)
	cert := ca.Issue(t, "kiln-grpc", kilntest.CertOptions{})
	s := kilntest.Start(t, kilntest.OTLPOnLoopback(), kilntest.Args(baseArgs...),
		kilntest.Args(grpcTLSArgs(cert)...))

	otlpTenant := kilntest.NewTenant("tls-otlp")
	if err := exportOTLP(t, dial(t, s.OTLPAddr, credentials.NewTLS(ca.ClientConfig(nil))), otlpTenant); err != nil {
		s.CheckAfterError(t, err)
		t.Fatalf("OTLP export over TLS: %v", err)
	}
	if got := services(t, s, otlpTenant); len(got) == 0 {
		t.Errorf("the OTLP export over TLS stored nothing")
	} else {
		t.Logf("OTLP export over TLS on %s stored services %v", s.OTLPAddr, got)
	}

	tenant := kilntest.NewTenant("tls-connect")
	hc := h2TLS(t, ca.ClientConfig(nil), tenant)
	push := pushv1connect.NewPusherServiceClient(hc, "https://"+s.GRPCAddr, connect.WithGRPC())
	query := querierv1connect.NewQuerierServiceClient(hc, "https://"+s.GRPCAddr, connect.WithGRPC())
	const n = 3
	for i := range n {
		ctx, cancel := kilntest.ReqCtx(t)
		_, err := push.Push(ctx, connect.NewRequest(pushReq(prof, "tls-svc")))
		cancel()
		if err != nil {
			s.CheckAfterError(t, err)
			t.Fatalf("push %d over gRPC TLS: %v", i, err)
		}
	}
	start, end := window(prof)
	totals, err := kilntest.ServiceTotals(t, query, prof.TypeIDs, "tls-svc", start, end, kilntest.RequestTimeout)
	if err != nil {
		t.Fatalf("query over gRPC TLS: %v", err)
	}
	if want := prof.Totals(n); !slices.Equal(totals, want) {
		t.Errorf("totals over gRPC TLS %v, want %v (%d pushes)", totals, want, n)
	} else {
		t.Logf("%d pushes and their totals %v over gRPC TLS on %s", n, totals, s.GRPCAddr)
	}

	// Plain text on the TLS port is refused; the HTTP port's gRPC stays h2c.
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	if _, err := s.Clients(t, tenant).PushGRPC.Push(ctx, connect.NewRequest(pushReq(prof, "tls-plain"))); err == nil {
		t.Errorf("a plain-text gRPC push to the TLS port succeeded")
	} else {
		t.Logf("plain-text gRPC on the TLS port: %v", err)
	}
	h2c := querierv1connect.NewQuerierServiceClient(s.Clients(t, tenant).H2C, s.HTTPURL(), connect.WithGRPC())
	totals, err = kilntest.ServiceTotals(t, h2c, prof.TypeIDs, "tls-svc", start, end, kilntest.RequestTimeout)
	if err != nil || !slices.Equal(totals, prof.Totals(n)) {
		t.Errorf("gRPC (h2c) on the HTTP port: totals %v, %v; want %v", totals, err, prof.Totals(n))
	}
	if got := services(t, s, tenant); !slices.Equal(got, []string{"tls-svc"}) {
		t.Errorf("services %v, want [tls-svc] (the plain-text push must not be stored)", got)
	}
}

// ---- certificate rotation -----------------------------------------------------

// servedSerial makes a call on conn and returns the serial number of the
// certificate its connection was served with.
func servedSerial(t *testing.T, conn *grpc.ClientConn, tenant string) *big.Int {
	t.Helper()
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "x-scope-orgid", tenant)
	var p peer.Peer
	resp := &typesv1.LabelValuesResponse{}
	err := conn.Invoke(ctx, "/querier.v1.QuerierService/LabelValues",
		&typesv1.LabelValuesRequest{Name: "service_name", Start: 1, End: time.Now().UnixMilli()}, resp, grpc.Peer(&p))
	if err != nil {
		t.Fatalf("LabelValues over gRPC TLS: %v", err)
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.PeerCertificates) == 0 {
		t.Fatalf("no TLS peer certificate (auth info %T)", p.AuthInfo)
	}
	return info.State.PeerCertificates[0].SerialNumber
}

// TestRotation: the server certificate re-issued in place (same paths,
// by rename, as cert-manager does) is what a new connection sees, while a
// connection opened before keeps working on the old one.
func TestRotation(t *testing.T) {
	ca := kilntest.NewCA(t)
	first := ca.Issue(t, "kiln-grpc", kilntest.CertOptions{})
	s := kilntest.Start(t, kilntest.OTLPOff(), kilntest.LogLevel("info"), kilntest.Args(grpcTLSArgs(first)...))
	tenant := kilntest.NewTenant("tls-rot")
	creds := credentials.NewTLS(ca.ClientConfig(nil))
	old := dial(t, s.GRPCAddr, creds)
	if got := servedSerial(t, old, tenant); got.Cmp(first.TLS.Leaf.SerialNumber) != 0 {
		t.Fatalf("first connection served serial %x, want %x", got, first.TLS.Leaf.SerialNumber)
	}
	second := ca.Issue(t, "kiln-grpc", kilntest.CertOptions{})
	if second.CertPath != first.CertPath || second.KeyPath != first.KeyPath {
		t.Fatalf("the re-issued certificate has other paths")
	}
	fresh := dial(t, s.GRPCAddr, creds)
	if got := servedSerial(t, fresh, tenant); got.Cmp(second.TLS.Leaf.SerialNumber) != 0 {
		t.Errorf("a new connection after the rotation was served serial %x, want the new %x (old %x)",
			got, second.TLS.Leaf.SerialNumber, first.TLS.Leaf.SerialNumber)
	} else {
		t.Logf("new connection: the new certificate (serial %x)", got)
	}
	if got := servedSerial(t, old, tenant); got.Cmp(first.TLS.Leaf.SerialNumber) != 0 {
		t.Errorf("the connection opened before the rotation now reports serial %x, want the old %x",
			got, first.TLS.Leaf.SerialNumber)
	} else {
		t.Logf("connection opened before the rotation: still works, on the old certificate (serial %x)", got)
	}
	if lines := s.Log.Grep("certificate files reloaded"); len(lines) == 0 {
		t.Errorf("no reload logged")
	}
}

// ---- client certificates on the public gRPC port -----------------------------

func grpcPush(t *testing.T, conn *grpc.ClientConn, prof *kilntest.Profile, tenant, service string) error {
	t.Helper()
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "x-scope-orgid", tenant)
	return conn.Invoke(ctx, "/push.v1.PusherService/Push", pushReq(prof, service), &pushv1.PushResponse{})
}

// TestClientCertRequired: -server.grpc-tls-client-auth=RequireAndVerifyClientCert
// takes a certificate of its CA and refuses none, another CA's and an
// expired one; a client that does not trust the server's CA refuses it.
func TestClientCertRequired(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	prof := kilntest.LoadProfile(t, root, profileFile)
	ca, other := kilntest.NewCA(t), kilntest.NewCA(t)
	srv := ca.Issue(t, "kiln-grpc", kilntest.CertOptions{})
	good := ca.Issue(t, "client", kilntest.CertOptions{})
	foreign := other.Issue(t, "intruder", kilntest.CertOptions{})
	expired := ca.Issue(t, "expired", kilntest.CertOptions{
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	s := kilntest.Start(t, kilntest.OTLPOff(), kilntest.Args(baseArgs...), kilntest.Args(grpcTLSArgs(srv,
		"-server.grpc-tls-client-auth=RequireAndVerifyClientCert", "-server.grpc-tls-ca-path="+ca.CAPath)...))

	neg := kilntest.NewTenant("tls-neg")
	wantGRPC(t, "no client certificate", grpcPush(t, dial(t, s.GRPCAddr, credentials.NewTLS(ca.ClientConfig(nil))), prof, neg, "neg"), codes.Unavailable)
	wantGRPC(t, "client certificate of another CA", grpcPush(t, dial(t, s.GRPCAddr, credentials.NewTLS(ca.ClientConfig(&foreign))), prof, neg, "neg"), codes.Unavailable)
	wantGRPC(t, "expired client certificate", grpcPush(t, dial(t, s.GRPCAddr, credentials.NewTLS(ca.ClientConfig(&expired))), prof, neg, "neg"), codes.Unavailable)
	wrongRoots := other.ClientConfig(&good) // trusts the other CA only
	wantGRPC(t, "client trusting another CA", grpcPush(t, dial(t, s.GRPCAddr, credentials.NewTLS(wrongRoots)), prof, neg, "neg"), codes.Unavailable)
	wantGRPC(t, "plain text", grpcPush(t, dial(t, s.GRPCAddr, insecure.NewCredentials()), prof, neg, "neg"), codes.Unavailable)
	expectNothing(t, s, neg)

	pos := kilntest.NewTenant("tls-pos")
	if err := grpcPush(t, dial(t, s.GRPCAddr, credentials.NewTLS(ca.ClientConfig(&good))), prof, pos, "pos"); err != nil {
		s.CheckAfterError(t, err)
		t.Fatalf("push with the CA's client certificate: %v", err)
	}
	if got := services(t, s, pos); !slices.Equal(got, []string{"pos"}) {
		t.Errorf("after the push with a client certificate: services %v, want [pos]", got)
	}
}

// ---- the cluster plane ------------------------------------------------------

// rawCodec sends and receives bytes as they are: an ingester.v1 request
// without its generated Go code.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error)      { return *v.(*[]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error { *v.(*[]byte) = slices.Clone(data); return nil }
func (rawCodec) Name() string                       { return "proto" }

// ingesterPushBody is kiln's ingester.v1 PushRequest (proto/ingester/v1):
// one ProfileSeries with the series labels and the uncompressed pprof.
func ingesterPushBody(t *testing.T, prof *kilntest.Profile, service string) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(prof.Raw))
	if err != nil {
		t.Fatal(err)
	}
	pprof, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	var series []byte
	for _, l := range []*typesv1.LabelPair{{Name: "__name__", Value: prof.Name}, {Name: "service_name", Value: service}} {
		b, err := proto.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		series = protowire.AppendTag(series, 1, protowire.BytesType)
		series = protowire.AppendBytes(series, b)
	}
	series = protowire.AppendTag(series, 2, protowire.BytesType)
	series = protowire.AppendBytes(series, pprof)
	var req []byte
	req = protowire.AppendTag(req, 1, protowire.BytesType)
	return protowire.AppendBytes(req, series)
}

func rawCall(t *testing.T, conn *grpc.ClientConn, method, tenant string, body []byte) error {
	t.Helper()
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "x-scope-orgid", tenant)
	var out []byte
	return conn.Invoke(ctx, method, &body, &out, grpc.ForceCodec(rawCodec{}))
}

// waitRing waits until s's ring holds its own ingester ACTIVE.
func waitRing(t *testing.T, s *kilntest.Server) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := s.Ring()
		if err == nil && len(r.Active(time.Minute)) == 1 {
			t.Logf("ring: %s", r)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ring not ACTIVE after 30 s: %v %v", r, err)
		}
		s.RequireAlive(t)
		time.Sleep(100 * time.Millisecond)
	}
}

// TestClusterPlane: a one-process cluster whose distributor and querier
// reach its ingester over the cluster plane with mutual TLS; ingester.v1
// answers unimplemented on every public path, and the cluster plane takes
// only the cluster's certificates.
func TestClusterPlane(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	prof := kilntest.LoadProfile(t, root, profileFile)
	nats := kilntest.StartNATS(t)
	ca, other := kilntest.NewCA(t), kilntest.NewCA(t)
	member := ca.Issue(t, "kiln-cluster", kilntest.CertOptions{})
	s := kilntest.Start(t, kilntest.OTLPOff(), kilntest.LogLevel("info"), kilntest.Args(baseArgs...),
		kilntest.Args("-cluster.nats-url="+nats.URL(), "-distributor.replication-factor=1",
			"-cluster.heartbeat-period=1s"), kilntest.Args(clusterTLSArgs(ca, member)...))
	waitRing(t, s)
	internal := s.Listeners["internal-grpc"]
	if len(s.Log.Grep("cluster_tls=mutual")) == 0 {
		t.Fatalf("kiln did not report mutual TLS on the cluster plane")
	}

	// Writes and reads through the distributor and querier: over mTLS.
	tenant := kilntest.NewTenant("plane")
	cl := s.Clients(t, tenant)
	const n = 2
	for range n {
		ctx, cancel := kilntest.ReqCtx(t)
		_, err := cl.Push.Push(ctx, connect.NewRequest(pushReq(prof, "plane-svc")))
		cancel()
		if err != nil {
			s.CheckAfterError(t, err)
			t.Fatalf("push through the distributor: %v", err)
		}
	}
	start, end := window(prof)
	totals, err := kilntest.ServiceTotals(t, cl.Query, prof.TypeIDs, "plane-svc", start, end, kilntest.RequestTimeout)
	if err != nil || !slices.Equal(totals, prof.Totals(n)) {
		t.Fatalf("totals over the cluster plane %v, %v; want %v", totals, err, prof.Totals(n))
	}
	t.Logf("%d pushes through distributor -> ingester (mTLS on %s), totals %v exact", n, internal, totals)

	body := ingesterPushBody(t, prof, "direct")
	neg := kilntest.NewTenant("plane-neg")
	// The cluster plane: only the cluster's certificates.
	expired := ca.Issue(t, "expired", kilntest.CertOptions{
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	foreign := other.Issue(t, "intruder", kilntest.CertOptions{})
	wantGRPC(t, "cluster plane, no client certificate",
		rawCall(t, dial(t, internal, credentials.NewTLS(ca.ClientConfig(nil))), ingesterPush, neg, body), codes.Unavailable)
	wantGRPC(t, "cluster plane, another CA's certificate",
		rawCall(t, dial(t, internal, credentials.NewTLS(ca.ClientConfig(&foreign))), ingesterPush, neg, body), codes.Unavailable)
	wantGRPC(t, "cluster plane, expired certificate",
		rawCall(t, dial(t, internal, credentials.NewTLS(ca.ClientConfig(&expired))), ingesterPush, neg, body), codes.Unavailable)
	wantGRPC(t, "cluster plane, plain text",
		rawCall(t, dial(t, internal, insecure.NewCredentials()), ingesterPush, neg, body), codes.Unavailable)
	// The public paths: unimplemented, unread.
	wantGRPC(t, "ingester.v1 Push on the public gRPC port",
		rawCall(t, dial(t, s.GRPCAddr, insecure.NewCredentials()), ingesterPush, neg, body), codes.Unimplemented)
	wantGRPC(t, "ingester.v1 Push over gRPC (h2c) on the HTTP port",
		rawCall(t, dial(t, s.HTTPAddr, insecure.NewCredentials()), ingesterPush, neg, body), codes.Unimplemented)
	// A gRPC-Web message frame: flags 0, big-endian length, the message.
	frame := append([]byte{0, byte(len(body) >> 24), byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body...)
	for _, ct := range []string{"application/proto", "application/grpc-web+proto"} {
		payload := body
		if ct != "application/proto" {
			payload = frame
		}
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.HTTPURL()+ingesterPush, bytes.NewReader(payload))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", ct)
		req.Header.Set("X-Scope-OrgID", neg)
		resp, err := kilntest.TenantClient(t, neg).Do(req)
		if err != nil {
			t.Fatalf("POST %s (%s): %v", ingesterPush, ct, err)
		}
		msg, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if ct == "application/proto" && resp.StatusCode != http.StatusNotImplemented {
			t.Errorf("Connect %s on the HTTP port: HTTP %d %s, want 501", ingesterPush, resp.StatusCode, msg)
		} else if ct != "application/proto" && resp.Header.Get("Grpc-Status") != "12" &&
			!bytes.Contains(msg, []byte("grpc-status: 12")) {
			t.Errorf("gRPC-Web %s on the HTTP port: grpc-status %q, want 12 (unimplemented)", ingesterPush,
				resp.Header.Get("Grpc-Status"))
		} else {
			t.Logf("%s %s on the HTTP port: HTTP %d %q", ct, ingesterPush, resp.StatusCode,
				strings.TrimSpace(string(msg)))
		}
	}
	expectNothing(t, s, neg)

	// The same request with the cluster certificate on the cluster plane
	// is taken: the refusals above are the plane's, not the request's.
	ctl := kilntest.NewTenant("plane-ctl")
	if err := rawCall(t, dial(t, internal, credentials.NewTLS(ca.ClientConfig(&member))), ingesterPush, ctl, body); err != nil {
		t.Fatalf("ingester.v1 Push with the cluster certificate on the cluster plane: %v", err)
	}
	if got := services(t, s, ctl); !slices.Equal(got, []string{"direct"}) {
		t.Errorf("after the push on the cluster plane: services %v, want [direct]", got)
	}
}

// TestClusterPlaneNeedsTLS: the cluster plane on a network address without
// cluster TLS is a start error that says what to do.
func TestClusterPlaneNeedsTLS(t *testing.T) {
	bin := kilntest.RequireBin(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-storage.path="+t.TempDir(), "-server.http-listen-port=0",
		"-server.grpc-listen-port=0", "-server.otlp-grpc-listen-port=-1",
		"-server.internal-grpc-listen-address=0.0.0.0")
	out, err := cmd.CombinedOutput()
	if err == nil || cmd.ProcessState == nil || cmd.ProcessState.ExitCode() == 0 {
		t.Fatalf("kiln started with the cluster plane on 0.0.0.0 without TLS (%v): %s", err, out)
	}
	if !strings.Contains(string(out), "not a loopback address") || !strings.Contains(string(out), "-cluster.tls-cert-path") {
		t.Errorf("start error does not say why: %s", out)
	} else {
		t.Logf("refused to start: %s", strings.TrimSpace(string(out)))
	}
}
