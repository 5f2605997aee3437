// Package render is the Go peer test of Kiln's flame graph diff and its
// legacy Pyroscope read API: it starts a real Kiln binary, pushes real pprof
// files from the shared test data with the upstream push client, then
//
//   - calls querier.v1.QuerierService/Diff through the upstream Connect
//     client and checks the ticks of each side against totals computed here
//     from the files with github.com/google/pprof/profile, and the layout of
//     the 7-value levels;
//   - GETs /pyroscope/render (flamebearer JSON with its timeline, the legacy
//     app.name.cpu{} query form, groupBy, and format=dot);
//   - GETs /pyroscope/render-diff and /pyroscope/label-values.
//
// Environment:
//
//	KILN_BIN       path of the kiln binary (the tests are skipped without it)
//	KILN_TESTDATA  the shared test data directory (../shared/testdata)
//	KILN_EXTRA_ARGS, if set, is split on spaces and appended to the server's
//	command line.
//
// Run: go test -count=1 -timeout 300s -v ./...
package render
