package ingesterrors

import (
	"strings"
	"sync"
	"testing"

	collpb "go.opentelemetry.io/proto/otlp/collector/profiles/v1development"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"kiln.dev/tests/lib/kilntest"
)

// TestGRPCExportsOnOneConnection: on one connection of the OTLP gRPC client,
// an export over -server.grpc-max-recv-msg-size-bytes is refused with
// ResourceExhausted while the exports around it, and 64 sent at once (more
// than the 16 request slots each gRPC worker keeps posted), are all taken.
func TestGRPCExportsOnOneConnection(t *testing.T) {
	kilntest.RequireEnv(t)
	s := kilntest.Start(t, kilntest.Args("-server.grpc-max-recv-msg-size-bytes=1MiB"))
	conn, err := grpc.NewClient(s.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := collpb.NewProfilesServiceClient(conn)
	export := func(req *collpb.ExportProfilesServiceRequest) error {
		ctx, cancel := kilntest.ReqCtx(t)
		defer cancel()
		ctx = metadata.AppendToOutgoingContext(ctx, "x-scope-orgid", "grpc-limits")
		_, err := client.Export(ctx, req)
		return err
	}
	if err := export(otlpOne(t, 0, nil)); err != nil {
		t.Fatalf("first export: %v", err)
	}
	big := otlpOne(t, 0, func(r *collOTLP) { addResourceAttr(r, "pad", strings.Repeat("x", 2<<20)) })
	if err := export(big); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("a 2 MiB export against a 1 MiB limit: %v, want ResourceExhausted", err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- export(otlpOne(t, 0, nil))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("one of 64 exports at once: %v", err)
		}
	}
}
