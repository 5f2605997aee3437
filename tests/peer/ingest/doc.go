// Package ingest is the Go peer test of Kiln's legacy Pyroscope ingest API,
// POST /ingest (and /pyroscope/ingest): it starts a real Kiln binary, posts
// the shared test data in every body format the API takes (folded, lines,
// speedscope, pprof raw and in the multipart form, the latter through
// pyroscope-go's own uploader, github.com/grafana/pyroscope-go/upstream/
// remote), and reads the totals back with the upstream Connect querier
// client, comparing them with figures computed here from the files. It also
// checks the HTTP status of every kind of rejection (400, 413, 422, 429).
//
// Environment:
//
//	KILN_BIN       path of the kiln binary (the tests are skipped without it)
//	KILN_TESTDATA  the shared test data directory (../shared/testdata)
//	KILN_EXTRA_ARGS, if set, is split on spaces and appended to the server's
//	command line.
//
// Run: go test -count=1 -timeout 300s -v ./...
package ingest
