package authpeer

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/big"
	"net/http"
	"net/http/httptrace"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/grafana/pyroscope-go/upstream"
	"github.com/grafana/pyroscope-go/upstream/remote"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"

	"kiln.dev/tests/lib/kilntest"
)

// startHTTPS starts kiln with the tokens of start and its HTTP port on
// HTTPS, with a certificate ("kiln") of a new CA and the client-auth
// policy clientAuth ("" = the default, NoClientCert).
func startHTTPS(t *testing.T, clientAuth string) (*env, *kilntest.CA) {
	t.Helper()
	ca := kilntest.NewCA(t)
	cert := ca.Issue(t, "kiln", kilntest.CertOptions{})
	e := start(t, kilntest.WithHTTPTLS(ca, cert, clientAuth))
	if !strings.HasPrefix(e.s.HTTPURL(), "https://") {
		t.Fatalf("HTTPURL %s is not https", e.s.HTTPURL())
	}
	return e, ca
}

// tlsClient is an HTTP/1.1 client with cfg and fixed headers.
func tlsClient(t *testing.T, cfg *tls.Config, hdr map[string]string) (*http.Client, *http.Transport) {
	tr := kilntest.NewH1Transport()
	tr.TLSClientConfig = cfg
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: &headerTransport{tr, hdr}, Timeout: kilntest.RequestTimeout}, tr
}

// pushWith pushes app through hc (a profile of its own: pushes of one ID
// are deduplicated); nil = stored.
func (e *env) pushWith(t *testing.T, hc *http.Client, app string) error {
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	req := pushReq(app, e.profile(t))
	req.Series[0].Samples[0].ID = kilntest.NewUUID()
	_, err := pushv1connect.NewPusherServiceClient(hc, e.s.HTTPURL()).Push(ctx, connect.NewRequest(req))
	return err
}

func serialOf(t *testing.T, c tls.Certificate) *big.Int {
	t.Helper()
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf.SerialNumber
}

// readyTLS does GET /ready through hc and returns the serial of the
// certificate the server showed and whether the connection was reused.
func readyTLS(t *testing.T, e *env, hc *http.Client) (*big.Int, bool) {
	t.Helper()
	reused := false
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }})
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.s.HTTPURL()+"/ready", nil)
	r, err := hc.Do(req)
	if err != nil {
		t.Fatalf("GET /ready over HTTPS: %v", err)
	}
	defer r.Body.Close()
	_, _ = io.Copy(io.Discard, r.Body) // read whole, or the connection is not kept
	if r.StatusCode != 200 || r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		t.Fatalf("GET /ready over HTTPS: %d, TLS %v", r.StatusCode, r.TLS)
	}
	return r.TLS.PeerCertificates[0].SerialNumber, reused
}

