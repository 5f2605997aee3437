// Package kilntest is the harness the Go peer tests of Kiln (tests/peer/*)
// share: it starts the real kiln binary on loopback ports with a private
// storage directory, forwards its output to the test log, waits until it is
// ready, checks at the end of the test that it did not crash, and gives the
// upstream Pyroscope clients bound to a tenant.
//
//	s := kilntest.Start(t)                       // stopped (and checked) by t.Cleanup
//	c := s.Clients(t, kilntest.NewTenant("app")) // Connect, gRPC, HTTP/1.1, h2c
//	ctx, cancel := kilntest.ReqCtx(t)
//	defer cancel()
//	_, err := c.Push.Push(ctx, req)
//	s.CheckAfterError(t, err) // fails at once if kiln died or hung
//
// A cluster test starts a nats-server (StartNATS; Restart keeps its port,
// configuration file and store; NATSTLS, NATSUser, NATSToken and
// NATSConfig secure it, package natsjwt makes JWT creds files for it) and
// kiln processes with Target, Name and -cluster.* Args; a
// server Restart with KeepPorts comes back at the same address, Ring reads
// GET /ring?format=json and Metric a line of /metrics. LoadProfile computes
// what one push of a test data file adds to each sample type's total.
// NewCA issues certificates; WithHTTPTLS serves the HTTP port over HTTPS
// with one of them (HTTPURL is then https://, NewHTTPTransport trusts the
// CA).
//
// Environment:
//
//	KILN_BIN         path of the kiln binary (tests that need it are skipped
//	                 without it)
//	KILN_TESTDATA    the shared test data directory (RequireEnv)
//	KILN_EXTRA_ARGS  split on spaces and appended to every server's command
//	                 line (unless the test starts it with IgnoreEnvArgs)
//	KILN_NATS_SERVER the nats-server binary (default: $PATH, /usr/sbin;
//	                 StartNATS skips the test without one)
//
// The package lives outside tests/peer/ so that it is not registered as a
// test of its own; each peer module requires it with
//
//	require kiln.dev/tests/lib/kilntest v0.0.0
//	replace kiln.dev/tests/lib/kilntest => ../../lib/kilntest
package kilntest
