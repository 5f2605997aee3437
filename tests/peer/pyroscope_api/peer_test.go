package peer

import (
	"bytes"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	googlev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"kiln.dev/tests/lib/kilntest"
)

// transport names one of the two push paths.
type transport struct {
	name   string // "connect" or "grpc"
	client func(c *kilntest.Clients) pushv1connect.PusherServiceClient
	// wantHTTP is the HTTP status a rejected push must come back with.
	wantHTTP int
	// wantProto is the HTTP version the client must have used: Alloy's
	// plain http:// transport is HTTP/1.1; gRPC runs over h2c.
	wantProto string
}

var transports = []transport{
	{name: "connect", client: func(c *kilntest.Clients) pushv1connect.PusherServiceClient { return c.Push }, wantHTTP: http.StatusBadRequest, wantProto: "HTTP/1.1"},
	{name: "grpc", client: func(c *kilntest.Clients) pushv1connect.PusherServiceClient { return c.PushGRPC }, wantHTTP: http.StatusOK, wantProto: "HTTP/2.0"},
}

// push sends one raw profile with the contract's labels and returns the
// error and the HTTP outcome the server answered with.
func push(t *testing.T, s *kilntest.Server, c *kilntest.Clients, tr transport, name, service string, raw []byte) (kilntest.Outcome, error) {
	t.Helper()
	return pushID(t, s, c, tr, name, service, raw, kilntest.NewUUID())
}

// pushID is push with the RawSample's profile id given.
func pushID(t *testing.T, s *kilntest.Server, c *kilntest.Clients, tr transport, name, service string, raw []byte, profileID string) (kilntest.Outcome, error) {
	t.Helper()
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	req := connect.NewRequest(&pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
		Labels: []*typesv1.LabelPair{
			{Name: "__name__", Value: name},
			{Name: "service_name", Value: service},
			{Name: "__delta__", Value: "false"},
		},
		Samples: []*pushv1.RawSample{{RawProfile: raw, ID: profileID}},
	}}})
	id := kilntest.NewUUID()
	req.Header().Set(kilntest.RequestIDHeader, id)
	t0 := time.Now()
	_, err := tr.client(c).Push(ctx, req)
	if took := time.Since(t0); took > time.Second {
		t.Logf("push of %d bytes over %s took %v", len(raw), tr.name, took.Round(time.Millisecond))
	}
	out, ok := c.Outcome(id)
	s.CheckAfterError(t, err)
	if ok && out.Proto != tr.wantProto {
		t.Errorf("push over %s used %s, want %s", tr.name, out.Proto, tr.wantProto)
	}
	return out, err
}

// selectMerge runs SelectMergeStacktraces for one service and type.
func selectMerge(t *testing.T, s *kilntest.Server, q querierv1connect.QuerierServiceClient, typeID, service string, start, end int64) (*querierv1.FlameGraph, error) {
	t.Helper()
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	maxNodes := int64(1 << 20)
	resp, err := q.SelectMergeStacktraces(ctx, connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
		ProfileTypeID: typeID,
		LabelSelector: `{service_name="` + service + `"}`,
		Start:         start,
		End:           end,
		MaxNodes:      &maxNodes,
	}))
	if err != nil {
		s.CheckAfterError(t, err)
		return nil, err
	}
	return resp.Msg.GetFlamegraph(), nil
}

// checkTotals queries every sample type of pc pushed as service and checks
// the flame graph total and structure.
func checkTotals(t *testing.T, s *kilntest.Server, c *kilntest.Clients, pc *profileCase, service string) {
	t.Helper()
	start, end := queryWindow(pc.timeNanos, time.Now())
	for i, id := range pc.typeIDs {
		t0 := time.Now()
		fg, err := selectMerge(t, s, c.Query, id, service, start, end)
		took := time.Since(t0)
		if err != nil {
			t.Errorf("%s: SelectMergeStacktraces(%s, service_name=%q, start=%d, end=%d): %v", pc.rel, id, service, start, end, err)
			continue
		}
		got := fg.GetTotal()
		t.Logf("  %-60s total=%d expected=%d (raw sum %d) levels=%d names=%d query=%v", id, got, pc.expected[i], pc.rawSum[i], len(fg.GetLevels()), len(fg.GetNames()), took.Round(time.Millisecond))
		if got != pc.expected[i] {
			msg := ""
			if got == pc.symbolized[i] && pc.symbolized[i] != pc.expected[i] {
				msg = " (equals the total of samples with a symbolized frame: unsymbolized stacks were dropped)"
			} else if got == pc.rawSum[i] {
				msg = " (equals the raw sum over all samples: samples whose values are all <= 0, which upstream pprof.Normalize drops, or stackless samples were counted)"
			}
			t.Errorf("%s [%s] %s: flame graph total = %d, want %d%s", pc.rel, service, id, got, pc.expected[i], msg)
		}
		if _, problems := decodeFlameGraph(fg, !pc.negative[i]); len(problems) > 0 {
			if len(problems) > 5 {
				problems = append(problems[:5], "...")
			}
			t.Errorf("%s [%s] %s: flame graph invariants: %s", pc.rel, service, id, strings.Join(problems, "; "))
		}
	}
}

