// Package agents is Kiln's real-agent compatibility test: it runs programs
// instrumented with Grafana Pyroscope's own SDKs against a Kiln binary and
// checks, through the upstream Connect querier client, that what each SDK
// sent shows up as Grafana would ask for it.
//
//	TestPythonAgent  python/app.py  pyroscope-io (pyroscope-rs: Connect push.v1 Push, gzip)
//	TestNodeAgent    node/app.js    @pyroscope/nodejs (POST /ingest?format=pprof, gzipped pprof body)
//	TestGoAgent      goapp/         github.com/grafana/pyroscope-go (POST /ingest, multipart pprof)
//
// Each test starts Kiln on free 127.0.0.1 ports, starts the agent program
// with a unique application name and a short upload interval, and polls
// (bounded in time) LabelValues, ProfileTypes and SelectMergeStacktraces
// until the program's CPU-burning function (kiln_hot_python_loop,
// kilnHotNodeLoop, kilnHotGoLoop) appears in the flame graph of the
// expected profile type with a non-zero total. It then checks that the
// service, its profile types and the SDK's tag (kiln_agent=<sdk>) are
// listed by the metadata RPCs.
//
// The dependencies are pinned here and installed by .ci/install-deps:
// go.mod/go.sum, package.json/package-lock.json (npm ci) and
// requirements.txt (pip install -r). A test whose runtime or SDK is
// missing is skipped with the exact error, or fails when
// KILN_REQUIRE_AGENTS=1.
//
// Environment:
//
//	KILN_BIN             path of the kiln binary (the tests are skipped without it)
//	KILN_PYTHON, KILN_NODE  interpreters (default python3, node)
//	KILN_REQUIRE_AGENTS  fail instead of skipping when an agent cannot run
//	KILN_EXTRA_ARGS      appended to the server's command line
//
// Run: go test -count=1 -timeout 300s -v ./...
package agents
