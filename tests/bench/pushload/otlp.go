// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	collpb "go.opentelemetry.io/proto/otlp/collector/profiles/v1development"

	bk "kiln.dev/tests/bench/internal/benchkit"
)

// otlpFile is the OTLP export the otlp rows send: a real one, from the
// OpenTelemetry eBPF profiler.
const otlpFile = "grafana-pyroscope/otel-ebpf-profile.pb.bin"

// otlpVariants returns n encodings of the export in file, each with its
// profiles' times moved to t0 + k*step (k = 0..n-1), so that no two
// pushes of one series carry the same time.
func otlpVariants(file string, n int, t0, step int64) ([][]byte, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	req := &collpb.ExportProfilesServiceRequest{}
	if err := proto.Unmarshal(raw, req); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	out := make([][]byte, n)
	for k := range out {
		for _, rp := range req.GetResourceProfiles() {
			for _, sp := range rp.GetScopeProfiles() {
				for _, p := range sp.GetProfiles() {
					p.TimeUnixNano = uint64(t0 + int64(k)*step)
				}
			}
		}
		if out[k], err = proto.Marshal(req); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// otlpRows runs the OTLP gRPC export of otlpFile at each client count, as
// an OpenTelemetry exporter sends it (uncompressed, its own connection
// shared by the clients), and writes SUMMARY server_cpu_s_per_mb_otlp (MB
// of OTLP request bytes); false when some row failed.
func otlpRows(cfg config) bool {
	rounds := min(cfg.warmup+cfg.pushes, 4096)
	variants, err := otlpVariants(filepath.Join(cfg.root, otlpFile), rounds,
		time.Now().Add(-24*time.Hour).UnixNano(), int64(bk.PushInterval))
	if err != nil {
		fmt.Fprintln(os.Stderr, "pushload:", err)
		return false
	}
	p := &bk.Profile{Rel: otlpFile, RawLen: len(variants[0]), Variants: variants}
	fmt.Println()
	printHeader()
	var cpu, mb float64
	var perSync []string
	failed := false
	for _, conc := range cfg.concurrency {
		r, err := runOTLP(cfg, p, conc)
		if r != nil {
			printRow(p, "otlp", conc, r)
			cpu += r.serverCPU.Seconds()
			mb += float64(r.OK) * float64(p.RawLen) / bk.MB
			if r.fsyncs > 0 {
				perSync = append(perSync, fmt.Sprintf("C=%d %s", conc, bk.F1(r.records/r.fsyncs)))
			}
		}
		if err == nil && r.Failed > 0 {
			err = fmt.Errorf("%d exports failed, first: %w", r.Failed, r.FirstErr)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "pushload: OTLP gRPC, C=%d: %v\n", conc, err)
			failed = true
		}
	}
	if len(perSync) > 0 {
		fmt.Println("exports per WAL fsync:", strings.Join(perSync, ", "))
	}
	if mb > 0 {
		bk.Summary("server_cpu_s_per_mb_otlp", cpu/mb, "s/MB")
	}
	return !failed
}

// runOTLP measures conc clients exporting p's variants to a fresh kiln's
// OTLP gRPC port.
func runOTLP(cfg config, p *bk.Profile, conc int) (*result, error) {
	port, err := bk.FreePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	args := []string{"-server.otlp-grpc-listen-address=127.0.0.1", "-server.otlp-grpc-listen-port=" + strconv.Itoa(port)}
	return measure(cfg, conc, args, func(*bk.Kiln) (func(i int) error, func()) {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return func(int) error { return err }, func() {}
		}
		client := collpb.NewProfilesServiceClient(conn)
		return func(i int) error {
			req := &collpb.ExportProfilesServiceRequest{}
			if err := proto.Unmarshal(p.Variants[i%len(p.Variants)], req); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), bk.RequestTimeout)
			defer cancel()
			ctx = metadata.AppendToOutgoingContext(ctx, "x-scope-orgid", tenant)
			_, err := client.Export(ctx, req)
			return err
		}, func() { _ = conn.Close() }
	})
}
