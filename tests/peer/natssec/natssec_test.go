package natssec

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"kiln.dev/tests/lib/kilntest"
	"kiln.dev/tests/lib/kilntest/natsjwt"
)

const (
	heartbeat        = time.Second
	heartbeatTimeout = 5 * time.Second
	// ringWait bounds every wait for the rings to agree and for NATS
	// reconnections: several heartbeat timeouts, for a loaded 2-core
	// machine and sanitizer builds.
	ringWait       = 40 * time.Second
	requestTimeout = 20 * time.Second
	readyTimeout   = 60 * time.Second
	// exitWait bounds how long a refused kiln may take to exit: the first
	// connection tries each server once (nats.c's 2 s connect timeout).
	exitWait    = 30 * time.Second
	pods        = 4
	profileFile = "grafana-pyroscope/cpu.pb.gz"
	user        = "kiln"
)

// cluster is kiln processes (-target=all) sharing one NATS and one store.
type cluster struct {
	nats   *kilntest.NATS
	bucket string
	tenant string
	prof   *kilntest.Profile
	procs  []*kilntest.Server
	names  []string
}

// commonArgs are the flags of every process: the cluster, its timing and
// store, natsArgs (credentials and TLS), and the limits that would refuse
// the years-old test profile turned off.
func commonArgs(n *kilntest.NATS, bucket string, rf int, natsArgs []string) []string {
	args := []string{
		"-cluster.nats-url=" + n.URL(),
		"-cluster.heartbeat-period=" + heartbeat.String(),
		"-cluster.heartbeat-timeout=" + heartbeatTimeout.String(),
		fmt.Sprintf("-distributor.replication-factor=%d", rf),
		"-storage.filesystem.dir=" + bucket,
		// Every process runs a compactor on the shared store: none gets a
		// round in during the test.
		"-compactor.compaction-interval=1h",
		"-validation.reject-older-than=0",
		"-validation.reject-newer-than=0",
		"-distributor.ingestion-rate-limit-mb=0",
		"-querier.max-query-length=0",
		"-querier.max-query-lookback=0",
	}
	return append(args, natsArgs...)
}

