// SPDX-License-Identifier: Apache-2.0

// Command cluster measures Kiln's scale-out: for each topology it starts a
// nats-server and, as separate processes on 127.0.0.1, one distributor, a
// querier and 1 or 3 ingesters, pushes a real profile through the
// distributor with Pyroscope's Connect push client from C concurrent
// clients, then queries the pushed data with SelectMergeStacktraces, and
// prints push throughput and latency, query latency, the CPU all kiln
// processes used, and the ratios of each topology to the first. It prints
// figures; it is not a test.
//
//	go run . -kiln ../../../build/kiln -testdata ../../../../shared/testdata
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
)

const (
	pods           = 50 // distinct pod label values, as in pushload
	pushInterval   = 15 * time.Second
	requestTimeout = 30 * time.Second
	tenant         = "cluster-bench"
	mb             = 1e6
)

// topology is one row: how many ingesters and the replication factor.
type topology struct {
	ingesters, rf int
}

func (t topology) String() string { return fmt.Sprintf("%d ingester(s), RF=%d", t.ingesters, t.rf) }

type config struct {
	bin, nats, root, profile string
	pushes, conc, queries    int
	duration                 time.Duration
	topologies               []topology
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func parseFlags() (config, error) {
	var c config
	var topos string
	flag.StringVar(&c.bin, "kiln", envOr("KILN_BIN", "../../../build/kiln"), "kiln binary (default $KILN_BIN)")
	flag.StringVar(&c.nats, "nats-server", envOr("KILN_NATS_SERVER", "nats-server"), "nats-server binary (default $KILN_NATS_SERVER, then $PATH)")
	flag.StringVar(&c.root, "testdata", envOr("KILN_TESTDATA", "../../../../shared/testdata"), "shared test data root (default $KILN_TESTDATA)")
	flag.StringVar(&c.profile, "profile", "gdu/default.pgo", "profile under -testdata to push")
	flag.IntVar(&c.pushes, "n", 3000, "pushes per topology (the push phase also stops at -duration)")
	flag.DurationVar(&c.duration, "duration", 20*time.Second, "longest push phase")
	flag.IntVar(&c.conc, "c", 8, "concurrent push clients")
	flag.IntVar(&c.queries, "q", 40, "SelectMergeStacktraces queries per topology, one at a time")
	flag.StringVar(&topos, "topologies", "1x1,3x1,3x3", "comma-separated INGESTERSxRF; ratios are to the first")
	flag.Parse()
	for _, s := range strings.Split(topos, ",") {
		a, b, ok := strings.Cut(strings.TrimSpace(s), "x")
		n, err1 := strconv.Atoi(a)
		rf, err2 := strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil || n < 1 || rf < 1 || rf > n || n > 16 {
			return c, fmt.Errorf("-topologies: bad %q (want INGESTERSxRF, RF <= INGESTERS)", s)
		}
		c.topologies = append(c.topologies, topology{n, rf})
	}
	if c.pushes < 1 || c.conc < 1 || c.queries < 1 || c.duration <= 0 {
		return c, fmt.Errorf("-n, -c, -q and -duration must be positive")
	}
	if _, err := os.Stat(c.bin); err != nil {
		return c, fmt.Errorf("kiln binary: %w (set -kiln or KILN_BIN)", err)
	}
	if !strings.Contains(c.nats, "/") {
		p, err := lookNATS(c.nats)
		if err != nil {
			return c, err
		}
		c.nats = p
	}
	return c, nil
}

// lookNATS finds nats-server on $PATH, then in /usr/sbin and /usr/local/sbin.
func lookNATS(name string) (string, error) {
	dirs := append(strings.Split(os.Getenv("PATH"), ":"), "/usr/sbin", "/usr/local/sbin")
	for _, d := range dirs {
		p := d + "/" + name
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found (set -nats-server or KILN_NATS_SERVER)", name)
}

// cluster is the processes of one topology.
type cluster struct {
	dir     string
	nats    *proc
	ing     []*kiln
	dist    *kiln
	querier *kiln
}

func (c *cluster) kilns() []*kiln {
	return append([]*kiln{c.dist, c.querier}, c.ing...)
}

func (c *cluster) stop() {
	for _, k := range c.kilns() {
		if k != nil {
			k.stop()
		}
	}
	if c.nats != nil {
		c.nats.stop()
	}
	_ = os.RemoveAll(c.dir)
}

func (c *cluster) cpu() time.Duration {
	var d time.Duration
	for _, k := range c.kilns() {
		d += k.cpu()
	}
	return d
}

func startCluster(cfg config, topo topology) (*cluster, error) {
	dir, err := os.MkdirTemp("", "kiln-cluster-bench-")
	if err != nil {
		return nil, err
	}
	c := &cluster{dir: dir}
	natsPort, err := freePort()
	if err != nil {
		return c, err
	}
	natsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(natsPort))
	if c.nats, err = startProc("nats-server", cfg.nats, "-js", "-a", "127.0.0.1", "-p", strconv.Itoa(natsPort),
		"-sd", dir+"/nats"); err != nil {
		return c, err
	}
	if err := waitAccept(c.nats, natsAddr); err != nil {
		return c, err
	}
	common := []string{
		"-cluster.nats-url=nats://" + natsAddr,
		"-cluster.heartbeat-period=1s",
		"-distributor.replication-factor=" + strconv.Itoa(topo.rf),
		"-storage.filesystem.dir=" + dir + "/bucket",
		"-distributor.ingestion-rate-limit-mb=0",
		"-validation.reject-older-than=0",
		"-validation.max-profile-stacktrace-samples=0",
		"-querier.max-query-length=0",
		"-querier.max-query-lookback=0",
	}
	for i := 1; i <= topo.ingesters; i++ {
		k, err := startKiln(cfg.bin, fmt.Sprintf("ingester-%d", i), "ingester",
			append(common, fmt.Sprintf("-storage.path=%s/ingester-%d", dir, i))...)
		if err != nil {
			return c, err
		}
		c.ing = append(c.ing, k)
	}
	if c.dist, err = startKiln(cfg.bin, "distributor", "distributor", append(common, "-storage.path="+dir+"/distributor")...); err != nil {
		return c, err
	}
	if c.querier, err = startKiln(cfg.bin, "querier", "querier", append(common, "-storage.path="+dir+"/querier")...); err != nil {
		return c, err
	}
	deadline := time.Now().Add(readyTimeout)
	for c.dist.activeIngesters() != topo.ingesters || c.querier.activeIngesters() != topo.ingesters {
		if time.Now().After(deadline) {
			return c, fmt.Errorf("%v: the ring does not show %d ACTIVE ingesters after %v", topo, topo.ingesters, readyTimeout)
		}
		time.Sleep(poll)
	}
	return c, nil
}

type tenantTransport struct{ base http.RoundTripper }

func (tt *tenantTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Header.Set("X-Scope-OrgID", tenant)
	return tt.base.RoundTrip(r)
}

func httpClient(conns int) (*http.Client, func()) {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     30 * time.Second,
	}
	return &http.Client{Transport: &tenantTransport{base: tr}}, tr.CloseIdleConnections
}

