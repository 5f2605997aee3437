package ingesterrors

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"kiln.dev/tests/lib/kilntest"
)

// cell is one documented answer: a code name and/or an HTTP status; skip
// for "-" (the class cannot occur on that path).
type cell struct {
	skip   bool
	code   string
	status int
}

type row struct {
	class string
	cells map[string]cell
}

var (
	codeRe   = regexp.MustCompile("`([a-z_]+)`")
	statusRe = regexp.MustCompile(`\b([1-5][0-9][0-9])\b`)
)

// readTable parses the table between the ingest-errors-table markers of
// docs/api.md.
func readTable(t *testing.T) (cols []string, rows []row) {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	start := strings.Index(text, "<!-- ingest-errors-table -->")
	end := strings.Index(text, "<!-- /ingest-errors-table -->")
	if start < 0 || end < start {
		t.Fatal("docs/api.md has no ingest-errors-table")
	}
	for _, line := range strings.Split(text[start:end], "\n") {
		if !strings.HasPrefix(line, "|") {
			continue
		}
		f := strings.Split(strings.Trim(line, "|"), "|")
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		switch {
		case cols == nil:
			cols = f[2:]
		case strings.HasPrefix(f[0], "---"):
		default:
			r := row{class: strings.Trim(f[0], "`"), cells: map[string]cell{}}
			for i, c := range f[2:] {
				var ce cell
				if c == "-" {
					ce.skip = true
				}
				if m := codeRe.FindStringSubmatch(c); m != nil {
					ce.code = m[1]
				}
				if m := statusRe.FindStringSubmatch(c); m != nil {
					ce.status, _ = strconv.Atoi(m[1])
				}
				if !ce.skip && ce.code == "" && ce.status == 0 {
					t.Fatalf("table row %s column %s: cannot read %q", r.class, cols[i], c)
				}
				r.cells[cols[i]] = ce
			}
			rows = append(rows, r)
		}
	}
	if len(rows) == 0 {
		t.Fatal("empty ingest-errors-table")
	}
	return cols, rows
}

// env holds the servers the provokers use: limits (a tiny rate limit and
// burst, a 1 MiB profile limit, Pyroscope's ingestion window) and busy (a
// 64 MiB in-flight budget, a 48 MiB profile limit).
type env struct {
	limits, busy *kilntest.Server
}

const (
	burstBytes   = 20000   // -distributor.ingestion-burst-size-mb=0.02
	profileLimit = 1 << 20 // -validation.max-profile-size-bytes on limits
	busyBomb     = 40 << 20
)

func startEnv(t *testing.T) *env {
	return &env{
		limits: kilntest.Start(t, kilntest.OTLPOff(), kilntest.Args(
			"-distributor.ingestion-rate-limit-mb=0.0001", "-distributor.ingestion-burst-size-mb=0.02",
			"-validation.max-profile-size-bytes=1MiB",
			"-validation.reject-older-than=1h", "-validation.reject-newer-than=10m")),
		busy: kilntest.Start(t, kilntest.OTLPOff(), kilntest.Args(
			"-server.max-inflight-bytes=64MiB", "-validation.max-profile-size-bytes=48MiB")),
	}
}

