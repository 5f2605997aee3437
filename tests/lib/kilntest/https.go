package kilntest

import (
	"crypto/tls"
	"net/http"
	"testing"
)

// httpTLS is what WithHTTPTLS asked for.
type httpTLS struct {
	ca         *CA
	cert       Cert
	clientAuth string
}

// WithHTTPTLS serves kiln's HTTP port over HTTPS only, with cert (issued
// by ca, for example ca.Issue(t, "kiln", CertOptions{})) and the client
// certificate policy clientAuth ("" = kiln's default, NoClientCert;
// otherwise one of Go's tls.ClientAuthType names, with ca as the roots
// that verify clients). HTTPURL is then https://; the harness's own
// requests (readiness, Clients, NewHTTPTransport) trust ca and, under any
// policy but NoClientCert, present a client certificate ca issued.
func WithHTTPTLS(ca *CA, cert Cert, clientAuth string) Option {
	return func(c *config) { c.httpTLS = &httpTLS{ca: ca, cert: cert, clientAuth: clientAuth} }
}

func (h *httpTLS) args() []string {
	a := []string{
		"-server.http-tls-cert-path=" + h.cert.CertPath,
		"-server.http-tls-key-path=" + h.cert.KeyPath,
	}
	if h.clientAuth != "" {
		a = append(a, "-server.http-tls-client-auth="+h.clientAuth,
			"-server.http-tls-ca-path="+h.ca.CAPath)
	}
	return a
}

// clientConfig is the harness's client side: trusts the CA, and presents
// a certificate of its own when the server may ask for one.
func (h *httpTLS) clientConfig(t testing.TB) *tls.Config {
	t.Helper()
	if h.clientAuth == "" || h.clientAuth == "NoClientCert" {
		return h.ca.ClientConfig(nil)
	}
	c := h.ca.Issue(t, "kilntest-client", CertOptions{})
	return h.ca.ClientConfig(&c)
}

// HTTPClientTLS is a copy of the TLS config the harness uses against the
// HTTPS port (WithHTTPTLS), or nil when the port speaks plain HTTP.
func (s *Server) HTTPClientTLS() *tls.Config {
	if s.tls == nil {
		return nil
	}
	return s.tls.Clone()
}

// NewHTTPTransport is NewH1Transport for this server's HTTP port: with
// WithHTTPTLS it speaks HTTPS (HTTP/1.1, as kiln offers by ALPN) with
// HTTPClientTLS.
func (s *Server) NewHTTPTransport() *http.Transport {
	tr := NewH1Transport()
	tr.TLSClientConfig = s.HTTPClientTLS()
	return tr
}