func push(c pushv1connect.PusherServiceClient, p *profile, i int) error {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	_, err := c.Push(ctx, connect.NewRequest(&pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
		Labels: []*typesv1.LabelPair{
			{Name: "__name__", Value: p.name},
			{Name: "service_name", Value: p.service},
			{Name: "pod", Value: fmt.Sprintf("pod-%02d", i%pods)},
		},
		Samples: []*pushv1.RawSample{{RawProfile: p.variants[(i/pods)%len(p.variants)]}},
	}}}))
	return err
}

// result is one topology's figures.
type result struct {
	topo           topology
	warm           int64 // warm-up pushes acknowledged (stored, not timed)
	ok, failed     int64
	firstErr       error
	wall           time.Duration
	pushLat        []time.Duration // sorted
	queryLat       []time.Duration // sorted
	total          int64           // flame graph total of the pushed data
	pushCPU        time.Duration   // all kiln processes, during the pushes
	queryCPU       time.Duration   // during the queries
}

func pushPhase(cfg config, c *cluster, p *profile, r *result) {
	hc, closeIdle := httpClient(cfg.conc)
	defer closeIdle()
	pc := pushv1connect.NewPusherServiceClient(hc, "http://"+c.dist.http)
	for i := 0; i < 2*cfg.conc; i++ { // warm-up: connections, channels to the ingesters
		if push(pc, p, i) == nil {
			r.warm++
		}
	}
	var next atomic.Int64
	lats := make([][]time.Duration, cfg.conc)
	var errOnce sync.Once
	var wg sync.WaitGroup
	deadline := time.Now().Add(cfg.duration)
	cpu0 := c.cpu()
	t0 := time.Now()
	for w := 0; w < cfg.conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				i := next.Add(1) - 1 + int64(2*cfg.conc)
				if i >= int64(2*cfg.conc+cfg.pushes) {
					return
				}
				t := time.Now()
				if err := push(pc, p, int(i)); err != nil {
					atomic.AddInt64(&r.failed, 1)
					errOnce.Do(func() { r.firstErr = err })
					continue
				}
				lats[w] = append(lats[w], time.Since(t))
				atomic.AddInt64(&r.ok, 1)
			}
		}()
	}
	wg.Wait()
	r.wall = time.Since(t0)
	r.pushCPU = c.cpu() - cpu0
	for _, l := range lats {
		r.pushLat = append(r.pushLat, l...)
	}
	slices.Sort(r.pushLat)
}