// pprofRows returns the MANIFEST rows with format pprof under dir.
func pprofRows(t *testing.T, root, dir string) []manifestRow {
	var out []manifestRow
	for _, r := range readManifest(t, root, dir) {
		if r.format == "pprof" {
			out = append(out, r)
		}
	}
	return out
}

type pushedService struct {
	pc      *profileCase
	service string
}

// TestPushAndQueryProfiles pushes every pprof file of the shared test data
// (not hard/) over Connect and over gRPC and checks what the querier
// returns for it.
func TestPushAndQueryProfiles(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	s := kilntest.Start(t)
	c := s.Clients(t, kilntest.NewTenant("peer-files"))

	var pushedAll []pushedService
	minStart := time.Now().UnixMilli()
	for _, row := range pprofRows(t, root, "") {
		s.RequireAlive(t)
		pc, err := loadProfileCase(t, root, row.rel)
		if err != nil {
			t.Errorf("%s: MANIFEST says pprof but profile.Parse rejects it: %v", row.rel, err)
			continue
		}
		if why := upstreamRejection(pc.raw); why != "" {
			t.Errorf("%s: test data expected to be accepted, but upstream would reject it: %s", row.rel, why)
			continue
		}
		start, _ := queryWindow(pc.timeNanos, time.Now())
		minStart = min(minStart, start)
		t.Run(row.rel, func(t *testing.T) {
			var types []string
			for i, st := range pc.prof.SampleType {
				types = append(types, st.Type+"/"+st.Unit+"="+itoa(pc.expected[i]))
			}
			t.Logf("%s: __name__=%s samples=%d time=%s types=%v", pc.rel, pc.name, len(pc.prof.Sample),
				time.Unix(0, pc.timeNanos).UTC().Format(time.RFC3339), types)
			for _, tr := range transports {
				service := sanitizeService(tr.name, pc.rel)
				if _, err := push(t, s, c, tr, pc.name, service, pc.raw); err != nil {
					t.Errorf("%s: push over %s: %v", pc.rel, tr.name, err)
					continue
				}
				pushedAll = append(pushedAll, pushedService{pc: pc, service: service})
				checkTotals(t, s, c, pc, service)
			}
		})
	}
	s.RequireAlive(t)
	if len(pushedAll) == 0 {
		t.Fatal("nothing was pushed")
	}
	end := time.Now().Add(time.Hour).UnixMilli()

	t.Run("heaviest-leaf", func(t *testing.T) {
		const rel = "grafana-pyroscope/cpu.pb.gz"
		pc, err := loadProfileCase(t, root, rel)
		if err != nil {
			t.Fatal(err)
		}
		start, end := queryWindow(pc.timeNanos, time.Now())
		for i, id := range pc.typeIDs {
			leaf, v := heaviestLeaf(pc.prof, i)
			fg, err := selectMerge(t, s, c.Query, id, sanitizeService("connect", rel), start, end)
			if err != nil {
				t.Fatalf("SelectMergeStacktraces: %v", err)
			}
			t.Logf("%s: heaviest leaf %q (flat %d)", id, leaf, v)
			if !slices.Contains(fg.GetNames(), leaf) {
				t.Errorf("%s: heaviest leaf function %q (flat %d) is not among the flame graph names %v", id, leaf, v, fg.GetNames())
			}
			// The same query in Connect JSON (Profiles Drilldown) must give the
			// same flame graph.
			fgJSON, err := selectMerge(t, s, c.QueryJSON, id, sanitizeService("connect", rel), start, end)
			if err != nil {
				t.Fatalf("SelectMergeStacktraces (JSON): %v", err)
			}
			if !proto.Equal(fg, fgJSON) {
				t.Errorf("%s: JSON flame graph differs from the binary one:\nproto: total=%d names=%v\njson:  total=%d names=%v",
					id, fg.GetTotal(), fg.GetNames(), fgJSON.GetTotal(), fgJSON.GetNames())
			}
		}
	})

	t.Run("ProfileTypes", func(t *testing.T) {
		ctx, cancel := kilntest.ReqCtx(t)
		defer cancel()
		resp, err := c.Query.ProfileTypes(ctx, connect.NewRequest(&querierv1.ProfileTypesRequest{Start: minStart, End: end}))
		if err != nil {
			s.CheckAfterError(t, err)
			t.Fatalf("ProfileTypes: %v", err)
		}
		var ids []string
		for _, pt := range resp.Msg.GetProfileTypes() {
			ids = append(ids, pt.GetID())
			want := strings.Join([]string{pt.GetName(), pt.GetSampleType(), pt.GetSampleUnit(), pt.GetPeriodType(), pt.GetPeriodUnit()}, ":")
			if pt.GetID() != want {
				t.Errorf("ProfileType %q: fields give %q", pt.GetID(), want)
			}
		}
		if !sort.StringsAreSorted(ids) || hasDup(ids) {
			t.Errorf("ProfileTypes not sorted unique by ID: %v", ids)
		}
		for _, p := range pushedAll {
			for i, id := range p.pc.typeIDs {
				if p.pc.expected[i] != 0 && !slices.Contains(ids, id) {
					t.Errorf("ProfileTypes lacks %s (pushed by %s)", id, p.pc.rel)
				}
			}
		}
		t.Logf("ProfileTypes: %d types", len(ids))
	})

	t.Run("LabelNames", func(t *testing.T) {
		ctx, cancel := kilntest.ReqCtx(t)
		defer cancel()
		resp, err := c.Query.LabelNames(ctx, connect.NewRequest(&typesv1.LabelNamesRequest{Start: minStart, End: end}))
		if err != nil {
			s.CheckAfterError(t, err)
			t.Fatalf("LabelNames: %v", err)
		}
		names := resp.Msg.GetNames()
		t.Logf("LabelNames: %v", names)
		for _, want := range []string{"service_name", "__name__"} {
			if !slices.Contains(names, want) {
				t.Errorf("LabelNames lacks %q: %v", want, names)
			}
		}
		if !sort.StringsAreSorted(names) || hasDup(names) {
			t.Errorf("LabelNames not sorted unique: %v", names)
		}
	})

	t.Run("LabelValues", func(t *testing.T) {
		for _, q := range []struct {
			name string
			c    querierv1connect.QuerierServiceClient
		}{{"proto", c.Query}, {"json", c.QueryJSON}} {
			ctx, cancel := kilntest.ReqCtx(t)
			resp, err := q.c.LabelValues(ctx, connect.NewRequest(&typesv1.LabelValuesRequest{Name: "service_name", Start: minStart, End: end}))
			cancel()
			if err != nil {
				s.CheckAfterError(t, err)
				t.Errorf("LabelValues(service_name) [%s]: %v", q.name, err)
				continue
			}
			values := resp.Msg.GetNames()
			if !sort.StringsAreSorted(values) || hasDup(values) {
				t.Errorf("LabelValues [%s] not sorted unique: %v", q.name, values)
			}
			for _, p := range pushedAll {
				if !slices.Contains(values, p.service) {
					t.Errorf("LabelValues(service_name) [%s] lacks %q", q.name, p.service)
				}
			}
			t.Logf("LabelValues(service_name) [%s]: %d values", q.name, len(values))
		}
	})

	// Upstream turns pprof string sample labels (except trace_id/span_id)
	// into series labels: Grafana lists and filters by them.
	t.Run("pprof-labels", func(t *testing.T) {
		checked := 0
		for _, p := range pushedAll {
			want := pprofSeriesLabels(p.pc.prof)
			if len(want) == 0 {
				continue
			}
			checked++
			sel := `{service_name="` + p.service + `"}`
			ctx, cancel := kilntest.ReqCtx(t)
			ln, err := c.Query.LabelNames(ctx, connect.NewRequest(&typesv1.LabelNamesRequest{Matchers: []string{sel}, Start: minStart, End: end}))
			cancel()
			if err != nil {
				s.CheckAfterError(t, err)
				t.Errorf("LabelNames(%s): %v", sel, err)
				continue
			}
			keys := make([]string, 0, len(want))
			for k := range want {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if !slices.Contains(ln.Msg.GetNames(), k) {
					t.Errorf("%s: LabelNames(%s) lacks pprof label %q (upstream makes it a series label); got %v", p.pc.rel, sel, k, ln.Msg.GetNames())
					continue
				}
				ctx, cancel := kilntest.ReqCtx(t)
				lv, err := c.Query.LabelValues(ctx, connect.NewRequest(&typesv1.LabelValuesRequest{Name: k, Matchers: []string{sel}, Start: minStart, End: end}))
				cancel()
				if err != nil {
					s.CheckAfterError(t, err)
					t.Errorf("LabelValues(%s, %s): %v", k, sel, err)
					continue
				}
				for v := range want[k] {
					if !slices.Contains(lv.Msg.GetNames(), v) {
						t.Errorf("%s: LabelValues(%s, %s) lacks %q", p.pc.rel, k, sel, v)
					}
				}
			}
			// Filter the flame graph by the first label value.
			k := keys[0]
			vals := make([]string, 0, len(want[k]))
			for v := range want[k] {
				vals = append(vals, v)
			}
			sort.Strings(vals)
			v := vals[0]
			wantTotal := labelFilteredTotal(p.pc.prof, 0, k, v)
			start, _ := queryWindow(p.pc.timeNanos, time.Now())
			ctx, cancel = kilntest.ReqCtx(t)
			maxNodes := int64(1 << 20)
			resp, err := c.Query.SelectMergeStacktraces(ctx, connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
				ProfileTypeID: p.pc.typeIDs[0],
				LabelSelector: `{service_name="` + p.service + `",` + k + `="` + v + `"}`,
				Start:         start, End: end, MaxNodes: &maxNodes,
			}))
			cancel()
			if err != nil {
				s.CheckAfterError(t, err)
				t.Errorf("%s: SelectMergeStacktraces filtered by %s=%q: %v", p.pc.rel, k, v, err)
				continue
			}
			if got := resp.Msg.GetFlamegraph().GetTotal(); got != wantTotal {
				t.Errorf("%s [%s]: %s total filtered by pprof label %s=%q = %d, want %d", p.pc.rel, p.service, p.pc.typeIDs[0], k, v, got, wantTotal)
			} else {
				t.Logf("%s [%s]: filtered by %s=%q: total %d", p.pc.rel, p.service, k, v, got)
			}
		}
		t.Logf("checked pprof labels of %d pushed services", checked)
	})

	t.Run("Series", func(t *testing.T) {
		for _, p := range pushedAll {
			ctx, cancel := kilntest.ReqCtx(t)
			resp, err := c.Query.Series(ctx, connect.NewRequest(&querierv1.SeriesRequest{
				Matchers:   []string{`{service_name="` + p.service + `"}`},
				LabelNames: []string{"service_name", "__profile_type__"},
				Start:      minStart,
				End:        end,
			}))
			cancel()
			if err != nil {
				s.CheckAfterError(t, err)
				t.Errorf("Series(%s): %v", p.service, err)
				continue
			}
			var got []string
			for _, ls := range resp.Msg.GetLabelsSet() {
				var names []string
				m := map[string]string{}
				for _, l := range ls.GetLabels() {
					names = append(names, l.GetName())
					m[l.GetName()] = l.GetValue()
				}
				if !sort.StringsAreSorted(names) {
					t.Errorf("Series(%s): labels not sorted by name: %v", p.service, ls.GetLabels())
				}
				if len(m) != 2 || m["service_name"] != p.service || m["__profile_type__"] == "" {
					t.Errorf("Series(%s): label set %v, want exactly service_name=%q and __profile_type__", p.service, m, p.service)
					continue
				}
				got = append(got, m["__profile_type__"])
			}
			if hasDup(got) {
				t.Errorf("Series(%s): duplicate label sets: %v", p.service, got)
			}
			for i, id := range p.pc.typeIDs {
				if p.pc.expected[i] != 0 && !slices.Contains(got, id) {
					t.Errorf("Series(%s) lacks __profile_type__=%s; got %v", p.service, id, got)
				}
			}
			for _, id := range got {
				if !slices.Contains(p.pc.typeIDs, id) {
					t.Errorf("Series(%s) has unexpected __profile_type__=%s", p.service, id)
				}
			}
		}
	})
}

