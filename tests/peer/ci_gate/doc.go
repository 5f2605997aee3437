// Package cigate is the end-to-end test of `kiln ci`, the CI regression gate
// (docs/ci.md): it builds a small Go benchmark twice, once with a slowdown
// injected into one function, runs each build several times under the
// profiler (`go test -bench . -cpuprofile`), uploads every profile with
// `kiln ci upload` to a real kiln it starts, and checks that `kiln ci compare`
// passes an identical build (noise only) and fails the slowed one, naming the
// slowed function in its Markdown report and JUnit XML.
//
// Environment:
//
//	KILN_BIN  path of the kiln binary (the test is skipped without it)
//
// Run: go test -count=1 -timeout 300s -v ./...
package cigate
