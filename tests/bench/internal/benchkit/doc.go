// SPDX-License-Identifier: Apache-2.0

// Package benchkit is what the Go benchmark programs under tests/bench
// (pushload, cluster) share: test data profiles prepared for pushing, child
// processes (kiln, nats-server) on free 127.0.0.1 ports with their CPU time
// and memory from /proc, Pyroscope push clients, a concurrent push loop and
// latency percentiles. It is for programs that print figures, not for tests:
// errors are returned, never reported to a testing.TB (tests use
// tests/lib/kilntest).
package benchkit
