// Package otlppeer is the OpenTelemetry profiles peer test of Kiln: it
// exports the OTLP captures of the shared test data to a real Kiln binary
// with the upstream OTLP Go client (go.opentelemetry.io/proto/otlp, profiles
// v1development v0.4.0, i.e. opentelemetry-proto v1.11.0, the v1.10+ layout
// where Sample.values is field 4) over gRPC with gzip, to the OTLP gRPC port
// and to the main gRPC port, and over OTLP/HTTP (protobuf, JSON, gzip), then
// reads the totals back through Pyroscope's Connect querier client
// (github.com/grafana/pyroscope/api) and checks them against totals
// computed here from the same files with Pyroscope's OTLP rules.
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
package otlppeer