// TestTenantIsolation checks that X-Scope-OrgID separates the data.
func TestTenantIsolation(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	s := kilntest.Start(t)
	a := s.Clients(t, kilntest.NewTenant("peer-tenant-a"))
	b := s.Clients(t, kilntest.NewTenant("peer-tenant-b"))

	pcA, err := loadProfileCase(t, root, "grafana-pyroscope/cpu.pb.gz")
	if err != nil {
		t.Fatal(err)
	}
	pcB, err := loadProfileCase(t, root, "datadog-go-profiler-notes/block.pb.gz")
	if err != nil {
		t.Fatal(err)
	}
	svcA := "peer-tenancy-a-" + kilntest.RandomHex(4)
	svcB := "peer-tenancy-b-" + kilntest.RandomHex(4)
	if _, err := push(t, s, a, transports[0], pcA.name, svcA, pcA.raw); err != nil {
		t.Fatalf("push A over connect: %v", err)
	}
	if _, err := push(t, s, a, transports[1], pcA.name, svcA+"-grpc", pcA.raw); err != nil {
		t.Fatalf("push A over grpc: %v", err)
	}
	if _, err := push(t, s, b, transports[0], pcB.name, svcB, pcB.raw); err != nil {
		t.Fatalf("push B over connect: %v", err)
	}

	now := time.Now()
	startA, end := queryWindow(pcA.timeNanos, now)
	startB, _ := queryWindow(pcB.timeNanos, now)
	start := min(startA, startB)

	// A sees its own data (pushed over Connect and over gRPC); B does not.
	for _, svc := range []string{svcA, svcA + "-grpc"} {
		for i, id := range pcA.typeIDs {
			fg, err := selectMerge(t, s, a.Query, id, svc, startA, end)
			if err != nil {
				t.Fatalf("A: SelectMergeStacktraces: %v", err)
			}
			if fg.GetTotal() != pcA.expected[i] {
				t.Errorf("A: %s %s total = %d, want %d", svc, id, fg.GetTotal(), pcA.expected[i])
			}
			fg, err = selectMerge(t, s, b.Query, id, svc, startA, end)
			if err != nil {
				t.Fatalf("B: SelectMergeStacktraces: %v", err)
			}
			if fg.GetTotal() != 0 {
				t.Errorf("tenant B sees tenant A's data: %s service %s total = %d", id, svc, fg.GetTotal())
			}
		}
	}
	for i, id := range pcB.typeIDs {
		fg, err := selectMerge(t, s, a.Query, id, svcB, startB, end)
		if err != nil {
			t.Fatalf("A: SelectMergeStacktraces: %v", err)
		}
		if fg.GetTotal() != 0 {
			t.Errorf("tenant A sees tenant B's data: %s service %s total = %d", id, svcB, fg.GetTotal())
		}
		fg, err = selectMerge(t, s, b.Query, id, svcB, startB, end)
		if err != nil {
			t.Fatalf("B: SelectMergeStacktraces: %v", err)
		}
		if fg.GetTotal() != pcB.expected[i] {
			t.Errorf("B: %s total = %d, want %d", id, fg.GetTotal(), pcB.expected[i])
		}
	}

	// A multi-tenant read "A|B" (Grafana with a federated data source)
	// sees both tenants' data, each counted once.
	ab := s.Clients(t, a.Tenant+"|"+b.Tenant)
	for _, tc := range []struct {
		pc    *profileCase
		svc   string
		start int64
	}{{pcA, svcA, startA}, {pcA, svcA + "-grpc", startA}, {pcB, svcB, startB}} {
		for i, id := range tc.pc.typeIDs {
			fg, err := selectMerge(t, s, ab.Query, id, tc.svc, tc.start, end)
			if err != nil {
				t.Fatalf("A|B: SelectMergeStacktraces: %v", err)
			}
			if fg.GetTotal() != tc.pc.expected[i] {
				t.Errorf("A|B: %s %s total = %d, want %d", tc.svc, id, fg.GetTotal(), tc.pc.expected[i])
			}
		}
	}
	abCtx, abCancel := kilntest.ReqCtx(t)
	lv, err := ab.Query.LabelValues(abCtx, connect.NewRequest(&typesv1.LabelValuesRequest{Name: "service_name", Start: start, End: end}))
	abCancel()
	if err != nil {
		t.Fatalf("A|B: LabelValues: %v", err)
	}
	if !slices.Contains(lv.Msg.GetNames(), svcA) || !slices.Contains(lv.Msg.GetNames(), svcB) {
		t.Errorf("A|B: LabelValues(service_name) = %v, want %q and %q", lv.Msg.GetNames(), svcA, svcB)
	}

	// Metadata: each tenant lists only its own names and types.
	for _, tc := range []struct {
		who          string
		c            *kilntest.Clients
		own, foreign string
		ownTypes     []string
		foreignTypes []string
	}{
		{"A", a, svcA, svcB, pcA.typeIDs, pcB.typeIDs},
		{"B", b, svcB, svcA, pcB.typeIDs, pcA.typeIDs},
	} {
		ctx, cancel := kilntest.ReqCtx(t)
		lv, err := tc.c.Query.LabelValues(ctx, connect.NewRequest(&typesv1.LabelValuesRequest{Name: "service_name", Start: start, End: end}))
		cancel()
		if err != nil {
			s.CheckAfterError(t, err)
			t.Fatalf("%s: LabelValues: %v", tc.who, err)
		}
		if !slices.Contains(lv.Msg.GetNames(), tc.own) || slices.Contains(lv.Msg.GetNames(), tc.foreign) {
			t.Errorf("%s: LabelValues(service_name) = %v, want %q and not %q", tc.who, lv.Msg.GetNames(), tc.own, tc.foreign)
		}
		ctx, cancel = kilntest.ReqCtx(t)
		pt, err := tc.c.Query.ProfileTypes(ctx, connect.NewRequest(&querierv1.ProfileTypesRequest{Start: start, End: end}))
		cancel()
		if err != nil {
			s.CheckAfterError(t, err)
			t.Fatalf("%s: ProfileTypes: %v", tc.who, err)
		}
		var ids []string
		for _, p := range pt.Msg.GetProfileTypes() {
			ids = append(ids, p.GetID())
		}
		for _, id := range tc.ownTypes {
			if !slices.Contains(ids, id) {
				t.Errorf("%s: ProfileTypes lacks own type %s: %v", tc.who, id, ids)
			}
		}
		for _, id := range tc.foreignTypes {
			if slices.Contains(ids, id) && !slices.Contains(tc.ownTypes, id) {
				t.Errorf("%s: ProfileTypes shows the other tenant's type %s", tc.who, id)
			}
		}
		ctx, cancel = kilntest.ReqCtx(t)
		sr, err := tc.c.Query.Series(ctx, connect.NewRequest(&querierv1.SeriesRequest{
			Matchers:   []string{`{service_name="` + tc.foreign + `"}`},
			LabelNames: []string{"service_name", "__profile_type__"},
			Start:      start, End: end,
		}))
		cancel()
		if err != nil {
			s.CheckAfterError(t, err)
			t.Fatalf("%s: Series: %v", tc.who, err)
		}
		if n := len(sr.Msg.GetLabelsSet()); n != 0 {
			t.Errorf("%s: Series of the other tenant's service returns %d label sets", tc.who, n)
		}
	}

	// A fresh tenant sees nothing at all.
	c := s.Clients(t, kilntest.NewTenant("peer-tenant-empty"))
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	pt, err := c.Query.ProfileTypes(ctx, connect.NewRequest(&querierv1.ProfileTypesRequest{Start: start, End: end}))
	if err != nil {
		s.RequireAlive(t)
		t.Fatalf("empty tenant: ProfileTypes: %v", err)
	}
	if n := len(pt.Msg.GetProfileTypes()); n != 0 {
		t.Errorf("empty tenant: ProfileTypes returns %d types", n)
	}
}