// startCluster starts count kiln processes connecting to n with natsArgs
// and waits until every one's ring holds all of them, ACTIVE.
func startCluster(t *testing.T, n *kilntest.NATS, count int, natsArgs ...string) *cluster {
	t.Helper()
	_, testdata := kilntest.RequireEnv(t)
	c := &cluster{nats: n, bucket: t.TempDir(), tenant: kilntest.NewTenant("natssec")}
	c.prof = kilntest.LoadProfile(t, testdata, profileFile)
	for i := 1; i <= count; i++ {
		name := fmt.Sprintf("kiln-%d", i)
		storage := t.TempDir()
		if err := os.WriteFile(filepath.Join(storage, "instance_id"), []byte(name+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		c.procs = append(c.procs, kilntest.Start(t,
			kilntest.Name(name),
			kilntest.Storage(storage),
			kilntest.LogLevel("info"),
			kilntest.OTLPOff(),
			kilntest.OtherListenersOnLoopback(),
			kilntest.IgnoreEnvArgs(),
			kilntest.ReadyTimeout(readyTimeout),
			kilntest.Args(commonArgs(n, c.bucket, count, natsArgs)...),
		))
		c.names = append(c.names, name)
	}
	c.waitRing(t, "start")
	return c
}

// waitRing waits until the ring of every process holds exactly the
// processes, all ACTIVE with fresh heartbeats.
func (c *cluster) waitRing(t *testing.T, when string) {
	t.Helper()
	t0 := time.Now()
	for {
		bad := ""
		for _, s := range c.procs {
			s.RequireAlive(t)
			r, err := s.Ring()
			if err != nil {
				bad = fmt.Sprintf("%s: %v", s.Name, err)
				break
			}
			active := r.Active(heartbeatTimeout)
			sort.Strings(active)
			if len(r.Members) != len(c.names) || !slices.Equal(active, c.names) {
				bad = fmt.Sprintf("%s: ring %s", s.Name, r)
				break
			}
		}
		if bad == "" {
			t.Logf("%s: every ring is %v, ACTIVE (%v)", when, c.names, time.Since(t0).Round(time.Millisecond))
			return
		}
		if time.Since(t0) > ringWait {
			t.Fatalf("%s: rings not %v ACTIVE after %v: %s", when, c.names, ringWait, bad)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitNATSConnected waits until kiln_cluster_nats_connected is 1 on every
// process.
func (c *cluster) waitNATSConnected(t *testing.T) {
	t.Helper()
	t0 := time.Now()
	for {
		bad := ""
		for _, s := range c.procs {
			s.RequireAlive(t)
			if v, ok, err := s.Metric("kiln_cluster_nats_connected"); err != nil || !ok || v != "1" {
				bad = fmt.Sprintf("%s: kiln_cluster_nats_connected=%q (found %v, %v)", s.Name, v, ok, err)
				break
			}
		}
		if bad == "" {
			t.Logf("every process connected to NATS again (%v)", time.Since(t0).Round(time.Millisecond))
			return
		}
		if time.Since(t0) > ringWait {
			t.Fatalf("after %v: %s", ringWait, bad)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// push sends n pushes of the profile as service through process p.
func (c *cluster) push(t *testing.T, p int, service string, n int) {
	t.Helper()
	cl := c.procs[p].Clients(t, c.tenant)
	for i := range n {
		ctx, cancel := context.WithTimeout(t.Context(), requestTimeout)
		_, err := cl.Push.Push(ctx, connect.NewRequest(&pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
			Labels: []*typesv1.LabelPair{
				{Name: "__name__", Value: c.prof.Name},
				{Name: "service_name", Value: service},
				{Name: "pod", Value: fmt.Sprintf("pod-%d", i%pods)},
				{Name: "__delta__", Value: "false"},
			},
			Samples: []*pushv1.RawSample{{RawProfile: c.prof.Raw, ID: kilntest.NewUUID()}},
		}}}))
		cancel()
		if err != nil {
			c.procs[p].CheckAfterError(t, err)
			t.Fatalf("push %d/%d as %s through %s: %v", i+1, n, service, c.procs[p].Name, err)
		}
	}
}

// expectExact checks that service's totals read through process p are
// exactly want pushes.
func (c *cluster) expectExact(t *testing.T, p int, service string, want int64) {
	t.Helper()
	ms := c.prof.TimeNanos / int64(time.Millisecond)
	hour := int64(time.Hour / time.Millisecond)
	q := c.procs[p].Clients(t, c.tenant)
	totals, err := kilntest.ServiceTotals(t, q.Query, c.prof.TypeIDs, service, ms-hour, ms+hour, requestTimeout)
	if err != nil {
		c.procs[p].CheckAfterError(t, err)
		t.Fatalf("%s through %s: %v", service, c.procs[p].Name, err)
	}
	n, err := c.prof.Pushes(totals)
	if err != nil || n != want {
		t.Fatalf("%s through %s: totals %v = %d pushes (%v), want %d (totals %v)", service, c.procs[p].Name,
			totals, n, err, want, c.prof.Totals(want))
	}
	t.Logf("%s through %s: %d pushes exactly (totals %v)", service, c.procs[p].Name, want, totals)
}

// expectNoSecret checks that no secret shows in any process's log lines,
// /metrics, or the configuration status.v1 serves (which masks them).
func (c *cluster) expectNoSecret(t *testing.T, secrets ...string) {
	t.Helper()
	for _, s := range c.procs {
		for _, line := range s.Log.Lines() {
			for _, secret := range secrets {
				if strings.Contains(line, secret) {
					t.Errorf("%s logged a secret: %s", s.Name, line)
				}
			}
		}
		for _, path := range []string{"/metrics", "/api/v1/status/config"} {
			body := get(t, s.HTTPURL()+path)
			for _, secret := range secrets {
				if strings.Contains(body, secret) {
					t.Errorf("%s%s shows a secret", s.Name, path)
				}
			}
			if path != "/metrics" && !strings.Contains(body, "********") {
				t.Errorf("%s%s masks nothing:\n%s", s.Name, path, body)
			}
		}
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	client := &http.Client{Timeout: requestTimeout}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d, %v", url, resp.StatusCode, err)
	}
	return string(body)
}

// tlsArgs are the TLS flags of a client of ca presenting cert (nil: none).
func tlsArgs(ca *kilntest.CA, cert *kilntest.Cert) []string {
	args := []string{"-cluster.nats-tls-ca-path=" + ca.CAPath}
	if cert != nil {
		args = append(args, "-cluster.nats-tls-cert-path="+cert.CertPath, "-cluster.nats-tls-key-path="+cert.KeyPath)
	}
	return args
}

func TestTLSWithPassword(t *testing.T) {
	ca := kilntest.NewCA(t)
	password := "pw-" + kilntest.RandomHex(12)
	n := kilntest.StartNATS(t, kilntest.NATSTLS(ca, true), kilntest.NATSUser(user, password))
	cert := ca.Issue(t, "kiln-client", kilntest.CertOptions{})
	args := append(tlsArgs(ca, &cert), "-cluster.nats-user="+user, "-cluster.nats-password="+password)
	c := startCluster(t, n, 2, args...)

	c.push(t, 0, "svc-a", 6)
	c.expectExact(t, 1, "svc-a", 6)
	c.expectExact(t, 0, "svc-a", 6)
	c.expectNoSecret(t, password)

	// A restarted server is reached again with the same credentials and
	// certificate: nats.c keeps the options of the first connection.
	n.Restart(t)
	c.waitNATSConnected(t)
	c.waitRing(t, "after the NATS restart")
	c.push(t, 1, "svc-b", 5)
	c.expectExact(t, 0, "svc-b", 5)
	c.expectExact(t, 1, "svc-a", 6)
	c.expectNoSecret(t, password)
}

func TestToken(t *testing.T) {
	ca := kilntest.NewCA(t)
	token := "tok-" + kilntest.RandomHex(16)
	n := kilntest.StartNATS(t, kilntest.NATSTLS(ca, false), kilntest.NATSToken(token))
	c := startCluster(t, n, 1, append(tlsArgs(ca, nil), "-cluster.nats-token="+token)...)
	c.push(t, 0, "svc-t", 4)
	c.expectExact(t, 0, "svc-t", 4)
	c.expectNoSecret(t, token)
}

func TestCreds(t *testing.T) {
	op := natsjwt.New(t)
	n := kilntest.StartNATS(t, kilntest.NATSConfig(op.Config()...))
	c := startCluster(t, n, 1, "-cluster.nats-creds-file="+op.Creds(t, "kiln"))
	c.push(t, 0, "svc-c", 3)
	c.expectExact(t, 0, "svc-c", 3)
}

// refusal is one kiln start that must fail.
type refusal struct {
	name string
	nats *kilntest.NATS // nil: a flag check, no server needed
	args []string
	want []string // in the error line
}

func TestRefused(t *testing.T) {
	ca, otherCA := kilntest.NewCA(t), kilntest.NewCA(t)
	password, token := "pw-"+kilntest.RandomHex(12), "tok-"+kilntest.RandomHex(16)
	verifying := kilntest.StartNATS(t, kilntest.NATSTLS(ca, true), kilntest.NATSUser(user, password))
	tokenOnly := kilntest.StartNATS(t, kilntest.NATSToken(token))
	op := natsjwt.New(t)
	operator := kilntest.StartNATS(t, kilntest.NATSConfig(op.Config()...))

	good := ca.Issue(t, "kiln-client", kilntest.CertOptions{})
	expired := ca.Issue(t, "kiln-expired", kilntest.CertOptions{
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	foreign := otherCA.Issue(t, "kiln-foreign", kilntest.CertOptions{})
	login := []string{"-cluster.nats-user=" + user, "-cluster.nats-password=" + password}

	cases := []refusal{
		{"wrong password", verifying, append(tlsArgs(ca, &good), "-cluster.nats-user="+user, "-cluster.nats-password=wrong-"+password),
			[]string{"refused the authentication", "-cluster.nats-user kiln", "Authorization Violation"}},
		{"no credentials", verifying, tlsArgs(ca, &good),
			[]string{"refused the authentication", "no credentials set"}},
		{"wrong CA", verifying, append(tlsArgs(otherCA, &good), login...),
			[]string{"certificate is not trusted by -cluster.nats-tls-ca-path " + otherCA.CAPath}},
		{"no client certificate", verifying, append(tlsArgs(ca, nil), login...),
			[]string{"requires a client certificate", "-cluster.nats-tls-cert-path"}},
		{"expired client certificate", verifying, append(tlsArgs(ca, &expired), login...),
			[]string{"refused the client certificate -cluster.nats-tls-cert-path " + expired.CertPath}},
		{"client certificate of another CA", verifying, append(tlsArgs(ca, &foreign), login...),
			[]string{"refused the client certificate -cluster.nats-tls-cert-path " + foreign.CertPath}},
		{"wrong token", tokenOnly, []string{"-cluster.nats-token=wrong-" + token},
			[]string{"refused the authentication (-cluster.nats-token)"}},
		{"creds of another operator", operator, []string{"-cluster.nats-creds-file=" + natsjwt.New(t).Creds(t, "stranger")},
			[]string{"refused the authentication (-cluster.nats-creds-file"}},
		{"TLS asked of a server without it", tokenOnly, append(tlsArgs(ca, nil), "-cluster.nats-token="+token),
			[]string{"does not offer TLS"}},
		{"password without user", nil, []string{"-cluster.nats-password=" + password},
			[]string{"-cluster.nats-password is set without -cluster.nats-user"}},
		{"certificate without key", nil, []string{"-cluster.nats-tls-cert-path=" + good.CertPath},
			[]string{"-cluster.nats-tls-cert-path and -cluster.nats-tls-key-path go together"}},
		{"token and user", nil, append([]string{"-cluster.nats-token=" + token}, login...),
			[]string{"-cluster.nats-user/-cluster.nats-password and -cluster.nats-token are set"}},
		{"unreadable creds file", nil, []string{"-cluster.nats-creds-file=" + filepath.Join(t.TempDir(), "none.creds")},
			[]string{"cannot read -cluster.nats-creds-file"}},
	}
	for _, rc := range cases {
		t.Run(strings.ReplaceAll(rc.name, " ", "_"), func(t *testing.T) {
			n := rc.nats
			if n == nil {
				n = tokenOnly // never reached: the flags are refused first
			}
			expectRefused(t, rc, n, password, token)
		})
	}
}

// expectRefused starts kiln with rc's flags and requires that it exits
// with status 1 within exitWait, logging one error line with rc.want and
// no secret, and that its ports do not accept afterwards.
func expectRefused(t *testing.T, rc refusal, n *kilntest.NATS, secrets ...string) {
	bin := kilntest.RequireBin(t)
	httpPort, grpcPort := kilntest.FreePort(t), kilntest.FreePort(t)
	args := []string{
		"-target=all",
		"-server.http-listen-address=127.0.0.1", fmt.Sprintf("-server.http-listen-port=%d", httpPort),
		"-server.grpc-listen-address=127.0.0.1", fmt.Sprintf("-server.grpc-listen-port=%d", grpcPort),
		"-server.otlp-grpc-listen-port=-1",
		"-storage.path=" + t.TempDir(),
		"-log.level=info",
	}
	if kilntest.HasFlag(t, "server.internal-grpc-listen-port") {
		args = append(args, "-server.internal-grpc-listen-address=127.0.0.1",
			fmt.Sprintf("-server.internal-grpc-listen-port=%d", kilntest.FreePort(t)))
	}
	args = append(args, commonArgs(n, t.TempDir(), 1, rc.args)...)
	t0 := time.Now()
	p, err := kilntest.StartProc(t, "kiln", exec.Command(bin, args...))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(exitWait):
		_ = p.Cmd.Process.Kill()
		<-p.Done()
		t.Fatalf("kiln still running %v after start (it should have refused): %s", exitWait, p.Log.Tail(10))
	}
	if code := p.State().ExitCode(); code != 1 {
		t.Errorf("kiln: %s, want exit status 1", p.ExitDescription())
	}
	errs := p.Log.Grep("level=error")
	if len(errs) != 1 {
		t.Fatalf("kiln logged %d error lines, want 1:\n%s", len(errs), p.Log.Tail(10))
	}
	for _, w := range rc.want {
		if !strings.Contains(errs[0], w) {
			t.Errorf("error line lacks %q: %s", w, errs[0])
		}
	}
	for _, line := range p.Log.Lines() {
		for _, s := range secrets {
			if strings.Contains(line, s) {
				t.Errorf("kiln logged a secret: %s", line)
			}
		}
	}
	for _, port := range []int{httpPort, grpcPort} {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
			_ = c.Close()
			t.Errorf("port %d accepts after kiln exited", port)
		}
	}
	t.Logf("refused in %v: %s", time.Since(t0).Round(time.Millisecond), errs[0])
}

// TestMicroservicesOverMTLSAndSecureNATS runs the cluster as operators do:
// two ingesters, a distributor and a querier as separate processes, their
// cluster plane over mutual TLS (-cluster.tls-*), on a nats-server that
// takes TLS with client certificates and a password. Pushes through the
// distributor are read back exactly through the querier.
func TestMicroservicesOverMTLSAndSecureNATS(t *testing.T) {
	_, testdata := kilntest.RequireEnv(t)
	ca := kilntest.NewCA(t)
	password := "pw-" + kilntest.RandomHex(12)
	n := kilntest.StartNATS(t, kilntest.NATSTLS(ca, true), kilntest.NATSUser(user, password))
	member := ca.Issue(t, "kiln-member", kilntest.CertOptions{})
	args := append(tlsArgs(ca, &member), "-cluster.nats-user="+user, "-cluster.nats-password="+password,
		"-cluster.tls-cert-path="+member.CertPath, "-cluster.tls-key-path="+member.KeyPath,
		"-cluster.tls-ca-path="+ca.CAPath)
	c := &cluster{nats: n, bucket: t.TempDir(), tenant: kilntest.NewTenant("natssec-ms")}
	c.prof = kilntest.LoadProfile(t, testdata, profileFile)
	start := func(target, name string) *kilntest.Server {
		return kilntest.Start(t, kilntest.Target(target), kilntest.Name(name), kilntest.LogLevel("info"),
			kilntest.OTLPOff(), kilntest.IgnoreEnvArgs(), kilntest.ReadyTimeout(readyTimeout),
			kilntest.Args(commonArgs(n, c.bucket, 2, args)...))
	}
	ing := []*kilntest.Server{start("ingester", "ingester-1"), start("ingester", "ingester-2")}
	for _, s := range ing {
		if len(s.Log.Grep("cluster_tls=mutual")) == 0 {
			t.Fatalf("%s does not report mutual TLS on its cluster plane", s.Name)
		}
	}
	d, q := start("distributor", "distributor"), start("querier", "querier")
	c.procs = []*kilntest.Server{d, q}
	// Until the distributor sees both ingesters a push cannot reach RF=2.
	deadline := time.Now().Add(ringWait)
	for {
		r, err := d.Ring()
		if err == nil && len(r.Active(heartbeatTimeout)) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the distributor's ring is not the two ingesters: %v %v", r, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.push(t, 0, "svc-ms", 8)
	c.expectExact(t, 1, "svc-ms", 8)
	c.expectNoSecret(t, password)
}
