// Package durability is the crash and corruption test of Kiln: it starts
// the real kiln binary on 127.0.0.1, pushes real profiles with the upstream
// Pyroscope Connect/gRPC clients (github.com/grafana/pyroscope/api), kills
// it (SIGKILL or SIGTERM), damages its write-ahead log or its blocks on
// disk, restarts it on the same -storage.path and checks with
// SelectMergeStacktraces that what was acknowledged is still served, exactly
// once. Expected totals are computed from the profile files with
// github.com/google/pprof/profile.
//
// Tests (each with its own temporary -storage.path, bounded in time and in
// number of requests):
//
//	TestKill9UnderLoad        SIGKILL during 4 concurrent pushers; WAL only,
//	                          and with block flushes during the load
//	TestCorruptWALTail        garbage, zeros or a flipped byte at the WAL tail
//	TestCorruptBlock          damaged samples/index/meta.json of blocks
//	TestCompactionKeepsTotals level-1 blocks merged by the compactor
//
// Environment:
//
//	KILN_BIN       path of the kiln binary (the tests are skipped without it)
//	KILN_TESTDATA  the shared test data directory (../shared/testdata)
//
// Run: go test -count=1 -timeout 300s -v ./...
package durability