// TestHardProfiles pushes the pprof files of hard/. Files upstream
// Pyroscope rejects under its default limits and validation rules must be
// rejected with invalid_argument; the others that profile.Parse accepts and
// that are not marked MALFORMED are checked like the normal files; the rest
// are pushed for the log only.
func TestHardProfiles(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	s := kilntest.Start(t)
	c := s.Clients(t, kilntest.NewTenant("peer-hard"))
	for _, row := range pprofRows(t, root, "hard") {
		s.RequireAlive(t)
		t.Run(row.rel, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(root, row.rel))
			if err != nil {
				t.Fatal(err)
			}
			why := upstreamRejection(raw)
			pc, parseErr := loadProfileCase(t, root, row.rel)
			if pc != nil {
				var types []string
				for i, st := range pc.prof.SampleType {
					types = append(types, st.Type+"/"+st.Unit+"="+itoa(pc.expected[i]))
				}
				t.Logf("%s: __name__=%s samples=%d types=%v", pc.rel, pc.name, len(pc.prof.Sample), types)
			}
			if why != "" {
				name := "process_cpu"
				if pc != nil {
					name = pc.name
				}
				for _, tr := range transports {
					service := sanitizeService(tr.name, row.rel)
					out, err := push(t, s, c, tr, name, service, raw)
					switch {
					case err == nil:
						t.Errorf("%s over %s: accepted (HTTP %d), but upstream Pyroscope rejects it with invalid_argument: %s", row.rel, tr.name, out.Status, why)
						if pc != nil {
							t.Logf("%s over %s: accepted anyway; checking what was stored", row.rel, tr.name)
							checkTotals(t, s, c, pc, service)
						}
					case kilntest.ConnectCode(err) != connect.CodeInvalidArgument:
						t.Errorf("%s over %s: code %v (HTTP %d), want invalid_argument (%s): %v", row.rel, tr.name, kilntest.ConnectCode(err), out.Status, why, err)
					default:
						t.Logf("%s over %s: rejected as upstream does (%s): HTTP %d %v", row.rel, tr.name, why, out.Status, err)
					}
				}
				return
			}
			if row.malformed || parseErr != nil {
				// Not asserted: log what the server does with it.
				reason := "MANIFEST marks it MALFORMED"
				if parseErr != nil {
					reason = "profile.Parse rejects it: " + parseErr.Error()
				}
				for _, tr := range transports {
					out, perr := push(t, s, c, tr, "peer_hard", sanitizeService(tr.name, row.rel), raw)
					t.Logf("%s: not checked (%s); informational push over %s: HTTP %d, err=%v", row.rel, reason, tr.name, out.Status, perr)
				}
				return
			}
			for _, tr := range transports {
				service := sanitizeService(tr.name, pc.rel)
				out, err := push(t, s, c, tr, pc.name, service, pc.raw)
				if err != nil {
					t.Errorf("%s: push over %s: HTTP %d: %v", pc.rel, tr.name, out.Status, err)
					continue
				}
				checkTotals(t, s, c, pc, service)
			}
		})
	}
	if code := s.GetReady(t); code != http.StatusOK {
		t.Errorf("GET /ready after the hard files: HTTP %d", code)
	}
}