// TestHTTPSConnectBasicAndBearer: over HTTPS, Grafana's Connect clients
// write with Basic auth and with a bearer token and read back; the legacy
// /ingest and gRPC-Web work the same; plain HTTP on the port gets no
// answer.
func TestHTTPSConnectBasicAndBearer(t *testing.T) {
	e, _ := startHTTPS(t, "")
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	if _, err := e.pusher(t, basic(e.ta, tokRWA)).Push(ctx, connect.NewRequest(pushReq("tls-basic", e.profile(t)))); err != nil {
		t.Fatalf("push over HTTPS with Basic auth: %v", err)
	}
	if _, err := e.pusher(t, bearer(tokRWB, e.tb)).Push(ctx, connect.NewRequest(pushReq("tls-bearer", e.profile(t)))); err != nil {
		t.Fatalf("push over HTTPS with a bearer token: %v", err)
	}
	r, err := e.client(t, basic(e.ta, tokRWA)).Post(e.s.HTTPURL()+"/ingest?name=tls-ingest&format=folded",
		"text/plain", strings.NewReader("main;work 10\n"))
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("/ingest over HTTPS: %v %v", err, r)
	}
	r.Body.Close()
	if r.Proto != "HTTP/1.1" || r.TLS == nil {
		t.Errorf("/ingest answered over %s, TLS %v; want HTTP/1.1 over TLS", r.Proto, r.TLS)
	}
	if got := e.apps(t, e.ta, tokRWA); !slices.Equal(got, []string{"tls-basic", "tls-ingest"}) {
		t.Errorf("tenant A apps %v, want [tls-basic tls-ingest]", got)
	}
	if got := e.apps(t, e.ta+"|"+e.tb, tokReadB); !slices.Equal(got, []string{"tls-basic", "tls-bearer", "tls-ingest"}) {
		t.Errorf("tenants A|B apps %v, want all three", got)
	}
	// gRPC-Web (as browsers speak it) over the same port.
	gw := querierv1connect.NewQuerierServiceClient(e.client(t, bearer(tokRWA, e.ta)), e.s.HTTPURL(), connect.WithGRPCWeb())
	lv, err := gw.LabelValues(ctx, connect.NewRequest(&typesv1.LabelValuesRequest{Name: "service_name",
		Start: 1, End: time.Now().Add(time.Minute).UnixMilli()}))
	if err != nil || !slices.Contains(lv.Msg.Names, "tls-basic") {
		t.Errorf("gRPC-Web label values over HTTPS: %v %v", err, lv)
	}
	// The port speaks HTTPS only: a plain-text request is not answered.
	plain := &http.Client{Transport: kilntest.NewH1Transport(), Timeout: 5 * time.Second}
	if r, err := plain.Get("http://" + e.s.HTTPAddr + "/ready"); err == nil {
		r.Body.Close()
		t.Errorf("plain HTTP on the HTTPS port answered %d", r.StatusCode)
	} else {
		t.Logf("plain HTTP on the HTTPS port: %v", err)
	}
	e.s.RequireAlive(t)
}

// TestHTTPSGoSDKBasicAuth: pyroscope-go's uploader with Basic auth over
// HTTPS (its HTTPClient trusting the CA) lands in the user's tenant; the
// same uploader with its default client (the system's roots, which do not
// hold the test CA) fails and stores nothing.
func TestHTTPSGoSDKBasicAuth(t *testing.T) {
	e, _ := startHTTPS(t, "")
	for _, tc := range []struct {
		app    string
		client remote.HTTPClient
		ok     bool
	}{
		{"sdk-tls", &http.Client{Transport: e.s.NewHTTPTransport()}, true},
		{"sdk-untrusted", nil, false},
	} {
		log := &errLogger{}
		r, err := remote.NewRemote(remote.Config{Address: e.s.HTTPURL(), BasicAuthUser: e.ta,
			BasicAuthPassword: tokWA, Threads: 1, Timeout: 10 * time.Second, Logger: log,
			HTTPClient: tc.client})
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
		if tc.ok != (len(log.errs) == 0) {
			t.Errorf("%s: uploader errors %v", tc.app, log.errs)
		}
	}
	if got := e.apps(t, e.ta, tokRWA); !slices.Equal(got, []string{"sdk-tls"}) {
		t.Errorf("tenant A apps %v, want [sdk-tls]", got)
	}
}

// TestHTTPSWrongCAAndExpired: a client trusting another CA refuses the
// server; so does every client once the server's certificate, rotated in
// place, has expired. Neither push is stored.
func TestHTTPSWrongCAAndExpired(t *testing.T) {
	e, ca := startHTTPS(t, "")
	auth := basic(e.ta, tokRWA)
	other := kilntest.NewCA(t)
	hc, _ := tlsClient(t, other.ClientConfig(nil), auth)
	err := e.pushWith(t, hc, "tls-wrong-ca")
	if err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Errorf("push trusting another CA: %v, want an unknown authority error", err)
	} else {
		t.Logf("push trusting another CA: %v", err)
	}
	ca.Issue(t, "kiln", kilntest.CertOptions{NotBefore: time.Now().Add(-48 * time.Hour),
		NotAfter: time.Now().Add(-24 * time.Hour)})
	hc, _ = tlsClient(t, ca.ClientConfig(nil), auth)
	err = e.pushWith(t, hc, "tls-expired")
	if err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("push to an expired certificate: %v, want an expired error", err)
	} else {
		t.Logf("push to an expired certificate: %v", err)
	}
	ca.Issue(t, "kiln", kilntest.CertOptions{}) // valid again, to read
	if got := e.apps(t, e.ta, tokRWA); len(got) != 0 {
		t.Errorf("refused pushes stored %v", got)
	}
}

