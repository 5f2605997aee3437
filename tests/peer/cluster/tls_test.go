package cluster

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"kiln.dev/tests/lib/kilntest"
)

// rawCodec sends bytes as they are: a call needs no generated Go code
// when it is refused before its message is read.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error)      { return *v.(*[]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error { *v.(*[]byte) = data; return nil }
func (rawCodec) Name() string                       { return "proto" }

// planeCall sends an empty ingester.v1 Push to addr with creds.
func planeCall(t *testing.T, addr string, creds credentials.TransportCredentials, tenant string) error {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), requestTimeout)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "x-scope-orgid", tenant)
	var in, out []byte
	return conn.Invoke(ctx, "/ingester.v1.IngesterService/Push", &in, &out, grpc.ForceCodec(rawCodec{}))
}

// TestClusterTLS runs the cluster with its cluster plane over mutual TLS
// (-cluster.tls-*): distributors write to and the querier reads from the
// ingesters only with the cluster certificate. Pushes through both
// distributors have exact totals; an ingester's cluster plane refuses a
// caller without a client certificate, with another CA's or an expired
// one, and its public gRPC port answers ingester.v1 with unimplemented;
// after the certificate files are re-issued in place every process
// reloads them and pushes and totals stay exact.
func TestClusterTLS(t *testing.T) {
	_, testdata := kilntest.RequireEnv(t)
	ca, other := kilntest.NewCA(t), kilntest.NewCA(t)
	member := ca.Issue(t, "kiln-cluster", kilntest.CertOptions{})
	// NATS with TLS and credentials is proven by tests/peer/natssec (not
	// here: this test also runs under TSan, where nats.c's TLS teardown
	// races OpenSSL's exit-time cleanup inside the libraries).
	c := &cluster{
		nats:       kilntest.StartNATS(t),
		bucket:     t.TempDir(),
		tenant:     kilntest.NewTenant("cluster-tls"),
		rpcTimeout: 10 * time.Second,
		hbTimeout:  heartbeatTimeout,
		extra: []string{"-cluster.tls-cert-path=" + member.CertPath, "-cluster.tls-key-path=" + member.KeyPath,
			"-cluster.tls-ca-path=" + ca.CAPath},
	}
	c.prof = kilntest.LoadProfile(t, testdata, profileFile)
	c.start(t, ingesterArgs...)
	for _, s := range c.ing {
		if len(s.Log.Grep("cluster_tls=mutual")) == 0 {
			t.Fatalf("%s does not report mutual TLS on its cluster plane", s.Name)
		}
	}

	c.mustPush(t, "tls-a", 30)
	c.expectExact(t, "30 pushes over mTLS", "tls-a", 30)

	ing := c.ing[0]
	plane := ing.Listeners["internal-grpc"]
	neg := kilntest.NewTenant("cluster-tls-neg")
	expired := ca.Issue(t, "expired", kilntest.CertOptions{
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	foreign := other.Issue(t, "intruder", kilntest.CertOptions{})
	for _, tc := range []struct {
		what  string
		creds credentials.TransportCredentials
	}{
		{"no client certificate", credentials.NewTLS(ca.ClientConfig(nil))},
		{"another CA's certificate", credentials.NewTLS(ca.ClientConfig(&foreign))},
		{"expired certificate", credentials.NewTLS(ca.ClientConfig(&expired))},
		{"plain text", insecure.NewCredentials()},
	} {
		if err := planeCall(t, plane, tc.creds, neg); status.Code(err) != codes.Unavailable {
			t.Errorf("cluster plane, %s: %v, want unavailable", tc.what, err)
		} else {
			t.Logf("cluster plane, %s: refused (%v)", tc.what, err)
		}
	}
	if err := planeCall(t, ing.GRPCAddr, insecure.NewCredentials(), neg); status.Code(err) != codes.Unimplemented {
		t.Errorf("ingester.v1 Push on %s's public gRPC port: %v, want unimplemented", ing.Name, err)
	} else {
		t.Logf("ingester.v1 Push on the public gRPC port: %v", err)
	}
	// The control: the cluster certificate is taken (an empty push,
	// which stores nothing).
	if err := planeCall(t, plane, credentials.NewTLS(ca.ClientConfig(&member)), neg); status.Code(err) == codes.Unavailable ||
		status.Code(err) == codes.Unimplemented {
		t.Errorf("the cluster certificate on the cluster plane: %v", err)
	} else {
		t.Logf("the cluster certificate on the cluster plane: handshake taken (%v)", status.Code(err))
	}

	// Rotation: the files are re-issued in place; every process picks
	// them up (clients look at most once a second) and writes go on.
	ca.Issue(t, "kiln-cluster", kilntest.CertOptions{})
	time.Sleep(1100 * time.Millisecond)
	c.mustPush(t, "tls-b", 20)
	c.expectExact(t, "20 pushes after the rotation", "tls-b", 20)
	c.expectExact(t, "after the rotation", "tls-a", 30)
	for _, s := range append([]*kilntest.Server{c.querier}, c.dist...) {
		if len(s.Log.Grep("-cluster.tls-*: certificate files reloaded")) == 0 {
			t.Errorf("%s did not reload the rotated cluster certificate", s.Name)
		}
	}
}
