// SPDX-License-Identifier: Apache-2.0

// Command pushload measures Kiln's push path end to end. For each profile,
// transport and client count it starts the real kiln binary on free
// 127.0.0.1 ports (rate limit off), pushes the profile through Pyroscope's
// own push client (pushv1connect) over Connect on HTTP/1.1 or over gRPC on
// h2c, or as the Go SDK uploads to the legacy POST /ingest, from C
// concurrent clients, and prints latency percentiles, throughput, and the
// server's CPU time and peak RSS. Then (-rows otlp) an OpenTelemetry
// exporter's OTLP gRPC exports of a real OTLP profile, and (-rows small)
// issue 15's durable small pushes: 64 clients of several tenants pushing a
// 1.2 KB pprof to kiln on disk with fsync on, with pushes per WAL fsync
// from kiln's /metrics. It prints figures; it is not a test.
//
//	go run . -kiln ../../../build/kiln -testdata ../../../../shared/testdata
package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/net/http2"

	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"

	bk "kiln.dev/tests/bench/internal/benchkit"
)

const tenant = "pushload"

var defaultProfiles = []string{
	"gdu/default.pgo",
	"grafana-pyroscope/jfr-kafka-cpu_lock0_alloc0.process_cpu.pb.gz",
	"grafana-pyroscope/cpu-js.pb.gz",
}

type config struct {
	bin         string
	root        string
	profiles    []string
	pushes      int
	duration    time.Duration
	warmup      int
	concurrency []int
	transports  []string
	rows        map[string]bool // "mix", "otlp", "small"
	dir         string          // where each run's -storage.path goes

	kilnArgs                           []string // more kiln flags, every row
	smallClients, smallTenants, smallN int
	smallDuration                      time.Duration
}

func parseFlags() (config, error) {
	var c config
	var profiles, conc, transports, rows, kilnArgs string
	flag.StringVar(&c.bin, "kiln", bk.EnvOr("KILN_BIN", "../../../build/kiln"), "kiln binary (default $KILN_BIN)")
	flag.StringVar(&c.root, "testdata", bk.EnvOr("KILN_TESTDATA", "../../../../shared/testdata"), "shared test data root (default $KILN_TESTDATA)")
	flag.StringVar(&profiles, "profiles", strings.Join(defaultProfiles, ","), "comma-separated profiles under -testdata")
	flag.IntVar(&c.pushes, "n", 2000, "timed pushes per run (a run also stops at -duration)")
	flag.DurationVar(&c.duration, "duration", 20*time.Second, "longest timed part of a run")
	flag.IntVar(&c.warmup, "warmup", 20, "untimed pushes before each run")
	flag.StringVar(&conc, "c", "1,4,16", "comma-separated concurrent client counts (issue 15 measures 1, 4, 16)")
	flag.StringVar(&transports, "transports", "connect,grpc,ingest", "connect (HTTP/1.1), grpc (h2c) and/or ingest (legacy POST /ingest, the Go SDK's multipart)")
	flag.StringVar(&rows, "rows", "mix,otlp,small", "mix (the profiles at -c clients), otlp (OTLP gRPC exports at -c clients) and/or small (durable small pushes)")
	flag.StringVar(&c.dir, "dir", os.TempDir(), "parent of each run's -storage.path (a disk: the small row measures fsync)")
	flag.IntVar(&c.smallClients, "small-c", 64, "concurrent clients of the small-push row (issue 15: 64)")
	flag.IntVar(&c.smallTenants, "small-tenants", 8, "tenants the small-push clients spread over")
	flag.IntVar(&c.smallN, "small-n", 300000, "timed pushes of the small-push row (it also stops at -small-duration)")
	flag.DurationVar(&c.smallDuration, "small-duration", 10*time.Second, "longest timed part of the small-push row")
	flag.StringVar(&kilnArgs, "kiln-args", "", "more kiln flags for every row, space-separated (e.g. -server.worker-threads=8)")
	flag.Parse()
	c.kilnArgs = strings.Fields(kilnArgs)
	c.rows = map[string]bool{}
	for _, r := range strings.Split(rows, ",") {
		if r != "mix" && r != "otlp" && r != "small" {
			return c, fmt.Errorf("-rows: unknown row %q", r)
		}
		c.rows[r] = true
	}
	if c.smallClients < 1 || c.smallClients > 1024 || c.smallTenants < 1 || c.smallN < 1 || c.smallDuration <= 0 {
		return c, fmt.Errorf("-small-c (1..1024), -small-tenants, -small-n and -small-duration must be positive")
	}
	c.profiles = strings.Split(profiles, ",")
	c.transports = strings.Split(transports, ",")
	for _, s := range strings.Split(conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 1024 {
			return c, fmt.Errorf("-c: bad client count %q", s)
		}
		c.concurrency = append(c.concurrency, n)
	}
	for _, t := range c.transports {
		if t != "connect" && t != "grpc" && t != "ingest" {
			return c, fmt.Errorf("-transports: unknown transport %q", t)
		}
	}
	if c.pushes < 1 || c.warmup < 0 || c.duration <= 0 {
		return c, fmt.Errorf("-n, -warmup and -duration must be positive")
	}
	if _, err := os.Stat(c.bin); err != nil {
		return c, fmt.Errorf("kiln binary: %w (set -kiln or KILN_BIN)", err)
	}
	return c, nil
}

