// Package firstrun checks what a newcomer meets on Kiln's first run, with
// the real binary: `kiln -version` and the kiln_build_info metric agree,
// -help is grouped by module and says each default once, a port clash is
// one clear line (no gRPC core internals), the start line says
// otlp_grpc=off when OTLP is off, GET /ingest is 405 with Allow, and a
// client that connects and stays silent is still served HTTP/1.1 on the
// port that also serves gRPC.
//
// Needs KILN_BIN (skipped without it). Run: go test -count=1 -v ./...
package firstrun