// malformedInputs returns the inputs every push of which must be rejected.
func malformedInputs(t *testing.T, root string) map[string][]byte {
	t.Helper()
	in := map[string][]byte{}
	for _, rel := range []string{
		"hard/grafana-pyroscope/invalid_utf8.pb.gz",
		"hard/google-pprof/fuzz-crasher-7e3c92482f6f39fc502b822ded792c589849cca8",
		"hard/google-pprof/fuzz-corpus-empty",
		"hard/google-pprof/java.cpu",
		"hard/google-pprof/go.godoc.thread",
	} {
		b, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		in[rel] = b
	}
	good, err := os.ReadFile(filepath.Join(root, "grafana-pyroscope/cpu.pb.gz"))
	if err != nil {
		t.Fatal(err)
	}
	in["truncated gzip (first half of grafana-pyroscope/cpu.pb.gz)"] = good[:len(good)/2]
	// Deterministic garbage; the leading 0x00 is a protobuf tag with field
	// number 0, which every protobuf decoder rejects.
	rng := rand.New(rand.NewPCG(0x6b696c6e, 0x70656572))
	garbage := make([]byte, 4096)
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	garbage[0] = 0x00
	in["random garbage (4096 bytes)"] = garbage
	// Sanity: none of these decodes as a valid profile the way upstream
	// reads it (optional gzip, then google.v1.Profile), except those that
	// upstream rejects in validation (invalid UTF-8) or for being empty.
	var p googlev1.Profile
	if err := proto.Unmarshal(garbage, &p); err == nil {
		t.Fatal("test bug: the garbage decodes as a profile")
	}
	return in
}

