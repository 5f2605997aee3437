// Package peer is the Go peer test of Kiln: it drives a real Kiln binary
// with the upstream Grafana Pyroscope client code (the generated Connect
// clients in github.com/grafana/pyroscope/api, connectrpc.com/connect, and
// golang.org/x/net/http2 for gRPC over h2c) and checks the answers against
// figures computed independently from the test profiles with
// github.com/google/pprof/profile.
//
// The tests live in the _test.go files. They need two environment variables:
//
//	KILN_BIN       path of the kiln binary (the tests are skipped without it)
//	KILN_TESTDATA  the shared test data directory (../shared/testdata)
//
// KILN_EXTRA_ARGS, if set, is split on spaces and appended to the server's
// command line.
//
// Run: go test -count=1 -timeout 300s -v ./...
package peer
