// Package authpeer is the authentication peer test of Kiln (issue 13): a
// real kiln binary started with -auth.tokens-file and
// -auth.multitenancy-enabled, written to and read from by clients we did
// not write: Grafana's Connect clients (github.com/grafana/pyroscope/api)
// with Basic auth and with a bearer token, pyroscope-go's uploader with
// Basic auth, and the OTLP gRPC exporter client
// (go.opentelemetry.io/proto/otlp) with an authorization header. The
// negative cases (wrong token, another tenant's token, a read of a tenant
// the token lacks, a write-only token reading, no tenant with
// multitenancy on) must each be refused with the right code and store
// nothing.
//
//	KILN_BIN       path of the kiln binary (the tests are skipped without it)
//	KILN_TESTDATA  the shared test data directory (../shared/testdata)
//
// Run: go test -count=1 -timeout 300s -v ./...
package authpeer