// TestMalformedPushes checks that broken inputs are rejected with
// invalid_argument over both transports and that the server keeps serving.
func TestMalformedPushes(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	s := kilntest.Start(t)
	c := s.Clients(t, kilntest.NewTenant("peer-malformed"))
	inputs := malformedInputs(t, root)
	names := make([]string, 0, len(inputs))
	for k := range inputs {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		raw := inputs[name]
		for _, tr := range transports {
			out, err := push(t, s, c, tr, "process_cpu", sanitizeService(tr.name, "malformed"), raw)
			switch {
			case err == nil:
				t.Errorf("%s over %s: accepted (HTTP %d), want invalid_argument", name, tr.name, out.Status)
			case kilntest.ConnectCode(err) != connect.CodeInvalidArgument:
				t.Errorf("%s over %s: code %v (HTTP %d), want invalid_argument: %v", name, tr.name, kilntest.ConnectCode(err), out.Status, err)
			case out.Status != tr.wantHTTP:
				t.Errorf("%s over %s: HTTP %d, want %d: %v", name, tr.name, out.Status, tr.wantHTTP, err)
			default:
				t.Logf("%s over %s: rejected: HTTP %d %v", name, tr.name, out.Status, err)
			}
		}
	}
	if code := s.GetReady(t); code != http.StatusOK {
		t.Fatalf("GET /ready after the malformed pushes: HTTP %d", code)
	}
	pc, err := loadProfileCase(t, root, "grafana-pyroscope/cpu.pb.gz")
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range transports {
		service := sanitizeService(tr.name, "after-malformed")
		if _, err := push(t, s, c, tr, pc.name, service, pc.raw); err != nil {
			t.Fatalf("valid push over %s after the malformed ones: %v", tr.name, err)
		}
		checkTotals(t, s, c, pc, service)
	}
}

