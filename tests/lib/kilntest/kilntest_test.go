package kilntest

import (
	"bufio"
	"crypto/x509"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// These tests check the harness itself; ctest does not run them (run
// go test ./... here with KILN_BIN set).

func TestLog(t *testing.T) {
	l := NewLog(t, "x| ")
	w := l.Watch("flushed")
	_, _ = l.Write([]byte("a flushed\nb"))
	_, _ = l.Write([]byte("c\n"))
	_, _ = l.Write([]byte("tail"))
	if got := l.Grep("b"); len(got) != 1 || got[0] != "bc" {
		t.Errorf("Grep(b) = %q, want [bc]", got)
	}
	select {
	case line := <-w:
		if line != "a flushed" {
			t.Errorf("Watch got %q", line)
		}
	default:
		t.Error("Watch did not signal")
	}
	if got := l.Tail(1); got != "bc" {
		t.Errorf("Tail(1) = %q before Close", got)
	}
	l.Close()
	if got := l.Tail(2); got != "bc\ntail" {
		t.Errorf("Tail(2) = %q after Close", got)
	}
	if got := NewLog(t, "").Tail(3); got != "(no output)" {
		t.Errorf("empty Tail = %q", got)
	}
}

func TestIDs(t *testing.T) {
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(NewUUID()) {
		t.Error("NewUUID is not a version 4 UUID")
	}
	if !regexp.MustCompile(`^p-[0-9a-f]{12}$`).MatchString(NewTenant("p")) {
		t.Error("NewTenant is not prefix-<12 hex>")
	}
	if a, b := RandomHex(8), RandomHex(8); len(a) != 16 || a == b {
		t.Errorf("RandomHex(8) = %q, %q", a, b)
	}
}

func TestStartStop(t *testing.T) {
	s := Start(t, OTLPOnLoopback())
	if s.OTLPAddr == "" || s.Listeners["otlp-grpc"] != s.OTLPAddr {
		t.Fatalf("OTLPAddr %q, Listeners %v", s.OTLPAddr, s.Listeners)
	}
	c, err := net.DialTimeout("tcp", s.OTLPAddr, time.Second)
	if err != nil {
		t.Fatalf("OTLP port: %v", err)
	}
	_ = c.Close()
	if code := s.GetReady(t); code != http.StatusOK {
		t.Errorf("GET /ready = %d", code)
	}
	s.Stop(t)
	if !s.Exited() || s.ReadyStatus() != 0 {
		t.Errorf("still running after Stop: %s", s.ExitDescription())
	}
}

func TestRestartOnSameStorage(t *testing.T) {
	s := Start(t, Numbered(), OTLPOff(), KillAtCleanup())
	s.Kill(t)
	s2 := s.Restart(t, LogLevel("info"))
	if s2.Storage != s.Storage || s2.Name == s.Name || s2.HTTPAddr == s.HTTPAddr {
		t.Errorf("restart: storage %s -> %s, name %s -> %s, http %s -> %s",
			s.Storage, s2.Storage, s.Name, s2.Name, s.HTTPAddr, s2.HTTPAddr)
	}
	if code := s2.ReadyStatus(); code != http.StatusOK {
		t.Errorf("%s: GET /ready = %d", s2.Name, code)
	}
	s3 := s2.Restart(t) // terminates s2 first
	if !s2.Exited() || s2.State().ExitCode() != 0 {
		t.Errorf("%s: %s, want exit code 0", s2.Name, s2.ExitDescription())
	}
	s3.Terminate(t)
}

func TestCAIssuesVerifiableCerts(t *testing.T) {
	ca := NewCA(t)
	c := ca.Issue(t, "server", CertOptions{})
	leaf, err := x509.ParseCertificate(c.TLS.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool, DNSName: "localhost",
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("verify: %v", err)
	}
	old := ca.Issue(t, "old", CertOptions{NotAfter: time.Now().Add(-time.Minute)})
	leaf, _ = x509.ParseCertificate(old.TLS.Certificate[0])
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool}); err == nil {
		t.Fatal("an expired certificate verified")
	}
}

// TestNATSSecured reads the INFO line of secured servers: TLS with client
// verification and a password, then a token without TLS.
func TestNATSSecured(t *testing.T) {
	ca := NewCA(t)
	n := StartNATS(t, NATSTLS(ca, true), NATSUser("u", "p"))
	if !strings.HasPrefix(n.URL(), "tls://") {
		t.Errorf("URL %s, want tls://", n.URL())
	}
	info := natsInfo(t, n)
	for _, want := range []string{`"tls_required":true`, `"tls_verify":true`, `"auth_required":true`} {
		if !strings.Contains(info, want) {
			t.Errorf("INFO lacks %s: %s", want, info)
		}
	}
	n = StartNATS(t, NATSToken("tok"))
	if info := natsInfo(t, n); !strings.Contains(info, `"auth_required":true`) || strings.Contains(info, "tls_required") {
		t.Errorf("token server INFO: %s", info)
	}
}

// natsInfo returns the first line the server sends (INFO, before any TLS).
func natsInfo(t *testing.T, n *NATS) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", n.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("INFO from %s: %v", n.Addr(), err)
	}
	return line
}
