// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"os"
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

type smallResult struct {
	*bk.Load
	serverCPU, clientCPU time.Duration
	records, fsyncs      float64
}

// smallPush sends client w's push i: tenant w % tenants, pod w, the
// profile variant of its round (times advance as an SDK's do).
func smallPush(clients []pushv1connect.PusherServiceClient, variants [][]byte, conc, w, i int) error {
	ctx, cancel := context.WithTimeout(context.Background(), bk.RequestTimeout)
	defer cancel()
	_, err := clients[w%len(clients)].Push(ctx, connect.NewRequest(&pushv1.PushRequest{
		Series: []*pushv1.RawProfileSeries{{
			Labels: []*typesv1.LabelPair{
				{Name: "__name__", Value: "process_cpu"},
				{Name: "service_name", Value: "small-push"},
				{Name: "pod", Value: fmt.Sprintf("pod-%02d", w)},
			},
			Samples: []*pushv1.RawSample{{RawProfile: variants[(i/conc)%len(variants)], ID: newUUID()}},
		}}}))
	return err
}

// runSmall starts kiln on a fresh directory under cfg.dir with fsync on
// (the default) and runs the small-push load.
func runSmall(cfg config, variants [][]byte) (*smallResult, error) {
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
	h1 := bk.H1Transport(cfg.smallClients)
	defer h1.CloseIdleConnections()
	clients := make([]pushv1connect.PusherServiceClient, cfg.smallTenants)
	for t := range clients {
		clients[t] = pushv1connect.NewPusherServiceClient(
			bk.TenantClient(h1, "small-"+strconv.Itoa(t)), "http://"+k.HTTP)
	}
	conc := cfg.smallClients
	push := func(w, i int) error { return smallPush(clients, variants, conc, w, i) }
	// Warm-up: every client's connection open and every tenant's head made.
	warm := bk.RunLoadWorkers(conc, 0, conc*cfg.warmup, cfg.duration, nil, push)
	if warm.Failed > 0 {
		return nil, fmt.Errorf("warm-up: %d pushes failed, first: %w\n%s", warm.Failed, warm.FirstErr, k.Output())
	}
	before, err := k.Stats()
	if err != nil {
		return nil, err
	}
	m0, err := k.Metrics(walRecords, walFsyncs)
	if err != nil {
		return nil, err
	}
	cpu0 := bk.SelfCPU()
	r := &smallResult{Load: bk.RunLoadWorkers(conc, conc*cfg.warmup, cfg.smallN, cfg.smallDuration,
		func() bool { return !k.Exited() }, push)}
	r.clientCPU = bk.SelfCPU() - cpu0
	if k.Exited() {
		return r, fmt.Errorf("kiln exited during the run:\n%s", k.Output())
	}
	after, err := k.Stats()
	if err != nil {
		return r, err
	}
	m1, err := k.Metrics(walRecords, walFsyncs)
	if err != nil {
		return r, err
	}
	if _, ok := m1[walFsyncs]; !ok {
		return r, fmt.Errorf("/metrics has no %s (a kiln older than this bench?)", walFsyncs)
	}
	r.serverCPU = after.CPU - before.CPU
	r.records = m1[walRecords] - m0[walRecords]
	r.fsyncs = m1[walFsyncs] - m0[walFsyncs]
	return r, nil
}

const smallFormat = "%-10s %3s %7s %7s %4s %6s %8s %7s %7s %7s %7s %6s %6s %9s %6s\n"

// smallRow measures the row, prints it and writes its SUMMARY lines;
// false when it failed.
func smallRow(cfg config) bool {
	t0 := time.Now().Add(-time.Hour).UnixNano()
	variants, gz, err := bk.SmallProfiles(smallVariants, t0, 10*time.Second, 1)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pushload:", err)
		return false
	}
	fmt.Printf("\ndurable small pushes: %d clients over Connect (HTTP/1.1), %d tenants, a %.0f B "+
		"gzipped pprof (%d values drawn per variant), kiln on %s (%s) with fsync on; %d pushes or %v\n",
		cfg.smallClients, cfg.smallTenants, gz, smallVariants, cfg.dir, bk.FSType(cfg.dir), cfg.smallN,
		cfg.smallDuration)
	fmt.Printf("load average before: %s\n", bk.LoadAvg())
	fmt.Printf(smallFormat, "row", "C", "tenants", "pushes", "err", "wall s", "pushes/s", "p50 ms",
		"p90 ms", "p99 ms", "fsyncs", "srvCPU", "cores", "push/sync", "cliCPU")
	r, err := runSmall(cfg, variants)
	if err == nil && r.Failed > 0 {
		err = fmt.Errorf("%d pushes failed, first: %w", r.Failed, r.FirstErr)
	}
	if r != nil && r.Load != nil {
		secs := r.Wall.Seconds()
		perSync := "-"
		if r.fsyncs > 0 {
			perSync = bk.F1(r.records / r.fsyncs)
		}
		fmt.Printf(smallFormat, "small-1.2k", strconv.Itoa(cfg.smallClients), strconv.Itoa(cfg.smallTenants),
			strconv.FormatInt(r.OK, 10), strconv.FormatInt(r.Failed, 10), bk.F2(secs), bk.F1(r.PerSecond()),
			bk.F2(bk.Percentile(r.Lat, 0.50)), bk.F2(bk.Percentile(r.Lat, 0.90)),
			bk.F2(bk.Percentile(r.Lat, 0.99)), strconv.FormatFloat(r.fsyncs, 'f', 0, 64),
			bk.F2(r.serverCPU.Seconds()), bk.F2(r.serverCPU.Seconds()/secs), perSync,
			bk.F2(r.clientCPU.Seconds()))
		fmt.Printf("load average after: %s\n", bk.LoadAvg())
		if err == nil {
			suffix := "_c" + strconv.Itoa(cfg.smallClients)
			bk.Summary("small_pushes_per_s"+suffix, r.PerSecond(), "pushes/s")
			bk.Summary("small_push_p99"+suffix, bk.Percentile(r.Lat, 0.99), "ms")
			if r.fsyncs > 0 {
				bk.Summary("small_pushes_per_fsync"+suffix, r.records/r.fsyncs, "pushes")
			}
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "pushload: small pushes, C=%d: %v\n", cfg.smallClients, err)
		return false
	}
	return true
}
