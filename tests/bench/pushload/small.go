// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"

	"connectrpc.com/connect"

	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	bk "kiln.dev/tests/bench/internal/benchkit"
)

// The durable small-push row (issue 15): many clients, each an SDK of its
// own pod in one of several tenants, pushing a small CPU profile; every
// push is acknowledged only once its WAL record is on disk, so the figure
// is how well the WAL's group commit gathers concurrent pushes of all
// connections and tenants into one fdatasync.
const smallVariants = 256

// WAL counters of kiln's /metrics that give pushes per fsync.
const (
	walRecords = "kiln_wal_records_total"
	walFsyncs  = "kiln_wal_fsyncs_total"
)

// smallResult is one client's run of the row.
type smallResult struct {
	pushes, failed       int64
	firstErr             error
	wall                 time.Duration
	p50, p90, p99        float64 // ms
	serverCPU, clientCPU time.Duration
	records, fsyncs      float64
}

// smallDriver sends the row's load at a started kiln: a warm-up (every
// connection open, every tenant's head made), then mark (the server's
// counters are read), then the timed part, of which it fills pushes,
// failed, firstErr, wall, the percentiles and clientCPU.
type smallDriver func(cfg config, k *bk.Kiln, variants [][]byte, r *smallResult, mark func() error) error

// smallPush sends client w's push i: tenant w % tenants, pod w, the
// profile variant of its round (times advance as an SDK's do).
func smallPush(clients []pushv1connect.PusherServiceClient, variants [][]byte, conc, w, i int) error {
	ctx, cancel := context.WithTimeout(context.Background(), bk.RequestTimeout)
	defer cancel()
	_, err := clients[w%len(clients)].Push(ctx, connect.NewRequest(&pushv1.PushRequest{
		Series: []*pushv1.RawProfileSeries{{
			Labels:  smallLabels(w),
			Samples: []*pushv1.RawSample{{RawProfile: variants[(i/conc)%len(variants)], ID: newUUID()}},
		}}}))
	return err
}

// smallLabels are the series labels of client w's pushes.
func smallLabels(w int) []*typesv1.LabelPair {
	return []*typesv1.LabelPair{
		{Name: "__name__", Value: "process_cpu"},
		{Name: "service_name", Value: "small-push"},
		{Name: "pod", Value: fmt.Sprintf("pod-%02d", w)},
	}
}

// smallTenant is client w's X-Scope-OrgID.
func smallTenant(cfg config, w int) string { return "small-" + strconv.Itoa(w%cfg.smallTenants) }

// connectDriver pushes with the Connect client of
// github.com/grafana/pyroscope/api (as Alloy and the SDKs do), one
// goroutine and one HTTP/1.1 connection per client, in this process.
func connectDriver(cfg config, k *bk.Kiln, variants [][]byte, r *smallResult, mark func() error) error {
	h1 := bk.H1Transport(cfg.smallClients)
	defer h1.CloseIdleConnections()
	clients := make([]pushv1connect.PusherServiceClient, cfg.smallTenants)
	for t := range clients {
		clients[t] = pushv1connect.NewPusherServiceClient(
			bk.TenantClient(h1, smallTenant(cfg, t)), "http://"+k.HTTP)
	}
	conc := cfg.smallClients
	push := func(w, i int) error { return smallPush(clients, variants, conc, w, i) }
	warm := bk.RunLoadWorkers(conc, 0, conc*cfg.warmup, cfg.duration, nil, push)
	if warm.Failed > 0 {
		return fmt.Errorf("warm-up: %d pushes failed, first: %w\n%s", warm.Failed, warm.FirstErr, k.Output())
	}
	if err := mark(); err != nil {
		return err
	}
	cpu0 := bk.SelfCPU()
	l := bk.RunLoadWorkers(conc, conc*cfg.warmup, cfg.smallN, cfg.smallDuration,
		func() bool { return !k.Exited() }, push)
	r.clientCPU = bk.SelfCPU() - cpu0
	r.pushes, r.failed, r.firstErr, r.wall = l.OK, l.Failed, l.FirstErr, l.Wall
	r.p50, r.p90, r.p99 = bk.Percentile(l.Lat, 0.50), bk.Percentile(l.Lat, 0.90), bk.Percentile(l.Lat, 0.99)
	return nil
}

