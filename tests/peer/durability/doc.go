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
//	TestKill9UnderLoad           SIGKILL during 4 concurrent pushers (two
//	                             tenants): WAL only, with block flushes
//	                             during the load, and at a flush
//	TestCorruptWALTail           garbage, a torn record, zeros or a flipped
//	                             byte at the WAL tail
//	TestCorruptBlock             damaged samples/index/meta.json of blocks
//	TestCompactionKeepsTotals    level-1 blocks merged by the compactor,
//	                             queried before, during and after
//	TestCompactionCrashBeforeSourcesDeleted
//	                             SIGKILL between the compacted block and the
//	                             deletion of its sources
//	TestWALSkipSurvivesCompaction
//	                             WAL records already in a block are not
//	                             replayed, also once that block is compacted
//	TestS3                       compaction, a SIGKILL while flushing,
//	                             retention and the store stopped 30 s under
//	                             load with the blocks in S3 (versitygw), and
//	                             a wrong secret or missing bucket at start
//
// Environment:
//
//	KILN_BIN       path of the kiln binary (the tests are skipped without it)
//	KILN_TESTDATA  the shared test data directory (../shared/testdata)
//
// The server's own limits that would reject the years-old test profiles or
// queries over them (time window, rate limit, query length and lookback)
// are turned off with flags.
//
// Run: go test -count=1 -timeout 300s -v ./...
package durability
