// Package sweep is the "no request survives unanswered" peer test of Kiln
// (issue #10): it starts the real kiln binary, pushes varied data (pprof
// files of several languages and profile types over Connect and gRPC, OTLP
// with dotted attribute names, /ingest folded and lines bodies with dotted
// and UTF-8 tags), notes what every service holds, then drives every
// querier.v1 method, every ingest path and every legacy HTTP endpoint with
// generated parameters (dotted and UTF-8 label names, empty and 100 KB
// selectors, bad FlameQL, inverted and absurd ranges, huge limits, with and
// without the allow-utf8-labelnames capability, Connect proto and JSON,
// gRPC, curl-like bare requests, and garbage bodies on every route).
//
// It asserts that the process lives, that every answer is 2xx or a
// documented 4xx (never a 5xx other than 501 unimplemented, never a hang:
// each request has a client timeout), and that the data pushed before the
// sweep is intact afterwards.
//
// The parameters come from a PRNG seeded per request from one seed, which
// the test prints: SWEEP_SEED=<n> replays a run, SWEEP_SCALE=<f> multiplies
// the number of requests (default 1: a few thousand). Environment as for
// every peer test: KILN_BIN, KILN_TESTDATA, KILN_EXTRA_ARGS.
//
// Run: go test -count=1 -timeout 300s -v ./...
package sweep
