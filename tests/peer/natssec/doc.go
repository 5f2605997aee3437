// Package natssec is the peer test of Kiln's NATS security: a real
// nats-server (JetStream on 127.0.0.1, configured by a file the harness
// writes) with TLS and authorization, and kiln processes (-target=all, in
// a cluster, on 127.0.0.1 and free ports, sharing one store directory)
// that connect to it with nats.c's credentials and TLS options.
//
//	TestTLSWithPassword   TLS that verifies client certificates, and a user
//	                      and password: 2 processes form a ring, pushes
//	                      through one read back exactly through the other;
//	                      neither the password nor the URL's password
//	                      appears in the logs, /metrics or the config that
//	                      status.v1 serves; nats-server restarted, both
//	                      reconnect with the same options and pushes and
//	                      queries go on exactly
//	TestToken             TLS without client certificates, and a token
//	TestCreds             decentralized authorization: an operator, its
//	                      accounts in a MEMORY resolver, a user's JWT and
//	                      NKey seed in a creds file
//	TestRefused           each refusal stops kiln at start (exit status 1)
//	                      with one error line naming the cause, and nothing
//	                      listens afterwards: wrong password, no
//	                      credentials, wrong token, a creds file of another
//	                      operator, a CA that did not sign the server, no
//	                      client certificate, an expired one, one of
//	                      another CA, TLS asked of a server without it, and
//	                      flag combinations that make no sense
//
// Environment:
//
//	KILN_BIN          path of the kiln binary (skipped without it)
//	KILN_TESTDATA     the shared test data directory
//	KILN_NATS_SERVER  nats-server binary (default: $PATH, /usr/sbin;
//	                  skipped without one)
//
// Run: go test -count=1 -timeout 300s -v ./...
package natssec