// TestHTTPSRotation: the server certificate is re-issued at the same paths
// (as cert-manager does): a new connection sees the new certificate, an
// open keep-alive connection keeps its session and keeps working.
func TestHTTPSRotation(t *testing.T) {
	e, ca := startHTTPS(t, "")
	old, oldTr := tlsClient(t, e.s.HTTPClientTLS(), basic(e.ta, tokRWA))
	s1, _ := readyTLS(t, e, old)
	next := ca.Issue(t, "kiln", kilntest.CertOptions{})
	s2 := serialOf(t, next.TLS)
	if s1.Cmp(s2) == 0 {
		t.Fatalf("the re-issued certificate has the old serial %v", s1)
	}
	fresh, _ := tlsClient(t, e.s.HTTPClientTLS(), nil)
	if got, _ := readyTLS(t, e, fresh); got.Cmp(s2) != 0 {
		t.Errorf("a new connection after the rotation sees serial %v, want the new %v (old %v)", got, s2, s1)
	}
	got, reused := readyTLS(t, e, old)
	if !reused || got.Cmp(s1) != 0 {
		t.Errorf("the kept-alive connection: reused %v serial %v, want reused with the old %v", reused, got, s1)
	}
	if err := e.pushWith(t, old, "tls-kept"); err != nil {
		t.Fatalf("push on the kept-alive connection: %v", err)
	}
	if got, reused := readyTLS(t, e, old); !reused || got.Cmp(s1) != 0 {
		t.Errorf("after the push: reused %v serial %v", reused, got)
	}
	oldTr.CloseIdleConnections()
	if got := e.apps(t, e.ta, tokRWA); !slices.Equal(got, []string{"tls-kept"}) {
		t.Errorf("tenant A apps %v, want [tls-kept]", got)
	}
}

// curlIngest runs curl against /ingest with Basic auth for tenant A;
// extra are its TLS arguments. It returns curl's exit code, the HTTP status
// and stderr.
func curlIngest(t *testing.T, e *env, app string, extra ...string) (int, string, string) {
	t.Helper()
	bin, err := exec.LookPath("curl")
	if err != nil {
		t.Fatalf("curl (installed by .ci/install-deps): %v", err)
	}
	args := append([]string{"-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}",
		"-u", e.ta + ":" + tokRWA, "--data-binary", "main;work 10\n",
		e.s.HTTPURL() + "/ingest?name=" + app + "&format=folded"}, extra...)
	cmd := exec.Command(bin, args...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err = cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), strings.TrimSpace(stderr.String())
}

// TestHTTPSClientCertCurl: with RequireAndVerifyClientCert, curl with a
// certificate of the CA is served; without one, or with one of another
// CA, the handshake fails; nothing of the refused requests is stored.
func TestHTTPSClientCertCurl(t *testing.T) {
	e, ca := startHTTPS(t, "RequireAndVerifyClientCert")
	good := ca.Issue(t, "curl-client", kilntest.CertOptions{})
	bad := kilntest.NewCA(t).Issue(t, "intruder", kilntest.CertOptions{})
	trust := []string{"--cacert", ca.CAPath}
	code, status, stderr := curlIngest(t, e, "curl-ok", append(trust, "--cert", good.CertPath, "--key", good.KeyPath)...)
	if code != 0 || status != "200" {
		t.Fatalf("curl with a client certificate: exit %d, HTTP %s: %s", code, status, stderr)
	}
	for _, tc := range []struct {
		app  string
		args []string
	}{
		{"curl-nocert", trust},
		{"curl-othca", append(trust, "--cert", bad.CertPath, "--key", bad.KeyPath)},
	} {
		code, status, stderr := curlIngest(t, e, tc.app, tc.args...)
		if code == 0 {
			t.Errorf("%s: curl succeeded (HTTP %s), want a failed handshake", tc.app, status)
		} else {
			t.Logf("%s: curl exit %d: %s", tc.app, code, stderr)
		}
	}
	// Go's client without a certificate is refused the same way.
	hc, _ := tlsClient(t, ca.ClientConfig(nil), basic(e.ta, tokRWA))
	if err := e.pushWith(t, hc, "go-nocert"); err == nil {
		t.Errorf("push without a client certificate succeeded")
	}
	e.s.RequireAlive(t)
	if got := e.apps(t, e.ta, tokRWA); !slices.Equal(got, []string{"curl-ok"}) {
		t.Errorf("tenant A apps %v, want [curl-ok]", got)
	}
}

