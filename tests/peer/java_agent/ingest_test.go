package javaagent

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"connectrpc.com/connect"

	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"kiln.dev/tests/lib/kilntest"
)

// wallTotal is wall.jfr's wall time at 100 Hz (test_jfr prints the same).
const wallTotal = 262460000000

func testdata(t *testing.T, rel string) []byte {
	t.Helper()
	root := os.Getenv("KILN_TESTDATA")
	if root == "" {
		root = filepath.Join("..", "..", "..", "..", "shared", "testdata")
	}
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ingest posts body to /ingest?format=jfr for app and returns the status
// and the answer.
func ingest(t *testing.T, s *kilntest.Server, app string, body []byte, encoding string) (int, string) {
	t.Helper()
	now := time.Now().Unix()
	q := url.Values{"name": {app}, "format": {"jfr"}, "sampleRate": {"100"}, "spyName": {"javaspy"},
		"from": {fmt.Sprint(now - 10)}, "until": {fmt.Sprint(now)}}
	req, err := http.NewRequest(http.MethodPost, s.HTTPURL()+"/ingest?"+q.Encode(), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(msg)
}

// TestJFRBodies: a recording as a plain body, gzip without a header, and
// with Content-Encoding: gzip, all give the same wall profile.
func TestJFRBodies(t *testing.T) {
	kilntest.RequireBin(t)
	s, q := startKiln(t)
	gz := testdata(t, "grafana-jfr-parser/wall.jfr.gz")
	bodies := map[string]struct {
		body     []byte
		encoding string
	}{
		"raw":             {gunzip(t, gz), ""},
		"gzip":            {gz, ""},
		"encoding-header": {gz, "gzip"},
	}
	for name, b := range bodies {
		if code, msg := ingest(t, s, "kiln-jfr-"+name, b.body, b.encoding); code != http.StatusOK {
			t.Fatalf("%s: status %d: %s", name, code, msg)
		}
	}
	start, end := time.Now().Add(-time.Hour).UnixMilli(), time.Now().Add(time.Hour).UnixMilli()
	for name := range bodies {
		ctx, cancel := kilntest.ReqCtx(t)
		resp, err := q.SelectMergeStacktraces(ctx, connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
			ProfileTypeID: "wall:wall:nanoseconds:wall:nanoseconds",
			LabelSelector: `{service_name="kiln-jfr-` + name + `",jfr_event="wall",pyroscope_spy="javaspy"}`,
			Start:         start, End: end,
		}))
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := resp.Msg.GetFlamegraph().GetTotal(); got != wallTotal {
			t.Errorf("%s: wall total %d, want %d", name, got, wallTotal)
		}
	}
}

// TestMalformedJFR: a cut recording and a non-recording are 422 with a
// message, and nothing of them is stored.
func TestMalformedJFR(t *testing.T) {
	kilntest.RequireBin(t)
	s, q := startKiln(t)
	raw := gunzip(t, testdata(t, "grafana-jfr-parser/example.jfr.gz"))
	for name, body := range map[string][]byte{
		"kiln-jfr-cut":     raw[:len(raw)*2/3],
		"kiln-jfr-garbage": []byte("not a flight recording"),
		"kiln-jfr-padded":  append(slices.Clone(raw), 0, 0, 0, 0),
	} {
		code, msg := ingest(t, s, name, body, "")
		t.Logf("%s: %d %s", name, code, msg)
		if code != http.StatusUnprocessableEntity || msg == "" {
			t.Errorf("%s: status %d (%q), want 422 with a message", name, code, msg)
		}
	}
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	resp, err := q.LabelValues(ctx, connect.NewRequest(&typesv1.LabelValuesRequest{
		Name: "service_name", Start: time.Now().Add(-time.Hour).UnixMilli(), End: time.Now().Add(time.Hour).UnixMilli(),
	}))
	if err != nil {
		t.Fatal(err)
	}
	if names := resp.Msg.GetNames(); len(names) != 0 {
		t.Errorf("service names after only malformed uploads: %q, want none", names)
	}
}
