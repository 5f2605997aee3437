// Package cluster is the peer test of Kiln as a cluster: it starts a real
// nats-server (JetStream, on 127.0.0.1, a free port and a temporary store)
// and, as separate kiln processes on 127.0.0.1 and free ports, 2
// distributors, 3 ingesters, 1 querier and 1 compactor sharing one object
// store directory, with 1 s heartbeats, a 5 s heartbeat timeout and heads
// cut into blocks every few seconds. It pushes a real Go CPU profile of the
// shared test data with Pyroscope's Connect push client through both
// distributors and reads totals back through the querier
// (SelectMergeStacktraces, SelectSeries), comparing them with totals
// computed from the file with github.com/google/pprof.
//
// TestCluster runs these phases in order, on one cluster:
//
//	a  pushes through both distributors: exact totals (3 replicas, counted once)
//	b  SIGKILL of an ingester under load: every push still acknowledged
//	   (quorum 2 of 3), exact totals with it down and once it is evicted;
//	   restarted on its data directory and ports, it replays its WAL and
//	   is ACTIVE again on every process
//	c  nats-server stopped under load for longer than the heartbeat
//	   timeout: pushes and queries go on over the last ring, nobody is
//	   evicted; restarted on its port and store, every process reconnects
//	   and every ingester is ACTIVE with fresh heartbeats
//	d  2 of 3 ingesters SIGKILLed: a push fails with unavailable, a query
//	   fails with unavailable naming the unreachable ingesters (before and
//	   after they leave the ring); restarted at their addresses, the push
//	   retried with the same profile id is acknowledged, and every
//	   acknowledged total is exact (the retried one is reported: the
//	   failed attempts the live ingester kept may count too)
//	e  heads flushed as blocks by every ingester and merged by the
//	   compactor: totals stay exact while and after blocks are swapped
//
// TestFrozenIngester runs a cluster of its own with a 3 s rpc timeout and a
// 5 min heartbeat timeout (a stopped ingester stays in the ring): one of
// the 3 ingesters SIGSTOPped under load from 4 pushers, no push fails, no
// push started after the first rpc timeout takes the timeout, and queries
// are exact and, after the first, do not wait for it (healthy and frozen
// push p50/p99 printed); SIGCONT, it is pushed to again and makes the
// quorum while another ingester is frozen; an ingester made slow (stopped
// past the rpc timeout, run briefly, again) fails or slows no push.
//
// TestClusterTLS runs the same processes with the cluster plane over
// mutual TLS (-cluster.tls-*, certificates of a throwaway CA): exact totals
// through both distributors; an ingester's cluster plane refuses no client
// certificate, another CA's, an expired one and plain text (unavailable),
// its public gRPC port answers ingester.v1 with unimplemented; the files
// re-issued in place are reloaded by every process and totals stay exact.
//
// Environment:
//
//	KILN_BIN          path of the kiln binary (skipped without it)
//	KILN_TESTDATA     the shared test data directory
//	KILN_NATS_SERVER  nats-server binary (default: $PATH, /usr/sbin;
//	                  skipped without one)
//
// Run: go test -count=1 -timeout 300s -v ./...
package cluster
