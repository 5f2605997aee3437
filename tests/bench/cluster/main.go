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
	"time"

	"connectrpc.com/connect"

	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"

	bk "kiln.dev/tests/bench/internal/benchkit"
)

const tenant = "cluster-bench"

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

func parseFlags() (config, error) {
	var c config
	var topos string
	flag.StringVar(&c.bin, "kiln", bk.EnvOr("KILN_BIN", "../../../build/kiln"), "kiln binary (default $KILN_BIN)")
	flag.StringVar(&c.nats, "nats-server", bk.EnvOr("KILN_NATS_SERVER", "nats-server"), "nats-server binary (default $KILN_NATS_SERVER, then $PATH)")
	flag.StringVar(&c.root, "testdata", bk.EnvOr("KILN_TESTDATA", "../../../../shared/testdata"), "shared test data root (default $KILN_TESTDATA)")
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
	nats    *bk.Proc
	ing     []*bk.Kiln
	dist    *bk.Kiln
	querier *bk.Kiln
}

func (c *cluster) kilns() []*bk.Kiln {
	return append([]*bk.Kiln{c.dist, c.querier}, c.ing...)
}

func (c *cluster) stop() {
	for _, k := range c.kilns() {
		if k != nil {
			k.Stop()
		}
	}
	if c.nats != nil {
		c.nats.Stop()
	}
	_ = os.RemoveAll(c.dir)
}

func (c *cluster) cpu() time.Duration {
	var d time.Duration
	for _, k := range c.kilns() {
		cpu, _ := k.CPU()
		d += cpu
	}
	return d
}

func startCluster(cfg config, topo topology) (*cluster, error) {
	dir, err := os.MkdirTemp("", "kiln-cluster-bench-")
	if err != nil {
		return nil, err
	}
	c := &cluster{dir: dir}
	natsPort, err := bk.FreePort()
	if err != nil {
		return c, err
	}
	natsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(natsPort))
	if c.nats, err = bk.StartProc("nats-server", cfg.nats, "-js", "-a", "127.0.0.1", "-p", strconv.Itoa(natsPort),
		"-sd", dir+"/nats"); err != nil {
		return c, err
	}
	if err := bk.WaitAccept(c.nats, natsAddr); err != nil {
		return c, err
	}
	common := []string{
		"-server.otlp-grpc-listen-port=-1",
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
	start := func(name, target string) (*bk.Kiln, error) {
		args := append([]string{"-target=" + target, "-storage.path=" + dir + "/" + name}, common...)
		return bk.StartKiln(cfg.bin, name, args...)
	}
	for i := 1; i <= topo.ingesters; i++ {
		k, err := start(fmt.Sprintf("ingester-%d", i), "ingester")
		if err != nil {
			return c, err
		}
		c.ing = append(c.ing, k)
	}
	if c.dist, err = start("distributor", "distributor"); err != nil {
		return c, err
	}
	if c.querier, err = start("querier", "querier"); err != nil {
		return c, err
	}
	deadline := time.Now().Add(bk.ReadyTimeout)
	for c.dist.ActiveIngesters() != topo.ingesters || c.querier.ActiveIngesters() != topo.ingesters {
		if time.Now().After(deadline) {
			return c, fmt.Errorf("%v: the ring does not show %d ACTIVE ingesters after %v", topo, topo.ingesters, bk.ReadyTimeout)
		}
		time.Sleep(bk.Poll)
	}
	return c, nil
}

// httpClient is an HTTP/1.1 client for the tenant keeping up to conns idle
// connections, and a function that closes them.
func httpClient(conns int) (*http.Client, func()) {
	tr := bk.H1Transport(conns)
	return bk.TenantClient(tr, tenant), tr.CloseIdleConnections
}

// result is one topology's figures.
type result struct {
	topo     topology
	warm     int64           // warm-up pushes acknowledged (stored, not timed)
	*bk.Load                 // the timed pushes
	queryLat []time.Duration // sorted
	total    int64           // flame graph total of the pushed data
	pushCPU  time.Duration   // all kiln processes, during the pushes
	queryCPU time.Duration   // during the queries
}

func pushPhase(cfg config, c *cluster, p *bk.Profile, r *result) {
	hc, closeIdle := httpClient(cfg.conc)
	defer closeIdle()
	pc := pushv1connect.NewPusherServiceClient(hc, "http://"+c.dist.HTTP)
	warm := 2 * cfg.conc
	for i := 0; i < warm; i++ { // warm-up: connections, channels to the ingesters
		if bk.Push(pc, p, i, "") == nil {
			r.warm++
		}
	}
	cpu0 := c.cpu()
	r.Load = bk.RunLoad(cfg.conc, warm, cfg.pushes, cfg.duration, nil,
		func(i int) error { return bk.Push(pc, p, i, "") })
	r.pushCPU = c.cpu() - cpu0
}