func queryPhase(cfg config, c *cluster, p *profile, r *result, start, end int64) error {
	hc, closeIdle := httpClient(1)
	defer closeIdle()
	qc := querierv1connect.NewQuerierServiceClient(hc, "http://"+c.querier.http)
	maxNodes := int64(1 << 14)
	typeID := "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
	if p.name == "wall" {
		typeID = "wall:wall:nanoseconds:wall:nanoseconds"
	}
	cpu0 := c.cpu()
	for i := 0; i < cfg.queries; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		t := time.Now()
		resp, err := qc.SelectMergeStacktraces(ctx, connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
			ProfileTypeID: typeID,
			LabelSelector: `{service_name="` + p.service + `"}`,
			Start:         start,
			End:           end,
			MaxNodes:      &maxNodes,
		}))
		cancel()
		if err != nil {
			return fmt.Errorf("SelectMergeStacktraces: %w", err)
		}
		r.queryLat = append(r.queryLat, time.Since(t))
		total := resp.Msg.GetFlamegraph().GetTotal()
		if i > 0 && total != r.total {
			return fmt.Errorf("SelectMergeStacktraces: total %d, then %d", r.total, total)
		}
		r.total = total
	}
	r.queryCPU = c.cpu() - cpu0
	slices.Sort(r.queryLat)
	return nil
}

func runTopology(cfg config, topo topology, p *profile, start, end int64) (*result, error) {
	c, err := startCluster(cfg, topo)
	defer c.stop()
	if err != nil {
		return nil, err
	}
	r := &result{topo: topo}
	pushPhase(cfg, c, p, r)
	for _, k := range c.kilns() {
		if k.exited() {
			return r, fmt.Errorf("%s exited during the pushes:\n%s", k.name, k.output())
		}
	}
	return r, queryPhase(cfg, c, p, r, start, end)
}

func pct(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return float64(sorted[int(q*float64(len(sorted)-1)+0.5)]) / float64(time.Millisecond)
}

const rowFormat = "%-22s %6s %4s %7s %9s %7s %8s %8s %8s %8s %9s %8s %12s\n"