// newPusher returns push number i of a profile over one transport, and a
// function that closes its idle connections: Pyroscope's push client over
// Connect or gRPC, or the Go SDK's legacy upload to /ingest.
func newPusher(transport string, k *bk.Kiln, conc int) (func(p *bk.Profile, i int) error, func()) {
	switch transport {
	case "grpc":
		h2 := &http2.Transport{
			AllowHTTP: true,
			DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, addr)
			},
		}
		c := pushv1connect.NewPusherServiceClient(bk.TenantClient(h2, tenant), "http://"+k.GRPC, connect.WithGRPC())
		return func(p *bk.Profile, i int) error { return bk.Push(c, p, i, newUUID()) }, h2.CloseIdleConnections
	case "ingest":
		h1 := bk.H1Transport(conc)
		hc := bk.TenantClient(h1, tenant)
		return func(p *bk.Profile, i int) error { return ingest(hc, k, p, i) }, h1.CloseIdleConnections
	}
	h1 := bk.H1Transport(conc)
	c := pushv1connect.NewPusherServiceClient(bk.TenantClient(h1, tenant), "http://"+k.HTTP)
	return func(p *bk.Profile, i int) error { return bk.Push(c, p, i, newUUID()) }, h1.CloseIdleConnections
}

// newUUID returns a random (version 4) UUID, the RawSample.ID an SDK sends.
func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// result is one run's figures.
type result struct {
	*bk.Load
	serverCPU time.Duration
	clientCPU time.Duration
	server    bk.Stats // at the end of the run
	// WAL records and fsyncs during the timed part (0 when /metrics did
	// not tell): pushes per fsync show the group commit.
	records, fsyncs float64
}

// runOne starts a fresh server, warms it up, and measures one
// (profile, transport, clients) combination: cfg.pushes pushes or
// cfg.duration, whichever first.
func runOne(cfg config, p *bk.Profile, transport string, conc int) (*result, error) {
	return measure(cfg, conc, nil, func(k *bk.Kiln) (func(i int) error, func()) {
		push, closeIdle := newPusher(transport, k, conc)
		return func(i int) error { return push(p, i) }, closeIdle
	})
}

// measure starts a fresh kiln (with args), makes its pusher with mk, warms
// it up and measures conc clients pushing: cfg.pushes pushes or
// cfg.duration, whichever first.
func measure(cfg config, conc int, args []string, mk func(k *bk.Kiln) (func(i int) error, func())) (*result, error) {
	// A private storage directory; the rate limit, time window and sample
	// count limit off.
	dir, err := os.MkdirTemp(cfg.dir, "kiln-pushload-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	all := append([]string{
		"-target=all",
		"-storage.path=" + dir,
		"-distributor.ingestion-rate-limit-mb=0",
		"-validation.reject-older-than=0",
		"-validation.max-profile-stacktrace-samples=0",
	}, args...)
	k, err := bk.StartKiln(cfg.bin, "kiln", append(all, cfg.kilnArgs...)...)
	if err != nil {
		return nil, err
	}
	defer k.Stop()
	push, closeIdle := mk(k)
	defer closeIdle()
	for i := 0; i < cfg.warmup; i++ {
		if err := push(i); err != nil {
			return nil, fmt.Errorf("warm-up push: %w\n%s", err, k.Output())
		}
	}
	before, err := k.Stats()
	if err != nil {
		return nil, err
	}
	m0, _ := k.Metrics(walRecords, walFsyncs)
	cpu0 := bk.SelfCPU()
	r := &result{Load: bk.RunLoad(conc, cfg.warmup, cfg.pushes, cfg.duration,
		func() bool { return !k.Exited() }, push)}
	r.clientCPU = bk.SelfCPU() - cpu0
	if k.Exited() {
		return r, fmt.Errorf("kiln exited during the run:\n%s", k.Output())
	}
	if r.server, err = k.Stats(); err != nil {
		return r, err
	}
	r.serverCPU = r.server.CPU - before.CPU
	if m1, err := k.Metrics(walRecords, walFsyncs); err == nil && m0 != nil {
		r.records = m1[walRecords] - m0[walRecords]
		r.fsyncs = m1[walFsyncs] - m0[walFsyncs]
	}
	return r, nil
}

const rowFormat = "%-62s %-7s %3s %6s %4s %6s %8s %7s %7s %7s %7s %7s %6s %6s %9s %8s %6s\n"

func printHeader() {
	fmt.Printf(rowFormat, "profile", "proto", "C", "pushes", "err", "wall s", "pushes/s", "MB/s",
		"wire", "p50 ms", "p90 ms", "p99 ms", "srvCPU", "cores", "MB/s/core", "peak MB", "cliCPU")
}

