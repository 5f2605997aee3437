// Package protocols is the peer test of "one URL, every protocol": Kiln's
// HTTP port serves Connect (proto and JSON, HTTP/1.1), gRPC (HTTP/2 over
// cleartext, prior knowledge) and gRPC-Web (binary and base64 text), as
// Pyroscope's does. It drives the real kiln binary with the upstream
// Connect Go clients of github.com/grafana/pyroscope/api under each of
// connectrpc.com/connect's protocol options (default, WithGRPC,
// WithGRPCWeb), pointed at the HTTP port only, and with raw gRPC-Web text
// requests as a browser library would send them.
//
// Needs KILN_BIN (skipped without it). Run: go test -count=1 -v ./...
package protocols
