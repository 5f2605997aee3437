package kilntest

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/net/http2"

	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
)

// RequestIDHeader tags a request so that Clients.Outcome can report the
// HTTP status, Content-Type and protocol the server answered it with.
const RequestIDHeader = "X-Peer-Request-Id"

// Outcome is the HTTP side of one response.
type Outcome struct {
	Status      int
	ContentType string
	Proto       string // "HTTP/1.1", "HTTP/2.0"
}

// statusRecorder keeps the Outcome of every response to a request tagged
// with RequestIDHeader.
type statusRecorder struct {
	mu sync.Mutex
	m  map[string]Outcome
}

func (r *statusRecorder) set(id string, o Outcome) {
	if id == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]Outcome{}
	}
	r.m[id] = o
}

func (r *statusRecorder) get(id string) (Outcome, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	o, ok := r.m[id]
	return o, ok
}

// tenantTransport adds X-Scope-OrgID (unless the tenant is ""), as Alloy
// and Grafana do with their configured headers, and records outcomes.
type tenantTransport struct {
	base   http.RoundTripper
	tenant string
	rec    *statusRecorder
}

func (tt *tenantTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	if tt.tenant != "" {
		r.Header.Set("X-Scope-OrgID", tt.tenant)
	}
	resp, err := tt.base.RoundTrip(r)
	if err == nil && tt.rec != nil {
		tt.rec.set(req.Header.Get(RequestIDHeader), Outcome{
			Status:      resp.StatusCode,
			ContentType: resp.Header.Get("Content-Type"),
			Proto:       resp.Proto,
		})
	}
	return resp, err
}

// NewH1Transport is a plain HTTP/1.1 transport (no proxy), as Alloy's
// http:// client uses.
func NewH1Transport() *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     30 * time.Second,
	}
}

// NewH2CTransport is HTTP/2 over cleartext TCP, as gRPC clients speak to
// an http:// address.
func NewH2CTransport() *http2.Transport {
	return &http2.Transport{
		AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
}

// TenantClient is an HTTP/1.1 client that sends X-Scope-OrgID: tenant
// (none for "") and gives up after RequestTimeout. Its idle connections
// are closed at the end of the test.
func TenantClient(t testing.TB, tenant string) *http.Client {
	t.Helper()
	tr := NewH1Transport()
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: &tenantTransport{base: tr, tenant: tenant}, Timeout: RequestTimeout}
}

// Clients are the upstream clients bound to one tenant (none for "").
// Requests have no client-side timeout: give them a context (ReqCtx).
type Clients struct {
	Tenant    string
	Push      pushv1connect.PusherServiceClient     // Connect, HTTP/1.1, binary proto (Alloy)
	PushGRPC  pushv1connect.PusherServiceClient     // gRPC over h2c to the gRPC port
	Query     querierv1connect.QuerierServiceClient // Connect, binary proto (Grafana)
	QueryJSON querierv1connect.QuerierServiceClient // Connect, JSON (Profiles Drilldown)
	QueryGRPC querierv1connect.QuerierServiceClient // gRPC over h2c to the gRPC port
	HTTP      *http.Client                          // HTTP/1.1 with the tenant header
	H2C       *http.Client                          // h2c with the tenant header
	rec       *statusRecorder
}

// Clients returns the upstream clients of tenant on s; their idle
// connections are closed at the end of the test. With WithHTTPTLS the
// HTTP/1.1 ones speak HTTPS (PushGRPC and QueryGRPC stay on the gRPC port).
func (s *Server) Clients(t testing.TB, tenant string) *Clients {
	t.Helper()
	rec := &statusRecorder{}
	h1t := s.NewHTTPTransport()
	h2t := NewH2CTransport()
	t.Cleanup(func() {
		h1t.CloseIdleConnections()
		h2t.CloseIdleConnections()
	})
	h1 := &http.Client{Transport: &tenantTransport{base: h1t, tenant: tenant, rec: rec}}
	h2c := &http.Client{Transport: &tenantTransport{base: h2t, tenant: tenant, rec: rec}}
	return &Clients{
		Tenant:    tenant,
		Push:      pushv1connect.NewPusherServiceClient(h1, s.HTTPURL()),
		PushGRPC:  pushv1connect.NewPusherServiceClient(h2c, s.GRPCURL(), connect.WithGRPC()),
		Query:     querierv1connect.NewQuerierServiceClient(h1, s.HTTPURL()),
		QueryJSON: querierv1connect.NewQuerierServiceClient(h1, s.HTTPURL(), connect.WithProtoJSON()),
		QueryGRPC: querierv1connect.NewQuerierServiceClient(h2c, s.GRPCURL(), connect.WithGRPC()),
		HTTP:      h1,
		H2C:       h2c,
		rec:       rec,
	}
}

// Outcome returns the HTTP outcome of the request that carried
// RequestIDHeader: id, if a response arrived.
func (c *Clients) Outcome(id string) (Outcome, bool) { return c.rec.get(id) }
