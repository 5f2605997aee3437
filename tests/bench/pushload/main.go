// SPDX-License-Identifier: Apache-2.0

// Command pushload measures Kiln's push path end to end. For each profile,
// transport and client count it starts the real kiln binary on free
// 127.0.0.1 ports (rate limit off), pushes the profile through Pyroscope's
// own push client (pushv1connect) over Connect on HTTP/1.1 or over gRPC on
// h2c, from C concurrent clients, and prints latency percentiles,
// throughput, and the server's CPU time and peak RSS. It prints figures; it
// is not a test.
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
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/net/http2"

	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
)

const (
	pods           = 50               // distinct pod label values, as in bench_push
	pushInterval   = 15 * time.Second // an SDK's upload period (profile time step per round)
	requestTimeout = 30 * time.Second
	tenant         = "pushload"
	mb             = 1e6 // figures are in 10^6 bytes
)

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
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func parseFlags() (config, error) {
	var c config
	var profiles, conc, transports string
	flag.StringVar(&c.bin, "kiln", envOr("KILN_BIN", "../../../build/kiln"), "kiln binary (default $KILN_BIN)")
	flag.StringVar(&c.root, "testdata", envOr("KILN_TESTDATA", "../../../../shared/testdata"), "shared test data root (default $KILN_TESTDATA)")
	flag.StringVar(&profiles, "profiles", strings.Join(defaultProfiles, ","), "comma-separated profiles under -testdata")
	flag.IntVar(&c.pushes, "n", 2000, "timed pushes per run (a run also stops at -duration)")
	flag.DurationVar(&c.duration, "duration", 20*time.Second, "longest timed part of a run")
	flag.IntVar(&c.warmup, "warmup", 20, "untimed pushes before each run")
	flag.StringVar(&conc, "c", "1,8", "comma-separated concurrent client counts")
	flag.StringVar(&transports, "transports", "connect,grpc", "connect (HTTP/1.1) and/or grpc (h2c)")
	flag.Parse()
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
		if t != "connect" && t != "grpc" {
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

// tenantTransport adds X-Scope-OrgID, as Alloy does with its configured
// headers.
type tenantTransport struct {
	base http.RoundTripper
}

func (tt *tenantTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Header.Set("X-Scope-OrgID", tenant)
	return tt.base.RoundTrip(r)
}

// newClient returns Pyroscope's push client for one transport, and a
// function that closes its idle connections.
func newClient(transport string, s *server, conc int) (pushv1connect.PusherServiceClient, func()) {
	if transport == "grpc" {
		h2 := &http2.Transport{
			AllowHTTP: true,
			DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, addr)
			},
		}
		hc := &http.Client{Transport: &tenantTransport{base: h2}}
		return pushv1connect.NewPusherServiceClient(hc, "http://"+s.grpcAddr, connect.WithGRPC()), h2.CloseIdleConnections
	}
	h1 := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: conc,
		IdleConnTimeout:     30 * time.Second,
	}
	hc := &http.Client{Transport: &tenantTransport{base: h1}}
	return pushv1connect.NewPusherServiceClient(hc, "http://"+s.httpAddr), h1.CloseIdleConnections
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

// push sends push number i: pod i%pods, in round i/pods (its profile time).
func push(c pushv1connect.PusherServiceClient, p *profile, i int) error {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	req := connect.NewRequest(&pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
		Labels: []*typesv1.LabelPair{
			{Name: "__name__", Value: p.name},
			{Name: "service_name", Value: p.service},
			{Name: "pod", Value: fmt.Sprintf("pod-%02d", i%pods)},
		},
		Samples: []*pushv1.RawSample{{RawProfile: p.variants[(i/pods)%len(p.variants)], ID: newUUID()}},
	}}})
	_, err := c.Push(ctx, req)
	return err
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// result is one run's figures.
type result struct {
	ok, failed int64
	firstErr   error
	wall       time.Duration
	lat        []time.Duration // sorted
	serverCPU  time.Duration
	clientCPU  time.Duration
	server     procStats // at the end of the run
}