// TestHTTPSClientAuthPolicies: the other policies, with Go clients that
// present no certificate, one of the CA, or one of another CA (offered
// whatever CAs the server names, as curl does).
func TestHTTPSClientAuthPolicies(t *testing.T) {
	for _, tc := range []struct {
		policy string
		ok     []string // of none, ca, other
	}{
		{"RequestClientCert", []string{"none", "ca", "other"}},
		{"RequireAnyClientCert", []string{"ca", "other"}},
		{"VerifyClientCertIfGiven", []string{"none", "ca"}},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			e, ca := startHTTPS(t, tc.policy)
			mine := ca.Issue(t, "client", kilntest.CertOptions{})
			foreign := kilntest.NewCA(t).Issue(t, "foreign", kilntest.CertOptions{})
			cfgs := map[string]*tls.Config{"none": ca.ClientConfig(nil), "ca": ca.ClientConfig(&mine),
				"other": ca.ClientConfig(nil)}
			cfgs["other"].GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				return &foreign.TLS, nil
			}
			for _, who := range []string{"none", "ca", "other"} {
				hc, _ := tlsClient(t, cfgs[who], basic(e.ta, tokRWA))
				err := e.pushWith(t, hc, "policy-"+who)
				if (err == nil) != slices.Contains(tc.ok, who) {
					t.Errorf("%s client: %v, want served = %v", who, err, slices.Contains(tc.ok, who))
				} else {
					t.Logf("%s client: %v", who, err)
				}
			}
			want := []string{}
			for _, who := range tc.ok {
				want = append(want, "policy-"+who)
			}
			slices.Sort(want)
			if got := e.apps(t, e.ta, tokRWA); !slices.Equal(got, want) {
				t.Errorf("tenant A apps %v, want %v", got, want)
			}
		})
	}
}

// TestOTLPGRPCTLSHeader: the OTLP exporter over gRPC TLS on the OTLP port
// with its authorization header, as a collector sends it: a token for the
// tenant stores, a wrong CA and a token of another tenant are refused and
// store nothing.
func TestOTLPGRPCTLSHeader(t *testing.T) {
	ca := kilntest.NewCA(t)
	cert := ca.Issue(t, "kiln-grpc", kilntest.CertOptions{})
	e := start(t, kilntest.Args("-server.grpc-tls-cert-path="+cert.CertPath,
		"-server.grpc-tls-key-path="+cert.KeyPath))
	creds := credentials.NewTLS(ca.ClientConfig(nil))
	other := kilntest.NewCA(t)
	if err := exportGRPCWith(t, e.s.OTLPAddr, credentials.NewTLS(other.ClientConfig(nil)),
		"authorization", "Bearer "+tokRWB, "x-scope-orgid", e.tb); err == nil {
		t.Errorf("an export trusting another CA succeeded")
	} else {
		t.Logf("an export trusting another CA: %v", err)
	}
	wantGRPC(t, "token of another tenant over TLS", exportGRPCWith(t, e.s.OTLPAddr, creds,
		"authorization", "Bearer "+tokRWA, "x-scope-orgid", e.tb), codes.PermissionDenied)
	if got := e.apps(t, e.tb, tokRWB); len(got) != 0 {
		t.Fatalf("refused exports stored %v", got)
	}
	if err := exportGRPCWith(t, e.s.OTLPAddr, creds, "authorization", "Bearer "+tokRWB,
		"x-scope-orgid", e.tb); err != nil {
		t.Fatalf("export over TLS with a token: %v", err)
	}
	if got := e.apps(t, e.tb, tokRWB); len(got) == 0 {
		t.Errorf("tenant B has no apps after the export over TLS")
	} else {
		t.Logf("tenant B apps after the OTLP export over gRPC TLS: %v", got)
	}
}
