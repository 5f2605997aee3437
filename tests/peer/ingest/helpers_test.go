package ingest

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"connectrpc.com/connect"

	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"kiln.dev/tests/lib/kilntest"
)

// cpuPeriod is the period Pyroscope gives cpu and wall samples at the
// default sampleRate of 100: 1e9/100 ns.
const cpuPeriod = int64(1e9 / 100)

const (
	typeCPU  = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
	typeWall = "wall:wall:nanoseconds:cpu:nanoseconds"
)

// startServer starts kiln (kilntest.Start) with extra flags and the OTLP
// gRPC listener off, so that parallel test servers do not compete for it.
func startServer(t *testing.T, extra ...string) *kilntest.Server {
	t.Helper()
	return kilntest.Start(t, kilntest.OTLPOff(), kilntest.Args(extra...))
}

// manifestFiles returns the test data files (relative to root) whose
// MANIFEST.md format column is format, from the top level and hard/.
func manifestFiles(t *testing.T, root, format string) []string {
	t.Helper()
	var out []string
	for _, dir := range []string{"", "hard"} {
		lines, err := kilntest.ReadLines(filepath.Join(root, dir, "MANIFEST.md"))
		if err != nil {
			t.Fatalf("manifest: %v", err)
		}
		for _, line := range lines {
			cols := strings.Split(line, "|")
			if !strings.HasPrefix(line, "| `") || len(cols) < 6 {
				continue
			}
			if strings.TrimSpace(cols[4]) == format {
				out = append(out, path.Join(dir, strings.Trim(strings.TrimSpace(cols[1]), "`")))
			}
		}
	}
	return out
}

func readFile(t *testing.T, root, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// text decodes a UTF-16 file with a BOM; other bytes are returned as text.
func text(b []byte) string {
	if len(b) >= 2 && (b[0] == 0xff && b[1] == 0xfe || b[0] == 0xfe && b[1] == 0xff) {
		order := binary.ByteOrder(binary.LittleEndian)
		if b[0] == 0xfe {
			order = binary.BigEndian
		}
		u := make([]uint16, 0, len(b)/2)
		for i := 2; i+1 < len(b); i += 2 {
			u = append(u, order.Uint16(b[i:]))
		}
		return string(utf16.Decode(u))
	}
	return string(b)
}

// foldedTotal sums the count after the last space of every line, the way
// Pyroscope's ParseGroups reads folded stacks (lines without a space are
// skipped). ok is false when some line's count is not an integer.
func foldedTotal(b []byte) (total int64, lines int, ok bool) {
	for _, line := range strings.Split(text(b), "\n") {
		line = strings.TrimRight(line, "\r")
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseInt(line[i+1:], 10, 64)
		if err != nil {
			return 0, 0, false
		}
		total += v
		lines++
	}
	return total, lines, true
}

func gzipBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ingestResp is what /ingest answered.
type ingestResp struct {
	status int
	body   string
}

// post sends body to path (default /ingest) with the query q, as the
// client's tenant.
func post(t *testing.T, s *kilntest.Server, c *kilntest.Clients, path string, q url.Values, contentType string, body []byte) ingestResp {
	t.Helper()
	if path == "" {
		path = "/ingest"
	}
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.HTTPURL()+path+"?"+q.Encode(), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		s.RequireAlive(t)
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return ingestResp{resp.StatusCode, strings.TrimSpace(string(b))}
}

// total runs SelectMergeStacktraces for typeID and selector over
// [start, end] (ms) and returns the flame graph total.
func total(t *testing.T, s *kilntest.Server, c *kilntest.Clients, typeID, selector string, start, end int64) int64 {
	t.Helper()
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	maxNodes := int64(1 << 20)
	resp, err := c.Query.SelectMergeStacktraces(ctx, connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
		ProfileTypeID: typeID,
		LabelSelector: selector,
		Start:         start,
		End:           end,
		MaxNodes:      &maxNodes,
	}))
	if err != nil {
		s.CheckAfterError(t, err)
		t.Errorf("SelectMergeStacktraces(%s, %s, %d, %d): %v", typeID, selector, start, end, err)
		return -1
	}
	return resp.Msg.GetFlamegraph().GetTotal()
}

// labelValues returns the values of label name among the series matching
// selector.
func labelValues(t *testing.T, s *kilntest.Server, c *kilntest.Clients, name, selector string) []string {
	t.Helper()
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	resp, err := c.Query.LabelValues(ctx, connect.NewRequest(&typesv1.LabelValuesRequest{
		Name:     name,
		Matchers: []string{selector},
		Start:    1,
		End:      time.Now().Add(time.Hour).UnixMilli(),
	}))
	if err != nil {
		s.CheckAfterError(t, err)
		t.Errorf("LabelValues(%s, %s): %v", name, selector, err)
		return nil
	}
	return resp.Msg.GetNames()
}

// wideWindow is a query window that holds any profile of the test data.
func wideWindow() (int64, int64) {
	return 1, time.Now().Add(time.Hour).UnixMilli()
}

// sanitize turns a file path into an app-name part ([A-Za-z0-9_-]).
func sanitize(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}
