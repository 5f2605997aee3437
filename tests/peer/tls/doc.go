// Package tlspeer is the peer test of TLS on Kiln's gRPC listeners and of
// its private cluster plane (issue 13). A real kiln binary is started with
// -server.grpc-tls-* (certificates from a throwaway CA, kilntest.NewCA) and
// called by clients we did not write:
//
//   - the OTLP gRPC exporter client (go.opentelemetry.io/proto/otlp over
//     grpc-go with TLS) with an x-scope-orgid header on the OTLP port;
//
//   - Pyroscope's Connect clients with connect.WithGRPC() over TLS on the
//     gRPC port, pushing and reading back exact totals;
//
//   - grpc-go, to watch the server certificate rotate: after the files are
//     re-issued in place, a new connection sees the new certificate while
//     an open one keeps working on the old;
//
//   - with -server.grpc-tls-client-auth=RequireAndVerifyClientCert: a
//     client certificate of the CA is accepted; none, one of another CA
//     and an expired one are refused (unavailable) and store nothing;
//
//   - a one-process cluster (-target=all with a real nats-server) whose
//     ingester.v1 runs on the cluster plane with mutual TLS: pushes reach
//     it over mTLS; no client certificate, another CA's or an expired one
//     are refused; ingester.v1.IngesterService/Push on the public gRPC
//     port, over gRPC on the HTTP port and over Connect answers
//     unimplemented (HTTP 501) and stores nothing, while the same request
//     with the cluster certificate on the cluster plane is stored;
//
//   - a non-loopback -server.internal-grpc-listen-address without cluster
//     TLS is a start error.
//
//     KILN_BIN          path of the kiln binary (skipped without it)
//     KILN_TESTDATA     the shared test data directory
//     KILN_NATS_SERVER  nats-server binary (default: $PATH, /usr/sbin)
//
// Run: go test -count=1 -timeout 300s -v ./...
package tlspeer