// provoke sends what makes class happen on path col and returns the answer
// that should carry the documented code (the last one sent).
func (e *env) provoke(t *testing.T, class, col string) result {
	tenant := kilntest.NewTenant("err-" + strings.ReplaceAll(class, "_", "-"))
	now := time.Now()
	s := e.limits
	send := func(pprof []byte, foldedBody []byte, otlpReq func() []byte, labels ...string) result {
		switch col {
		case "push gRPC":
			return pushGRPC(t, s, tenant, pushRequest(pprof, labels...))
		case "push Connect":
			return pushConnect(t, s, tenant, pushRequest(pprof, labels...))
		case "/ingest":
			return ingest(t, s, tenant, url.Values{"name": {"errors.cpu"}}.Encode(), foldedBody)
		case "OTLP gRPC", "OTLP/HTTP":
			req := otlpReq()
			if col == "OTLP/HTTP" {
				return otlpHTTP(t, s, tenant, req)
			}
			return otlpGRPC(t, s, tenant, decodeOTLP(t, req))
		}
		t.Fatalf("unknown column %q", col)
		return result{}
	}
	otlpN := func(n int) func() []byte {
		return func() []byte { return marshal(t, otlpOne(t, n, nil)) }
	}
	switch class {
	case "rate_limited": // two pushes of ~12 KB each under a 20 KB burst
		p := pprofProfile(t, 100, 100, now)
		if r := send(p, folded(12000), otlpN(1200)); r.code != "ok" && r.status != 200 {
			t.Errorf("%s %s: the first push within the burst failed: %v", class, col, r)
		}
		return send(p, folded(12000), otlpN(1200))
	case "over_burst": // ~30 KB, more than the 20 KB burst
		return send(pprofProfile(t, 250, 100, now), folded(30000), otlpN(3000))
	case "too_large": // more than the 1 MiB profile limit after decompression
		bomb := zeroBomb(t, 2*profileLimit)
		switch col {
		case "/ingest":
			return ingest(t, s, tenant, url.Values{"name": {"errors.cpu"}}.Encode(),
				gzipBytes(t, folded(2*profileLimit)), "Content-Encoding", "gzip")
		case "OTLP gRPC", "OTLP/HTTP":
			return send(nil, nil, otlpN(200000))
		}
		return send(bomb, nil, nil)
	case "too_old", "too_new":
		ts := now.Add(-2 * time.Hour)
		if class == "too_new" {
			ts = now.Add(time.Hour)
		}
		q := url.Values{"name": {"errors.cpu"}, "from": {strconv.FormatInt(ts.Unix(), 10)},
			"until": {strconv.FormatInt(ts.Unix()+10, 10)}}
		if col == "/ingest" {
			return ingest(t, s, tenant, q.Encode(), folded(100))
		}
		return send(pprofProfile(t, 3, 10, ts), nil, func() []byte {
			return marshal(t, otlpOne(t, 0, func(r *collOTLP) { otlpProfile(r).TimeUnixNano = uint64(ts.UnixNano()) }))
		})
	case "invalid_labels": // a newline in a label value
		if col == "/ingest" {
			return ingest(t, s, tenant, url.Values{"name": {"errors.cpu{k=a\nb}"}}.Encode(), folded(100))
		}
		return send(pprofProfile(t, 3, 10, now), nil, func() []byte {
			return marshal(t, otlpOne(t, 0, func(r *collOTLP) { addResourceAttr(r, "host.name", "a\nb") }))
		}, "k", "a\nb")
	case "malformed":
		garbage := []byte{0xff, 0xff, 0xff, 0x01}
		switch col {
		case "/ingest":
			return ingest(t, s, tenant, url.Values{"name": {"errors.cpu"}, "format": {"pprof"}}.Encode(), garbage)
		case "OTLP/HTTP":
			return otlpHTTP(t, s, tenant, garbage)
		case "OTLP gRPC": // a request whose dictionary is missing
			return otlpGRPC(t, s, tenant, otlpOne(t, 0, func(r *collOTLP) { r.Dictionary = nil }))
		}
		return send(garbage, nil, nil)
	case "unsupported_encoding":
		br := []string{"Content-Encoding", "br"}
		switch col {
		case "push Connect":
			return pushConnect(t, s, tenant, pushRequest(pprofProfile(t, 3, 10, now)), br...)
		case "/ingest":
			return ingest(t, s, tenant, url.Values{"name": {"errors.cpu"}}.Encode(), folded(100), br...)
		case "OTLP/HTTP":
			return otlpHTTP(t, s, tenant, marshal(t, otlpOne(t, 0, nil)), br...)
		}
	case "server_busy":
		return e.provokeBusy(t, tenant, col)
	}
	t.Fatalf("no way to provoke %s on %s", class, col)
	return result{}
}

// provokeBusy sends rounds of 8 parallel 40 MiB decompressions to the
// 64 MiB budget until one is refused as busy (at most 10 rounds).
func (e *env) provokeBusy(t *testing.T, tenant, col string) result {
	bomb := zeroBomb(t, busyBomb)
	s := e.busy
	one := func() result {
		switch col {
		case "push gRPC":
			return pushGRPC(t, s, tenant, pushRequest(bomb))
		case "push Connect":
			return pushConnect(t, s, tenant, pushRequest(bomb))
		case "/ingest":
			return ingest(t, s, tenant, url.Values{"name": {"errors.cpu"}}.Encode(), bomb, "Content-Encoding", "gzip")
		case "OTLP/HTTP":
			return otlpHTTP(t, s, tenant, bomb, "Content-Encoding", "gzip")
		}
		t.Fatalf("no busy provoker for %s", col)
		return result{}
	}
	var last result
	for round := 0; round < 10; round++ {
		var mu sync.Mutex
		var wg sync.WaitGroup
		var busy *result
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := one()
				mu.Lock()
				defer mu.Unlock()
				last = r
				if busy == nil && (r.code == "resource_exhausted" || r.status == 429) {
					busy = &r
				}
			}()
		}
		wg.Wait()
		if busy != nil {
			t.Logf("server_busy %s: refused in round %d", col, round)
			return *busy
		}
	}
	return last
}

// causes are words the message of each class names (so a row is not
// passed by a different failure with the same code).
var causes = map[string]string{
	"rate_limited": "rate limit", "server_busy": "max-inflight-bytes", "over_burst": "burst",
	"too_large": "limit of", "too_old": "too old", "too_new": "future",
	"invalid_labels": "control characters", "malformed": "", "unsupported_encoding": "encoding",
}

// TestErrorTable provokes every cell of docs/api.md's "Ingest errors"
// table and asserts the documented code and status; then both servers
// must still be alive and ready.
func TestErrorTable(t *testing.T) {
	kilntest.RequireEnv(t)
	cols, rows := readTable(t)
	e := startEnv(t)
	for _, r := range rows {
		for _, col := range cols {
			want := r.cells[col]
			if want.skip {
				continue
			}
			t.Run(fmt.Sprintf("%s/%s", r.class, col), func(t *testing.T) {
				got := e.provoke(t, r.class, col)
				ok := (want.code == "" || got.code == want.code) && (want.status == 0 || got.status == want.status) &&
					strings.Contains(strings.ToLower(got.msg), strings.ToLower(causes[r.class]))
				if !ok {
					t.Errorf("got %v, the table says code=%q status=%d", got, want.code, want.status)
				} else {
					t.Logf("%v", got)
				}
			})
		}
	}
	e.limits.RequireAlive(t)
	e.busy.RequireAlive(t)
	if e.limits.ReadyStatus() != 200 || e.busy.ReadyStatus() != 200 {
		t.Error("a server is not ready after the table")
	}
}