func queryPhase(cfg config, c *cluster, p *bk.Profile, r *result, start, end int64) error {
	hc, closeIdle := httpClient(1)
	defer closeIdle()
	qc := querierv1connect.NewQuerierServiceClient(hc, "http://"+c.querier.HTTP)
	maxNodes := int64(1 << 14)
	typeID := "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
	if p.Name == "wall" {
		typeID = "wall:wall:nanoseconds:wall:nanoseconds"
	}
	cpu0 := c.cpu()
	for i := 0; i < cfg.queries; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), bk.RequestTimeout)
		t := time.Now()
		resp, err := qc.SelectMergeStacktraces(ctx, connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
			ProfileTypeID: typeID,
			LabelSelector: `{service_name="` + p.Service + `"}`,
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

func runTopology(cfg config, topo topology, p *bk.Profile, start, end int64) (*result, error) {
	c, err := startCluster(cfg, topo)
	defer c.stop()
	if err != nil {
		return nil, err
	}
	r := &result{topo: topo}
	pushPhase(cfg, c, p, r)
	for _, k := range c.kilns() {
		if k.Exited() {
			return r, fmt.Errorf("%s exited during the pushes:\n%s", k.Name, k.Output())
		}
	}
	return r, queryPhase(cfg, c, p, r, start, end)
}

const rowFormat = "%-22s %6s %4s %7s %9s %7s %8s %8s %8s %8s %9s %8s %12s\n"

func printRow(p *bk.Profile, r *result) {
	secs := r.Wall.Seconds()
	perPush := "-"
	if r.OK > 0 {
		perPush = fmt.Sprintf("%.6g", float64(r.total)/float64(r.OK+r.warm))
	}
	fmt.Printf(rowFormat, r.topo.String(), strconv.FormatInt(r.OK, 10), strconv.FormatInt(r.Failed, 10),
		bk.F2(secs), bk.F1(r.PerSecond()), bk.F2(float64(r.OK)*float64(p.RawLen)/bk.MB/secs),
		bk.F2(bk.Percentile(r.Lat, 0.5)), bk.F2(bk.Percentile(r.Lat, 0.99)),
		bk.F2(bk.Percentile(r.queryLat, 0.5)), bk.F2(bk.Percentile(r.queryLat, 0.99)),
		bk.F2(r.pushCPU.Seconds()/secs), bk.F2(r.queryCPU.Seconds()), perPush)
}

// printRatios compares each result to the first.
func printRatios(results []*result) {
	base := results[0]
	ratio := func(r *result, sorted func(*result) []time.Duration, q float64) float64 {
		return bk.Percentile(sorted(r), q) / bk.Percentile(sorted(base), q)
	}
	push := func(r *result) []time.Duration { return r.Lat }
	query := func(r *result) []time.Duration { return r.queryLat }
	for _, r := range results[1:] {
		fmt.Printf("%v vs %v: push throughput x%.2f, push p50 x%.2f, p99 x%.2f, query p50 x%.2f, p99 x%.2f\n",
			r.topo, base.topo, r.PerSecond()/base.PerSecond(),
			ratio(r, push, 0.5), ratio(r, push, 0.99), ratio(r, query, 0.5), ratio(r, query, 0.99))
	}
}

func main() {
	cfg, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster bench:", err)
		os.Exit(2)
	}
	rounds := min((2*cfg.conc+cfg.pushes+bk.Pods-1)/bk.Pods, 64)
	t0 := time.Now().Add(-24 * time.Hour)
	p, err := bk.LoadProfile(cfg.root, cfg.profile, "cluster-bench-", rounds, t0.UnixNano(), int64(bk.PushInterval))
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster bench:", err)
		os.Exit(1)
	}
	start := t0.Add(-time.Hour).UnixMilli()
	end := t0.Add(time.Duration(rounds)*bk.PushInterval + time.Hour).UnixMilli()
	fmt.Printf("kiln cluster bench: %s; %s (%d B of pprof per push, %d B gzipped); nats-server %s\n",
		cfg.bin, p.Rel, p.RawLen, int(p.GzLen()), cfg.nats)
	fmt.Printf("per topology: fresh nats-server, 1 distributor, 1 querier, N ingesters (separate processes, "+
		"127.0.0.1); %d pushes or %v from %d Connect clients (%d warm-up pushes), then %d "+
		"SelectMergeStacktraces over all of it, one at a time\n", cfg.pushes, cfg.duration, cfg.conc, 2*cfg.conc, cfg.queries)
	fmt.Printf("MB = 10^6 bytes of uncompressed pprof; latencies are the client's; cores = CPU s of all kiln " +
		"processes / wall s while pushing; qCPU = their CPU s over all queries; total/push = query total / " +
		"acknowledged pushes (the same in every row when every push counts once)\n")
	fmt.Printf("cores online: %d (all processes and the clients share them: figures are what they are); "+
		"load average: %s\n", runtime.NumCPU(), bk.LoadAvg())
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
		if err == nil && r.Failed > 0 {
			err = fmt.Errorf("%d pushes failed, first: %w", r.Failed, r.FirstErr)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "cluster bench: %v: %v\n", topo, err)
			failed = true
		}
	}
	if len(results) > 1 {
		printRatios(results)
	}
	if failed {
		os.Exit(1)
	}
}
