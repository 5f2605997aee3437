// Package ingesterrors is the ingest error-class peer test of Kiln (issue
// #10, items 6-9): it parses the "Ingest errors" table of docs/api.md and
// provokes every cell (error class x ingest path) against real kiln
// binaries with upstream clients (Pyroscope's push Connect and gRPC
// clients, the OTLP gRPC client, plain HTTP for /ingest and OTLP/HTTP),
// asserting the documented status, so the table and the code cannot drift.
// It also drives 16 parallel gzip bombs against a kiln with a small
// -server.max-inflight-bytes and checks its peak RSS (VmHWM), and checks
// that repeated rejections are logged sampled and counted in /metrics.
//
// Environment: KILN_BIN (the kiln binary; skipped without it) and
// KILN_TESTDATA (../shared/testdata).
//
// Run: go test -count=1 -timeout 300s -v ./...
package ingesterrors
