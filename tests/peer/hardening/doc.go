// Package hardening is the Go peer test of Kiln's query serving under
// load: queries run on their own pool, have a deadline, die with their
// client and are bounded per tenant. It starts a real Kiln binary, pushes
// a head whose merges are genuinely slow (a million distinct stack nodes),
// then
//
//   - puts 32 slow SelectMergeStacktraces in flight and measures Connect
//     pushes, /ready and /metrics meanwhile (p50/p99 printed; each must
//     succeed within 10 s);
//   - disconnects those clients and checks the queries stop (the pool
//     drains, kiln_queries_ended_total{reason="canceled"} counts them);
//   - sends Connect-Timeout-Ms and a gRPC deadline and gets
//     deadline_exceeded from the server (504 over Connect);
//   - checks a tenant's max_query_parallelism (overrides file) gives
//     resource_exhausted naming the limit;
//   - sends SIGTERM with queries in flight and requires a clean exit;
//   - with -querier.timeout=200ms alone, gets deadline_exceeded (504) from
//     a Connect query and from /pyroscope/render.
//
// Environment:
//
//	KILN_BIN       path of the kiln binary (the tests are skipped without it)
//	KILN_EXTRA_ARGS, if set, is split on spaces and appended to the server's
//	command line.
//
// Run: go test -count=1 -timeout 300s -v ./...
package hardening