// load pushes from conc goroutines until cfg.pushes are done or
// cfg.duration has passed, numbering pushes from first.
func load(cfg config, c pushv1connect.PusherServiceClient, s *server, p *profile, conc, first int) *result {
	r := &result{}
	var next atomic.Int64
	next.Store(int64(first))
	limit := int64(first + cfg.pushes)
	deadline := time.Now().Add(cfg.duration)
	lats := make([][]time.Duration, conc)
	var errOnce sync.Once
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !s.exited() && time.Now().Before(deadline) {
				i := next.Add(1) - 1
				if i >= limit {
					return
				}
				t := time.Now()
				if err := push(c, p, int(i)); err != nil {
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
	for _, l := range lats {
		r.lat = append(r.lat, l...)
	}
	slices.Sort(r.lat)
	return r
}

// runOne starts a fresh server, warms it up, and measures one
// (profile, transport, clients) combination.
func runOne(cfg config, p *profile, transport string, conc int) (*result, error) {
	s, err := startServer(cfg.bin)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	c, closeIdle := newClient(transport, s, conc)
	defer closeIdle()
	for i := 0; i < cfg.warmup; i++ {
		if err := push(c, p, i); err != nil {
			return nil, fmt.Errorf("warm-up push over %s: %w\n%s", transport, err, s.log.String())
		}
	}
	before, err := s.stats()
	if err != nil {
		return nil, err
	}
	cpu0 := selfCPU()
	r := load(cfg, c, s, p, conc, cfg.warmup)
	r.clientCPU = selfCPU() - cpu0
	if s.exited() {
		return r, fmt.Errorf("kiln exited during the run:\n%s", s.log.String())
	}
	if r.server, err = s.stats(); err != nil {
		return r, err
	}
	r.serverCPU = r.server.cpu - before.cpu
	return r, nil
}

func percentile(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return float64(sorted[int(q*float64(len(sorted)-1)+0.5)]) / float64(time.Millisecond)
}

const rowFormat = "%-62s %-7s %3s %6s %4s %6s %8s %7s %7s %7s %7s %7s %6s %6s %9s %8s %6s\n"

func printHeader() {
	fmt.Printf(rowFormat, "profile", "proto", "C", "pushes", "err", "wall s", "pushes/s", "MB/s",
		"wire", "p50 ms", "p90 ms", "p99 ms", "srvCPU", "cores", "MB/s/core", "peak MB", "cliCPU")
}

func printRow(p *profile, transport string, conc int, r *result) {
	secs := r.wall.Seconds()
	bytes := float64(r.ok) * float64(p.rawLen) / mb
	wire := float64(r.ok) * p.gzLen() / mb
	perCore := "-"
	if r.serverCPU > 0 {
		perCore = fmt.Sprintf("%.1f", bytes/r.serverCPU.Seconds())
	}
	fmt.Printf(rowFormat, p.rel, transport, strconv.Itoa(conc), strconv.FormatInt(r.ok, 10),
		strconv.FormatInt(r.failed, 10), fmt.Sprintf("%.2f", secs),
		fmt.Sprintf("%.1f", float64(r.ok)/secs), fmt.Sprintf("%.1f", bytes/secs),
		fmt.Sprintf("%.1f", wire/secs), fmt.Sprintf("%.2f", percentile(r.lat, 0.50)),
		fmt.Sprintf("%.2f", percentile(r.lat, 0.90)), fmt.Sprintf("%.2f", percentile(r.lat, 0.99)),
		fmt.Sprintf("%.2f", r.serverCPU.Seconds()), fmt.Sprintf("%.2f", r.serverCPU.Seconds()/secs),
		perCore, fmt.Sprintf("%.1f", float64(r.server.hwmKB)*1024/mb),
		fmt.Sprintf("%.2f", r.clientCPU.Seconds()))
}

func printPreamble(cfg config) {
	avg, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("kiln pushload: %s, fresh server per row, %d warm-up pushes, then %d pushes or %v, "+
		"whichever first\n", cfg.bin, cfg.warmup, cfg.pushes, cfg.duration)
	fmt.Printf("MB = 10^6 bytes of uncompressed pprof (wire = gzipped bytes sent); latency is the " +
		"client's, per Push call; srvCPU = server user+system CPU s during the timed part; " +
		"cores = srvCPU / wall; MB/s/core = MB / srvCPU; peak MB = server VmHWM; cliCPU = this " +
		"program's CPU s (it shares the machine)\n")
	fmt.Printf("cores online: %d; load average: %s\n", runtime.NumCPU(), strings.TrimSpace(string(avg)))
}

func main() {
	cfg, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pushload:", err)
		os.Exit(2)
	}
	rounds := min((cfg.warmup+cfg.pushes+pods-1)/pods, 64)
	t0 := time.Now().Add(-24 * time.Hour).UnixNano()
	printPreamble(cfg)
	printHeader()
	failed := false
	for _, rel := range cfg.profiles {
		p, err := loadProfile(cfg.root, rel, rounds, t0, int64(pushInterval))
		if err != nil {
			fmt.Fprintln(os.Stderr, "pushload:", err)
			os.Exit(1)
		}
		for _, transport := range cfg.transports {
			for _, conc := range cfg.concurrency {
				r, err := runOne(cfg, p, transport, conc)
				if r != nil {
					printRow(p, transport, conc, r)
				}
				if err == nil && r.failed > 0 {
					err = fmt.Errorf("%d pushes failed, first: %w", r.failed, r.firstErr)
				}
				if err != nil {
					fmt.Fprintf(os.Stderr, "pushload: %s over %s, C=%d: %v\n", rel, transport, conc, err)
					failed = true
				}
			}
		}
	}
	if failed {
		os.Exit(1)
	}
}