func printRow(p *bk.Profile, transport string, conc int, r *result) {
	secs := r.Wall.Seconds()
	bytes := float64(r.OK) * float64(p.RawLen) / bk.MB
	wire := float64(r.OK) * p.GzLen() / bk.MB
	perCore := "-"
	if r.serverCPU > 0 {
		perCore = bk.F1(bytes / r.serverCPU.Seconds())
	}
	fmt.Printf(rowFormat, p.Rel, transport, strconv.Itoa(conc), strconv.FormatInt(r.OK, 10),
		strconv.FormatInt(r.Failed, 10), bk.F2(secs), bk.F1(r.PerSecond()), bk.F1(bytes/secs),
		bk.F1(wire/secs), bk.F2(bk.Percentile(r.Lat, 0.50)), bk.F2(bk.Percentile(r.Lat, 0.90)),
		bk.F2(bk.Percentile(r.Lat, 0.99)), bk.F2(r.serverCPU.Seconds()), bk.F2(r.serverCPU.Seconds()/secs),
		perCore, bk.F1(float64(r.server.HWMKB)*1024/bk.MB), bk.F2(r.clientCPU.Seconds()))
}

func printPreamble(cfg config) {
	fmt.Printf("kiln pushload: %s, fresh server per row, %d warm-up pushes, then %d pushes or %v, "+
		"whichever first\n", cfg.bin, cfg.warmup, cfg.pushes, cfg.duration)
	fmt.Printf("MB = 10^6 bytes of uncompressed pprof (wire = gzipped bytes sent); latency is the " +
		"client's, per Push call; srvCPU = server user+system CPU s during the timed part; " +
		"cores = srvCPU / wall; MB/s/core = MB / srvCPU; peak MB = server VmHWM; cliCPU = this " +
		"program's CPU s (it shares the machine)\n")
	fmt.Printf("cores online: %d; load average: %s\n", runtime.NumCPU(), bk.LoadAvg())
}

func main() {
	cfg, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pushload:", err)
		os.Exit(2)
	}
	printPreamble(cfg)
	failed := false
	if cfg.rows["mix"] {
		failed = !mixRows(cfg)
	}
	if cfg.rows["otlp"] && !otlpRows(cfg) {
		failed = true
	}
	if cfg.rows["small"] && !smallRow(cfg) {
		failed = true
	}
	if failed {
		os.Exit(1)
	}
}

// mixRows runs every (profile, transport, clients) row and writes the
// mix's SUMMARY lines; false when some row failed.
func mixRows(cfg config) bool {
	rounds := min((cfg.warmup+cfg.pushes+bk.Pods-1)/bk.Pods, 64)
	t0 := time.Now().Add(-24 * time.Hour).UnixNano()
	printHeader()
	failed := false
	sum := newTotals()
	for _, rel := range cfg.profiles {
		p, err := bk.LoadProfile(cfg.root, rel, "pushload-", rounds, t0, int64(bk.PushInterval))
		if err != nil {
			fmt.Fprintln(os.Stderr, "pushload:", err)
			return false
		}
		for _, transport := range cfg.transports {
			for _, conc := range cfg.concurrency {
				r, err := runOne(cfg, p, transport, conc)
				if r != nil {
					printRow(p, transport, conc, r)
					sum.add(p, transport, conc, r)
				}
				if err == nil && r.Failed > 0 {
					err = fmt.Errorf("%d pushes failed, first: %w", r.Failed, r.FirstErr)
				}
				if err != nil {
					fmt.Fprintf(os.Stderr, "pushload: %s over %s, C=%d: %v\n", rel, transport, conc, err)
					failed = true
				}
			}
		}
	}
	sum.print()
	return !failed
}

// totals gathers the rows into issue 15's figures over the whole mix:
// server CPU per MB by transport, pushes/s by concurrency, p50 at 1 client.
type totals struct {
	cpu, mb      map[string]float64 // by transport
	pushes, wall map[int]float64    // by concurrency
	p50One       []float64          // each row's p50 at C=1, ms
}

func newTotals() *totals {
	return &totals{cpu: map[string]float64{}, mb: map[string]float64{},
		pushes: map[int]float64{}, wall: map[int]float64{}}
}

func (t *totals) add(p *bk.Profile, transport string, conc int, r *result) {
	t.cpu[transport] += r.serverCPU.Seconds()
	t.mb[transport] += float64(r.OK) * float64(p.RawLen) / bk.MB
	t.pushes[conc] += float64(r.OK)
	t.wall[conc] += r.Wall.Seconds()
	if conc == 1 {
		t.p50One = append(t.p50One, bk.Percentile(r.Lat, 0.50))
	}
}

func (t *totals) print() {
	for tr, mb := range t.mb {
		if mb > 0 {
			bk.Summary("server_cpu_s_per_mb_"+tr, t.cpu[tr]/mb, "s/MB")
		}
	}
	for conc, w := range t.wall {
		if w > 0 {
			bk.Summary("pushes_per_s_c"+strconv.Itoa(conc), t.pushes[conc]/w, "pushes/s")
		}
	}
	if n := len(t.p50One); n > 0 {
		sort.Float64s(t.p50One)
		bk.Summary("push_p50_c1", t.p50One[n/2], "ms")
	}
}
