package sweep

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/pprof/profile"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"google.golang.org/protobuf/proto"

	"kiln.dev/tests/lib/kilntest"
)

// TestSweepFindings replays, one by one, the requests the sweep found
// crashing or hanging the server at f6ae369 (the UBSan aborts only fail
// against the ASan build, as ctest runs it in make test), each with the
// answer it must get now.
func TestSweepFindings(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	s := kilntest.Start(t, kilntest.OTLPOff(), kilntest.LogLevel("error"))
	w := newWorld(t, s, root)
	c := w.clients()
	q := c.query["connect-proto"]
	p := kilntest.LoadProfile(t, root, "grafana-pyroscope/profile_python")
	ctx, cancel := reqCtx(t.Context(), w.tenants[0], false)
	defer cancel()
	if _, err := c.push.Push(ctx, connect.NewRequest(pushOne(p, "regress"))); err != nil {
		t.Fatalf("push: %v", err)
	}
	typeID, now := p.TypeIDs[0], time.Now().UnixMilli()
	expect := func(what string, err error, want connect.Code) {
		t.Helper()
		if got := kilntest.ConnectCode(err); err != nil && got != want || err == nil && want != 0 {
			s.CheckAfterError(t, err)
			t.Errorf("%s: %v, want code %v", what, err, want)
		}
	}

	// Nanoseconds where ms are due: start*1e6 overflowed int64 in the
	// merged profile's time (UBSan: signed integer overflow, pprof_out.c).
	_, err := q.SelectMergeProfile(ctx, connect.NewRequest(&querierv1.SelectMergeProfileRequest{
		ProfileTypeID: typeID, LabelSelector: "{}", Start: 1e6, End: now * 1e6}))
	expect("SelectMergeProfile with ns times", err, 0)

	// Nothing matched: qsort(NULL, 0) (UBSan: null pointer, timeseries.c).
	_, err = q.SelectSeries(ctx, connect.NewRequest(&querierv1.SelectSeriesRequest{
		ProfileTypeID: typeID, LabelSelector: `{service_name="none"}`, Start: 1, End: now, Step: 3600}))
	expect("SelectSeries matching nothing", err, 0)

	// end - start overflowed int64 (UBSan), and the steps were computed
	// from the wrapped length: now the length and steps are unsigned, and
	// the widest range is answered.
	for _, r := range []proto.Message{
		&querierv1.SelectSeriesRequest{ProfileTypeID: typeID, Start: math.MinInt64, End: math.MaxInt64, Step: 1e15},
		&querierv1.SelectHeatmapRequest{ProfileTypeID: typeID, Start: math.MinInt64, End: math.MaxInt64, Step: 1e15},
		&querierv1.SelectMergeStacktracesRequest{ProfileTypeID: typeID, Start: math.MinInt64, End: math.MaxInt64},
	} {
		expect("range [MinInt64, MaxInt64] "+describe(r), callQuery(ctx, q, r), 0)
	}

	// A step past int64 ms: llround gave INT64_MIN, the step became 1 ms
	// and the slots of [1, 2^63-2] were allocated (an abort, also in the
	// release build: kiln_xcalloc gives up).
	for _, r := range []proto.Message{
		&querierv1.SelectSeriesRequest{ProfileTypeID: typeID, Start: 1, End: math.MaxInt64 - 1, Step: math.MaxFloat64},
		&querierv1.SelectHeatmapRequest{ProfileTypeID: typeID, Start: 1, End: math.MaxInt64 - 1, Step: math.MaxFloat64},
	} {
		expect("huge step "+describe(r), callQuery(ctx, q, r), 0)
	}

	// from/until far apart: until - from overflowed (UBSan) in /ingest.
	r, body := w.post(t.Context(), w.ingestTenant, http.MethodPost,
		"/ingest?name=regress.cpu&from=now-9999999999h&until=9223372036854775807", "", []byte(foldedBody), nil)
	if r.verdict() != "" {
		s.RequireAlive(t)
		t.Errorf("/ingest from=now-9999999999h: %s", r.verdict())
	}

	// Sample values near the int64 limits: their sums overflowed (UBSan)
	// in the head's profile total, the merged tree, the flame graph's x
	// positions, the DOT graph and, at the flush on SIGTERM (the cleanup),
	// the block's per-node sums and gcd.
	ext, err := profile.ParseData(p.Raw)
	if err != nil {
		t.Fatal(err)
	}
	for i, smp := range ext.Sample {
		for k := range smp.Value {
			smp.Value[k] = []int64{math.MaxInt64, math.MinInt64, math.MaxInt64 / 2}[i%3]
		}
	}
	var raw bytes.Buffer
	if err := ext.Write(&raw); err != nil {
		t.Fatal(err)
	}
	extreme := *p
	extreme.Raw = raw.Bytes()
	_, err = c.push.Push(ctx, connect.NewRequest(pushOne(&extreme, "extreme")))
	expect("push of extreme values", err, 0)
	for _, f := range []querierv1.ProfileFormat{querierv1.ProfileFormat_PROFILE_FORMAT_FLAMEGRAPH,
		querierv1.ProfileFormat_PROFILE_FORMAT_TREE, querierv1.ProfileFormat_PROFILE_FORMAT_DOT} {
		_, err = q.SelectMergeStacktraces(ctx, connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
			ProfileTypeID: typeID, LabelSelector: "{}", Start: 1, End: now, Format: f}))
		expect("merge of extreme values "+f.String(), err, 0)
	}
	side := &querierv1.SelectMergeStacktracesRequest{ProfileTypeID: typeID, LabelSelector: "{}", Start: 1, End: now}
	_, err = q.Diff(ctx, connect.NewRequest(&querierv1.DiffRequest{Left: side, Right: side}))
	if code := kilntest.ConnectCode(err); err != nil && code != connect.CodeInvalidArgument {
		t.Errorf("Diff of extreme values: %v", err) // negative sides are refused, as upstream does
	}
	for _, f := range []string{"json", "dot"} {
		r, body := w.post(t.Context(), w.tenants[0], http.MethodGet, "/pyroscope/render?from=1&until=now&format="+f+
			"&query="+typeID+"%7Bservice_name%3D%22extreme%22%7D", "", nil, nil)
		if r.err != nil {
			s.RequireAlive(t)
			t.Errorf("render %s of extreme values: %v %.200q", f, r.err, body)
		}
	}

	// 2000 query arguments (an 8 KB URL) exhausted libmicrohttpd's 32 KiB
	// connection pool: no answer until the connection timed out.
	path := "/pyroscope/label-values?label=service_name" + strings.Repeat("&a=1", 2000)
	r, body = w.post(t.Context(), w.tenants[0], http.MethodGet, path, "", nil, nil)
	if r.err != nil || r.http != http.StatusOK || !strings.Contains(string(body), "regress") {
		s.RequireAlive(t)
		t.Errorf("GET /pyroscope/label-values with 2000 arguments: HTTP %d %q: %v", r.http, body, r.err)
	}
	// 20,000 query arguments exhausted even the 1 MiB pool, and
	// libmicrohttpd then never answered; past 4096 they are refused (414).
	path = "/pyroscope/label-values?label=service_name" + strings.Repeat("&a=1", 20000)
	r, body = w.post(t.Context(), w.tenants[0], http.MethodGet, path, "", nil, nil)
	if r.http != http.StatusRequestURITooLong {
		s.RequireAlive(t)
		t.Errorf("GET /pyroscope/label-values with 20000 arguments: HTTP %d %q: %v", r.http, body, r.err)
	}
	// A legacy route asked with a method it does not serve: 405, naming
	// the ones it does.
	for _, route := range []string{"/pyroscope/render", "/pyroscope/render-diff", "/pyroscope/label-values"} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodDelete, s.HTTPURL()+route, nil)
		resp, err := kilntest.TenantClient(t, w.tenants[0]).Do(req)
		if err != nil {
			s.RequireAlive(t)
			t.Fatalf("DELETE %s: %v", route, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, POST" {
			t.Errorf("DELETE %s: HTTP %d Allow %q, want 405 with Allow: GET, POST", route, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
	// A 100 KB selector in a URL (Go's net/http, as Pyroscope uses, reads
	// up to 1 MB of headers).
	path = "/pyroscope/render?query=" + typeID + "%7Bservice_name%3D%22" + strings.Repeat("x", 100<<10) + "%22%7D&from=1&until=now"
	r, body = w.post(t.Context(), w.tenants[0], http.MethodGet, path, "", nil, nil)
	if r.err != nil || r.http != http.StatusOK {
		s.RequireAlive(t)
		t.Errorf("GET /pyroscope/render with a 100 KB selector: HTTP %d %.200q: %v", r.http, body, r.err)
	}
	// A 4 MB URL is past the limit: 414, and the client reads it whole,
	// ending in a clean close. The server drains what it did not read
	// before closing (a lingering close); closing with bytes unread resets
	// the connection, and a client still writing loses the answer.
	for i := 0; i < 3; i++ { // a reset races with the client's write: three tries
		if got, err := oversizedRequest(s.HTTPURL(), 4<<20); err != nil || !strings.HasPrefix(got, "HTTP/1.1 414") {
			s.RequireAlive(t)
			t.Errorf("a 4 MB request line: answer %.80q, %v; want 414 and a clean close", got, err)
			break
		}
	}
	s.RequireAlive(t)
}

// oversizedRequest sends a GET whose URL has n bytes on a connection of its
// own and reads the answer to its end: what came, and the first error of
// the write (the whole request) and of the read (nil for a clean close).
func oversizedRequest(base string, n int) (string, error) {
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	wrote := make(chan error, 1)
	go func() { // the server answers before it has read it all
		_, err := conn.Write([]byte("GET /pyroscope/render?query=" + strings.Repeat("x", n) + " HTTP/1.1\r\nHost: k\r\n\r\n"))
		wrote <- err
	}()
	got, err := io.ReadAll(conn)
	if werr := <-wrote; werr != nil {
		return string(got), fmt.Errorf("writing the request: %w", werr)
	}
	return string(got), err
}

// pushOne is a push of p as service.
func pushOne(p *kilntest.Profile, service string) *pushv1.PushRequest {
	return &pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
		Labels: []*typesv1.LabelPair{{Name: "__name__", Value: p.Name}, {Name: "service_name", Value: service},
			{Name: "__delta__", Value: "false"}},
		Samples: []*pushv1.RawSample{{RawProfile: p.Raw}},
	}}}
}
