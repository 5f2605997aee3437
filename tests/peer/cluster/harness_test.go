package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"kiln.dev/tests/lib/kilntest"
)

const (
	heartbeat        = time.Second
	heartbeatTimeout = 5 * time.Second
	// ringWait bounds every wait for the rings of all processes to agree
	// (a join, an eviction, a reconnection): several heartbeat timeouts,
	// for a loaded 2-core machine and sanitizer builds.
	ringWait       = 40 * time.Second
	requestTimeout = 20 * time.Second
	readyTimeout   = 60 * time.Second
	pods           = 4 // series per service: pod-0..pod-3
	profileFile    = "grafana-pyroscope/cpu.pb.gz"
)

// cluster is the processes of one test and what they share.
type cluster struct {
	nats      *kilntest.NATS
	bucket    string       // the object store of every kiln process (on disk)
	s3        *kilntest.S3 // the S3 server holding the bucket, or nil: the filesystem
	tenant    string
	prof      *kilntest.Profile
	dist      []*kilntest.Server
	ing       []*kilntest.Server
	querier   *kilntest.Server
	compactor *kilntest.Server
	push      []*kilntest.Clients // one per distributor
	query     *kilntest.Clients
	// rpcTimeout and hbTimeout are -cluster.rpc-timeout and
	// -cluster.heartbeat-timeout of every process.
	rpcTimeout, hbTimeout time.Duration
	extra                 []string // more flags of every process (cluster TLS)
}

// commonArgs are the flags of every kiln process: the cluster, its timing,
// the shared store, and the limits that would reject the years-old test
// profiles or queries over them turned off.
func (c *cluster) commonArgs() []string {
	args := []string{
		"-cluster.nats-url=" + c.nats.URL(),
		"-cluster.heartbeat-period=" + heartbeat.String(),
		"-cluster.heartbeat-timeout=" + c.hbTimeout.String(),
		"-cluster.rpc-timeout=" + c.rpcTimeout.String(),
		"-distributor.replication-factor=3",
		"-storage.filesystem.dir=" + c.bucket,
		"-validation.reject-older-than=0",
		"-validation.reject-newer-than=0",
		"-distributor.ingestion-rate-limit-mb=0",
		"-querier.max-query-length=0",
		"-querier.max-query-lookback=0",
	}
	if c.s3 != nil {
		args = append(args, c.s3.Args("")...)
	}
	return append(args, c.extra...)
}