// TestConnectErrorShape checks the wire shape of errors outside the
// generated clients.
func TestConnectErrorShape(t *testing.T) {
	_, _ = kilntest.RequireEnv(t)
	s := kilntest.Start(t)
	tenant := kilntest.NewTenant("peer-errors")
	c := s.Clients(t, tenant)

	post := func(path, contentType string, body []byte) (int, http.Header, []byte) {
		t.Helper()
		ctx, cancel := kilntest.ReqCtx(t)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.HTTPURL()+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("X-Scope-OrgID", tenant)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			s.CheckAfterError(t, err)
			t.Fatalf("POST %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, resp.Header, b
	}

	t.Run("push-garbage", func(t *testing.T) {
		status, h, body := post("/push.v1.PusherService/Push", "application/proto", []byte("\x00\x01garbage, not a PushRequest\xff\xff"))
		if status != http.StatusBadRequest {
			t.Errorf("HTTP %d, want 400; body %q", status, body)
		}
		if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type %q, want application/json", ct)
		}
		var e struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(body, &e); err != nil {
			t.Fatalf("body is not JSON: %v: %q", err, body)
		}
		if e.Code != "invalid_argument" || e.Message == "" {
			t.Errorf("body %s, want {\"code\":\"invalid_argument\",\"message\":<non-empty>}", body)
		}
		t.Logf("HTTP %d %s %s", status, h.Get("Content-Type"), body)
	})

	t.Run("unknown-path", func(t *testing.T) {
		status, _, body := post("/foo.Bar/Baz", "application/proto", nil)
		if status != http.StatusNotFound {
			t.Errorf("POST /foo.Bar/Baz: HTTP %d, want 404; body %q", status, body)
		}
	})

	t.Run("grpc-unknown-method", func(t *testing.T) {
		client := connect.NewClient[emptypb.Empty, emptypb.Empty](c.H2C, s.GRPCURL()+"/foo.v1.Foo/Bar", connect.WithGRPC())
		ctx, cancel := kilntest.ReqCtx(t)
		defer cancel()
		_, err := client.CallUnary(ctx, connect.NewRequest(&emptypb.Empty{}))
		if err == nil {
			t.Fatal("unknown gRPC method succeeded")
		}
		s.CheckAfterError(t, err)
		if code := kilntest.ConnectCode(err); code != connect.CodeUnimplemented {
			t.Errorf("unknown gRPC method: code %v, want unimplemented: %v", code, err)
		}
	})

	if code := s.GetReady(t); code != http.StatusOK {
		t.Errorf("GET /ready: HTTP %d", code)
	}
}

func hasDup(s []string) bool {
	seen := map[string]bool{}
	for _, v := range s {
		if seen[v] {
			return true
		}
		seen[v] = true
	}
	return false
}

func itoa(v int64) string {
	b, _ := json.Marshal(v)
	return string(b)
}