// runSmall starts kiln on a fresh directory under cfg.dir with fsync on
// (the default) and runs the small-push load of drive.
func runSmall(cfg config, variants [][]byte, drive smallDriver) (*smallResult, error) {
	dir, err := os.MkdirTemp(cfg.dir, "kiln-smallpush-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	args := append([]string{"-target=all", "-storage.path=" + dir,
		"-distributor.ingestion-rate-limit-mb=0", "-validation.reject-older-than=0"}, cfg.kilnArgs...)
	k, err := bk.StartKiln(cfg.bin, "kiln", args...)
	if err != nil {
		return nil, err
	}
	defer k.Stop()
	r := &smallResult{}
	var before, after bk.Stats
	var m0, m1 map[string]float64
	err = drive(cfg, k, variants, r, func() error {
		var err error
		if before, err = k.Stats(); err == nil {
			m0, err = k.Metrics(walRecords, walFsyncs)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if k.Exited() {
		return r, fmt.Errorf("kiln exited during the run:\n%s", k.Output())
	}
	if after, err = k.Stats(); err != nil {
		return r, err
	}
	if m1, err = k.Metrics(walRecords, walFsyncs); err != nil {
		return r, err
	}
	if _, ok := m1[walFsyncs]; !ok {
		return r, fmt.Errorf("/metrics has no %s (a kiln older than this bench?)", walFsyncs)
	}
	r.serverCPU = after.CPU - before.CPU
	r.records = m1[walRecords] - m0[walRecords]
	r.fsyncs = m1[walFsyncs] - m0[walFsyncs]
	// Each acknowledged push is one WAL record (nothing was in flight at
	// mark: the warm-up had ended): fewer records would mean pushes
	// acknowledged without being stored.
	if r.records < float64(r.pushes) {
		return r, fmt.Errorf("%d pushes acknowledged but %.0f WAL records written", r.pushes, r.records)
	}
	return r, nil
}

const smallFormat = "%-10s %3s %7s %7s %4s %6s %8s %7s %7s %7s %7s %6s %6s %9s %6s %11s\n"

// smallRow measures the row with each client (the Go Connect client,
// then wrk when it is installed), prints them and writes their SUMMARY
// lines: small_* are wrk's (kiln's capacity), small_*_connect the Go
// client's; false when a run failed.
func smallRow(cfg config) bool {
	t0 := time.Now().Add(-time.Hour).UnixNano()
	variants, gz, err := bk.SmallProfiles(smallVariants, t0, 10*time.Second, 1)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pushload:", err)
		return false
	}
	fmt.Printf("\ndurable small pushes: %d clients, each its own HTTP/1.1 connection (Connect), %d tenants, "+
		"a %.0f B gzipped pprof (%d values drawn per variant), kiln on %s (%s) with fsync on; %d pushes or %v\n",
		cfg.smallClients, cfg.smallTenants, gz, smallVariants, cfg.dir, bk.FSType(cfg.dir), cfg.smallN,
		cfg.smallDuration)
	fmt.Printf("load average before: %s\n", bk.LoadAvg())
	fmt.Printf(smallFormat, "client", "C", "tenants", "pushes", "err", "wall s", "pushes/s", "p50 ms",
		"p90 ms", "p99 ms", "fsyncs", "srvCPU", "cores", "push/sync", "cliCPU", "srv µs/push")
	ok := smallRun(cfg, variants, "connect-go", "_connect", connectDriver)
	if _, err := exec.LookPath("wrk"); err != nil {
		fmt.Println("wrk: not installed (apt-get install wrk); its row is skipped")
	} else {
		ok = smallRun(cfg, variants, "wrk", "", wrkDriver) && ok
	}
	fmt.Printf("load average after: %s\n", bk.LoadAvg())
	return ok
}

// smallRun measures one client's run, prints its line and writes its
// SUMMARY lines (small_..._c64 and suffix).
func smallRun(cfg config, variants [][]byte, name, suffix string, drive smallDriver) bool {
	r, err := runSmall(cfg, variants, drive)
	if err == nil && r.failed > 0 {
		err = fmt.Errorf("%d pushes failed, first: %w", r.failed, r.firstErr)
	}
	if r != nil && r.wall > 0 {
		secs, rate := r.wall.Seconds(), float64(r.pushes)/r.wall.Seconds()
		perSync, perPush := "-", "-"
		if r.fsyncs > 0 {
			perSync = bk.F1(r.records / r.fsyncs)
		}
		if r.pushes > 0 {
			perPush = bk.F1(r.serverCPU.Seconds() * 1e6 / float64(r.pushes))
		}
		fmt.Printf(smallFormat, name, strconv.Itoa(cfg.smallClients), strconv.Itoa(cfg.smallTenants),
			strconv.FormatInt(r.pushes, 10), strconv.FormatInt(r.failed, 10), bk.F2(secs), bk.F1(rate),
			bk.F2(r.p50), bk.F2(r.p90), bk.F2(r.p99), strconv.FormatFloat(r.fsyncs, 'f', 0, 64),
			bk.F2(r.serverCPU.Seconds()), bk.F2(r.serverCPU.Seconds()/secs), perSync,
			bk.F2(r.clientCPU.Seconds()), perPush)
		if err == nil {
			c := "_c" + strconv.Itoa(cfg.smallClients) + suffix
			bk.Summary("small_pushes_per_s"+c, rate, "pushes/s")
			bk.Summary("small_push_p99"+c, r.p99, "ms")
			if r.fsyncs > 0 {
				bk.Summary("small_pushes_per_fsync"+c, r.records/r.fsyncs, "pushes")
			}
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "pushload: small pushes (%s), C=%d: %v\n", name, cfg.smallClients, err)
		return false
	}
	return true
}