// startKiln starts one process of the cluster. Ingesters get their
// instance id written into their -storage.path first, so that messages
// name them ingester-1..3.
func (c *cluster) startKiln(t *testing.T, target, name string, extra ...string) *kilntest.Server {
	t.Helper()
	storage := t.TempDir()
	if target == "ingester" {
		if err := os.WriteFile(filepath.Join(storage, "instance_id"), []byte(name+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return kilntest.Start(t,
		kilntest.Target(target),
		kilntest.Name(name),
		kilntest.Storage(storage),
		kilntest.LogLevel("info"),
		kilntest.OTLPOff(),
		kilntest.IgnoreEnvArgs(),
		kilntest.ReadyTimeout(readyTimeout),
		kilntest.Args(c.commonArgs()...),
		kilntest.Args(extra...),
	)
}

// ingesterArgs cut a head into a block 3 s after it started and check
// every second, so that blocks are written all along the test.
var ingesterArgs = []string{
	"-ingester.max-block-duration=3s",
	"-ingester.flush-check-period=1s",
}

// compactorArgs run a round every 2 s; sources go 3 s after the block that
// replaces them appeared (queriers re-list the store at every query).
var compactorArgs = []string{
	"-compactor.compaction-interval=2s",
	"-compactor.deletion-delay=3s",
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	return startClusterTimed(t, 10*time.Second, heartbeatTimeout, ingesterArgs...)
}

// startClusterTimed starts the cluster with the given rpc and heartbeat
// timeouts, ingesters with ingArgs.
func startClusterTimed(t *testing.T, rpcTimeout, hbTimeout time.Duration, ingArgs ...string) *cluster {
	t.Helper()
	_, testdata := kilntest.RequireEnv(t)
	c := &cluster{
		nats:       kilntest.StartNATS(t),
		bucket:     t.TempDir(),
		tenant:     kilntest.NewTenant("cluster"),
		rpcTimeout: rpcTimeout,
		hbTimeout:  hbTimeout,
	}
	c.prof = kilntest.LoadProfile(t, testdata, profileFile)
	c.start(t, ingArgs...)
	return c
}

// start starts the processes of c: 3 ingesters with ingArgs, 2
// distributors, a querier and a compactor, and waits for the ring.
func (c *cluster) start(t *testing.T, ingArgs ...string) {
	t.Helper()
	t0 := time.Now()
	for i := 1; i <= 3; i++ {
		c.ing = append(c.ing, c.startKiln(t, "ingester", fmt.Sprintf("ingester-%d", i), ingArgs...))
	}
	for i := 1; i <= 2; i++ {
		d := c.startKiln(t, "distributor", fmt.Sprintf("distributor-%d", i))
		c.dist = append(c.dist, d)
		c.push = append(c.push, d.Clients(t, c.tenant))
	}
	c.querier = c.startKiln(t, "querier", "querier")
	c.query = c.querier.Clients(t, c.tenant)
	c.compactor = c.startKiln(t, "compactor", "compactor", compactorArgs...)
	c.waitRing(t, "start", []string{"ingester-1", "ingester-2", "ingester-3"})
	t.Logf("cluster up in %v: nats %s, bucket %s, tenant %s", time.Since(t0).Round(time.Millisecond),
		c.nats.URL(), c.bucket, c.tenant)
}

// all is every kiln process, running or not.
func (c *cluster) all() []*kilntest.Server {
	out := append([]*kilntest.Server(nil), c.dist...)
	out = append(out, c.ing...)
	return append(out, c.querier, c.compactor)
}

// running is every kiln process not stopped by the test.
func (c *cluster) running() []*kilntest.Server {
	return slices.DeleteFunc(c.all(), func(s *kilntest.Server) bool { return s.Exited() })
}

// requireAlive fails the test at once when a process died on its own.
func (c *cluster) requireAlive(t *testing.T) {
	t.Helper()
	for _, s := range c.all() {
		s.RequireAlive(t)
	}
}

// waitRing waits until the ring of every running process holds exactly
// the ingesters want, all ACTIVE with heartbeats younger than the timeout.
func (c *cluster) waitRing(t *testing.T, when string, want []string) {
	t.Helper()
	t0 := time.Now()
	deadline := t0.Add(ringWait)
	for {
		c.requireAlive(t)
		bad := ""
		for _, s := range c.running() {
			r, err := s.Ring()
			if err != nil {
				bad = fmt.Sprintf("%s: %v", s.Name, err)
				break
			}
			active := r.Active(heartbeatTimeout)
			sort.Strings(active)
			if len(r.Members) != len(want) || !slices.Equal(active, want) {
				bad = fmt.Sprintf("%s: ring %s", s.Name, r)
				break
			}
		}
		if bad == "" {
			t.Logf("%s: every process's ring is %v, ACTIVE, heartbeats fresh (%v)", when, want,
				time.Since(t0).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: rings not %v ACTIVE after %v: %s", when, want, ringWait, bad)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// natsConnected waits until kiln_cluster_nats_connected is want on every
// running process.
func (c *cluster) waitNATSConnected(t *testing.T, want string) {
	t.Helper()
	t0 := time.Now()
	deadline := t0.Add(ringWait)
	for {
		bad := ""
		for _, s := range c.running() {
			v, ok, err := s.Metric("kiln_cluster_nats_connected")
			if err != nil || !ok || v != want {
				bad = fmt.Sprintf("%s: kiln_cluster_nats_connected=%q (found %v, %v)", s.Name, v, ok, err)
				break
			}
		}
		if bad == "" {
			t.Logf("kiln_cluster_nats_connected is %s on every process (%v)", want, time.Since(t0).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", ringWait, bad)
		}
		c.requireAlive(t)
		time.Sleep(200 * time.Millisecond)
	}
}

// ---- pushes -----------------------------------------------------------------

// pushOne sends one push of the profile as service/pod-(i%pods) with the
// given profile id through distributor d.
func (c *cluster) pushOne(ctx context.Context, d int, service string, i int, id string) error {
	_, err := c.push[d].Push.Push(ctx, connect.NewRequest(&pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
		Labels: []*typesv1.LabelPair{
			{Name: "__name__", Value: c.prof.Name},
			{Name: "service_name", Value: service},
			{Name: "pod", Value: fmt.Sprintf("pod-%d", i%pods)},
			{Name: "__delta__", Value: "false"},
		},
		Samples: []*pushv1.RawSample{{RawProfile: c.prof.Raw, ID: id}},
	}}}))
	return err
}

// mustPush pushes n profiles as service, alternating the distributors.
func (c *cluster) mustPush(t *testing.T, service string, n int) {
	t.Helper()
	for i := range n {
		ctx, cancel := context.WithTimeout(t.Context(), requestTimeout)
		err := c.pushOne(ctx, i%2, service, i, kilntest.NewUUID())
		cancel()
		if err != nil {
			c.dist[i%2].CheckAfterError(t, err)
			t.Fatalf("push %d/%d as %s through %s: %v", i+1, n, service, c.dist[i%2].Name, err)
		}
	}
}

// load is one pusher per distributor pushing one service, paced, until
// stopped; the counts add up over successive loads of one service.
type load struct {
	c       *cluster
	service string
	stop    chan struct{}
	wg      sync.WaitGroup

	mu        sync.Mutex
	acked     int64
	attempted int64 // acked + failed + in flight
	failures  []string
}

// maxLoadPushes bounds each pusher of a load whatever the test does.
const maxLoadPushes = 4000

func (c *cluster) startLoad(service string, pace time.Duration) *load {
	l := &load{c: c, service: service}
	l.resume(pace)
	return l
}

func (l *load) resume(pace time.Duration) {
	l.stop = make(chan struct{})
	for d := range l.c.dist {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; i < maxLoadPushes; i++ {
				select {
				case <-l.stop:
					return
				case <-time.After(pace):
				}
				l.mu.Lock()
				l.attempted++
				n := int(l.attempted)
				l.mu.Unlock()
				ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
				err := l.c.pushOne(ctx, d, l.service, n, kilntest.NewUUID())
				cancel()
				l.mu.Lock()
				if err == nil {
					l.acked++
				} else if len(l.failures) < 20 {
					l.failures = append(l.failures, fmt.Sprintf("%s: %v", l.c.dist[d].Name, err))
				}
				l.mu.Unlock()
			}
		}()
	}
}

// counts returns the acknowledged and attempted pushes so far.
func (l *load) counts() (acked, attempted int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.acked, l.attempted
}

// waitAcked waits until n more pushes are acknowledged (bounded).
func (l *load) waitAcked(t *testing.T, n int64) {
	t.Helper()
	start, _ := l.counts()
	deadline := time.Now().Add(60 * time.Second)
	for {
		acked, _ := l.counts()
		if acked >= start+n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("load %s: %d of %d more pushes acknowledged in 60 s; failures %v", l.service, acked-start, n, l.failures)
		}
		l.c.requireAlive(t)
		time.Sleep(20 * time.Millisecond)
	}
}

// pause stops the pushers and waits for them; it fails the test when a
// push failed.
func (l *load) pause(t *testing.T) int64 {
	t.Helper()
	close(l.stop)
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * requestTimeout):
		t.Fatalf("load %s: pushers still running %v after the stop", l.service, 2*requestTimeout)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failures) > 0 {
		t.Errorf("load %s: %d of %d pushes failed: %v", l.service, l.attempted-l.acked, l.attempted, l.failures)
	}
	return l.acked
}

// ---- queries ------------------------------------------------------------------

// window is the hour on either side of the profile's time.
func (c *cluster) window() (start, end int64) {
	ms := c.prof.TimeNanos / int64(time.Millisecond)
	return ms - int64(time.Hour/time.Millisecond), ms + int64(time.Hour/time.Millisecond)
}

// totals returns service's SelectMergeStacktraces total per sample type.
func (c *cluster) totals(t *testing.T, service string) ([]int64, error) {
	t.Helper()
	start, end := c.window()
	return kilntest.ServiceTotals(t, c.query.Query, c.prof.TypeIDs, service, start, end, requestTimeout)
}

// pushesStored is service's totals as a number of pushes.
func (c *cluster) pushesStored(t *testing.T, service string) (int64, []int64, error) {
	t.Helper()
	totals, err := c.totals(t, service)
	if err != nil {
		c.querier.CheckAfterError(t, err)
		return 0, nil, err
	}
	n, err := c.prof.Pushes(totals)
	return n, totals, err
}

// expectExact checks that service's totals are exactly want pushes, by
// SelectMergeStacktraces and by SelectSeries (grouped by pod: one series
// per pod, points summing to the same total).
func (c *cluster) expectExact(t *testing.T, when, service string, want int64) {
	t.Helper()
	if c.checkExact(t, when, service, want) {
		t.Logf("%s: %s: %d pushes exactly (totals %v; SelectSeries agrees)", when, service, want, c.prof.Totals(want))
	}
}

// checkExact is expectExact without the log line when it holds.
func (c *cluster) checkExact(t *testing.T, when, service string, want int64) bool {
	t.Helper()
	n, totals, err := c.pushesStored(t, service)
	if err != nil {
		t.Errorf("%s: %s: %v", when, service, err)
		return false
	}
	if n != want {
		t.Errorf("%s: %s: totals %v = %d pushes, want %d (totals %v)", when, service, totals, n, want, c.prof.Totals(want))
		return false
	}
	start, end := c.window()
	for i, id := range c.prof.TypeIDs {
		ctx, cancel := context.WithTimeout(t.Context(), requestTimeout)
		resp, err := c.query.Query.SelectSeries(ctx, connect.NewRequest(&querierv1.SelectSeriesRequest{
			ProfileTypeID: id,
			LabelSelector: `{service_name="` + service + `"}`,
			Start:         start,
			End:           end,
			Step:          600,
			GroupBy:       []string{"pod"},
		}))
		cancel()
		if err != nil {
			c.querier.CheckAfterError(t, err)
			t.Errorf("%s: SelectSeries(%s, %s): %v", when, id, service, err)
			return false
		}
		var sum float64
		for _, s := range resp.Msg.Series {
			for _, p := range s.Points {
				sum += p.Value
			}
		}
		wantSeries := min(want, pods)
		if int64(sum+0.5) != totals[i] || int64(len(resp.Msg.Series)) != wantSeries {
			t.Errorf("%s: SelectSeries(%s, %s by pod): %d series summing to %.0f, want %d series summing to %d",
				when, id, service, len(resp.Msg.Series), sum, wantSeries, totals[i])
			return false
		}
	}
	return true
}

// expectBetween checks, while service is being pushed, that its total of
// every sample type amounts to between the pushes acknowledged before the
// query and those attempted after it (one query per type: pushes land in
// between).
func (c *cluster) expectBetween(t *testing.T, when string, l *load) {
	t.Helper()
	lo, _ := l.counts()
	totals, err := c.totals(t, l.service)
	_, hi := l.counts()
	if err != nil {
		c.querier.CheckAfterError(t, err)
		t.Errorf("%s: %s: %v", when, l.service, err)
		return
	}
	for i, per := range c.prof.PerPush {
		if per == 0 {
			continue
		}
		if totals[i]%per != 0 || totals[i]/per < lo || totals[i]/per > hi {
			t.Errorf("%s: %s: %s total %d, want a multiple of %d between %d and %d pushes "+
				"(acknowledged before the query..attempted after)", when, l.service, c.prof.TypeIDs[i],
				totals[i], per, lo, hi)
			return
		}
	}
	t.Logf("%s: %s: totals %v (acknowledged %d pushes before the query, %d attempted after)", when,
		l.service, totals, lo, hi)
}

// ---- blocks -----------------------------------------------------------------

// blockMeta is what the test reads of a block's meta.json (proto3 JSON).
type blockMeta struct {
	ULID  string `json:"ulid"`
	Stats struct {
		NumProfiles string `json:"numProfiles"`
	} `json:"stats"`
	Compaction struct {
		Level   int      `json:"level"`
		Sources []string `json:"sources"`
	} `json:"compaction"`
	Ingester string `json:"ingester"`
}

func (m *blockMeta) level() int { return max(m.Compaction.Level, 1) }

// blocks lists the tenant's blocks with a readable meta.json.
func (c *cluster) blocks(t *testing.T) []*blockMeta {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(c.bucket, c.tenant, "blocks", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var out []*blockMeta
	for _, d := range dirs {
		data, err := os.ReadFile(filepath.Join(d, "meta.json"))
		if err != nil {
			continue
		}
		m := &blockMeta{}
		if json.Unmarshal(data, m) == nil {
			out = append(out, m)
		}
	}
	return out
}

func describeBlocks(bs []*blockMeta) string {
	var parts []string
	for _, b := range bs {
		who := b.Ingester
		if who == "" {
			who = "compactor"
		}
		parts = append(parts, fmt.Sprintf("L%d/%s/%s profiles", b.level(), who, b.Stats.NumProfiles))
	}
	sort.Strings(parts)
	return "[" + strings.Join(parts, " ") + "]"
}