func printRow(p *profile, r *result) {
	secs := r.wall.Seconds()
	perPush := "-"
	if r.ok > 0 {
		perPush = fmt.Sprintf("%.6g", float64(r.total)/float64(r.ok+r.warm))
	}
	fmt.Printf(rowFormat, r.topo.String(), strconv.FormatInt(r.ok, 10), strconv.FormatInt(r.failed, 10),
		fmt.Sprintf("%.2f", secs), fmt.Sprintf("%.1f", float64(r.ok)/secs),
		fmt.Sprintf("%.2f", float64(r.ok)*float64(p.rawLen)/mb/secs),
		fmt.Sprintf("%.2f", pct(r.pushLat, 0.5)), fmt.Sprintf("%.2f", pct(r.pushLat, 0.99)),
		fmt.Sprintf("%.2f", pct(r.queryLat, 0.5)), fmt.Sprintf("%.2f", pct(r.queryLat, 0.99)),
		fmt.Sprintf("%.2f", r.pushCPU.Seconds()/secs), fmt.Sprintf("%.2f", r.queryCPU.Seconds()), perPush)
}

func main() {
	cfg, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster bench:", err)
		os.Exit(2)
	}
	rounds := min((2*cfg.conc+cfg.pushes+pods-1)/pods, 64)
	t0 := time.Now().Add(-24 * time.Hour)
	p, err := loadProfile(cfg.root, cfg.profile, rounds, t0.UnixNano(), int64(pushInterval))
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster bench:", err)
		os.Exit(1)
	}
	start := t0.Add(-time.Hour).UnixMilli()
	end := t0.Add(time.Duration(rounds)*pushInterval + time.Hour).UnixMilli()
	avg, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("kiln cluster bench: %s; %s (%d B of pprof per push, %d B gzipped); nats-server %s\n",
		cfg.bin, p.rel, p.rawLen, int(p.gzLen()), cfg.nats)
	fmt.Printf("per topology: fresh nats-server, 1 distributor, 1 querier, N ingesters (separate processes, "+
		"127.0.0.1); %d pushes or %v from %d Connect clients (%d warm-up pushes), then %d "+
		"SelectMergeStacktraces over all of it, one at a time\n", cfg.pushes, cfg.duration, cfg.conc, 2*cfg.conc, cfg.queries)
	fmt.Printf("MB = 10^6 bytes of uncompressed pprof; latencies are the client's; cores = CPU s of all kiln "+
		"processes / wall s while pushing; qCPU = their CPU s over all queries; total/push = query total / "+
		"acknowledged pushes (the same in every row when every push counts once)\n")
	fmt.Printf("cores online: %d (all processes and the clients share them: figures are what they are); "+
		"load average: %s\n", runtime.NumCPU(), strings.TrimSpace(string(avg)))
	fmt.Printf(rowFormat, "topology", "pushes", "err", "wall s", "pushes/s", "MB/s", "p50 ms", "p99 ms",
		"q p50 ms", "q p99 ms", "cores", "qCPU s", "total/push")
	var results []*result
	failed := false
	for _, topo := range cfg.topologies {
		r, err := runTopology(cfg, topo, p, start, end)
		if r != nil {
			printRow(p, r)
			results = append(results, r)
		}
		if err == nil && r.failed > 0 {
			err = fmt.Errorf("%d pushes failed, first: %w", r.failed, r.firstErr)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "cluster bench: %v: %v\n", topo, err)
			failed = true
		}
	}
	if len(results) > 1 {
		base := results[0]
		for _, r := range results[1:] {
			fmt.Printf("%v vs %v: push throughput x%.2f, push p50 x%.2f, p99 x%.2f, query p50 x%.2f, p99 x%.2f\n",
				r.topo, base.topo,
				(float64(r.ok)/r.wall.Seconds())/(float64(base.ok)/base.wall.Seconds()),
				pct(r.pushLat, 0.5)/pct(base.pushLat, 0.5), pct(r.pushLat, 0.99)/pct(base.pushLat, 0.99),
				pct(r.queryLat, 0.5)/pct(base.queryLat, 0.5), pct(r.queryLat, 0.99)/pct(base.queryLat, 0.99))
		}
	}
	if failed {
		os.Exit(1)
	}
}
