package sweep

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"google.golang.org/protobuf/proto"

	"kiln.dev/tests/lib/kilntest"
)

// ingestTenant is where the ingest sweep writes: its own tenant, or a
// malformed one, never the tenants whose data must stay intact.
func (g *gen) ingestTenant() string {
	if g.p(0.1) {
		return g.pick([]string{"", "|", "a|b", "..", "x\ty", strings.Repeat("t", 200), "bad/tenant"})
	}
	return g.w.ingestTenant
}

// gz gzips b.
func gz(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

// rawProfile is a push's raw_profile: a valid file, cut, flipped,
// garbage, empty, gzip of garbage.
func (g *gen) rawProfile() []byte {
	valid := g.w.pprofRaw[g.n(len(g.w.pprofRaw))]
	switch g.n(10) {
	case 0:
		return nil
	case 1:
		return gz(g.garbage(nil))
	case 2:
		return g.garbage(valid)
	case 3, 4:
		return g.mutatePprof()
	default:
		return valid
	}
}

// pushLabels is a push's series labels, mostly valid with dotted and
// UTF-8 names, sometimes broken (no __name__, duplicates, control
// characters, huge, invalid UTF-8 which goes out loosely encoded).
func (g *gen) pushLabels() []*typesv1.LabelPair {
	ls := []*typesv1.LabelPair{{Name: "__name__", Value: g.pick([]string{"process_cpu", "memory", "wall", "x.y", "", "ünï"})},
		{Name: "service_name", Value: "sweep-push-" + strconv.Itoa(g.n(4))}}
	for k := g.n(4); k > 0; k-- {
		if g.p(0.7) { // valid: legacy, dotted and UTF-8 names, UTF-8 values
			ls = append(ls, &typesv1.LabelPair{
				Name:  g.pick([]string{"env", "k8s.pod.name", "host.name", "région", "名前", "a-b", "thread_name", "pod"}),
				Value: g.pick([]string{"h1", "ünï", "名前", "a.b", "x y", "*", strconv.Itoa(g.n(5))})})
			continue
		}
		ls = append(ls, &typesv1.LabelPair{Name: g.labelName(), Value: g.labelValue()})
	}
	if g.p(0.03) {
		for k := 0; k < 40; k++ {
			ls = append(ls, &typesv1.LabelPair{Name: fmt.Sprintf("l%d", k), Value: "v"})
		}
	}
	if g.p(0.05) {
		ls = ls[1:]
	}
	return ls
}

func (g *gen) pushRequest() *pushv1.PushRequest {
	req := &pushv1.PushRequest{}
	for k := 1 + g.n(3); k > 0; k-- {
		se := &pushv1.RawProfileSeries{Labels: g.pushLabels()}
		for j := 1 + g.n(2); j > 0; j-- {
			id := kilntest.NewUUID()
			if g.p(0.1) {
				id = g.pick([]string{"", "not-a-uuid", huge})
			}
			se.Samples = append(se.Samples, &pushv1.RawSample{RawProfile: g.rawProfile(), ID: id})
		}
		req.Series = append(req.Series, se)
	}
	return req
}

// attime is a from/until value: epoch in s, ms, µs or ns, dates, now-,
// absurd and malformed.
func (g *gen) attime() string {
	now := time.Now()
	return g.pick([]string{"", "now", "now-1h", "now-100y", "now-", "now+1h", "0", "-1", "1",
		strconv.FormatInt(now.Unix(), 10), strconv.FormatInt(now.UnixMilli(), 10), strconv.FormatInt(now.UnixNano(), 10),
		"99999999999999999999", "9223372036854775807", "-9223372036854775808", "20060102", "2006010", "abc", "1e9",
		"now-9999999999h", "now-1x"})
}

// appName is an /ingest name: with dotted and UTF-8 tags, every suffix,
// malformed.
func (g *gen) appName() string {
	suffix := g.pick([]string{"cpu", "itimer", "wall", "alloc_objects", "alloc_space", "inuse_objects", "inuse_space",
		"goroutines", "mutex_count", "mutex_duration", "block_count", "block_duration", "unknown", ""})
	base := g.pick([]string{"sweep-ing", "app", "ünï", "", "a b", huge[:300]}) + "." + suffix
	switch g.n(8) {
	case 0:
		return g.pick([]string{"", "{", "}", "app{", "app{a=}", "app{=b}", "app{a=b", "app{a=b}}", ".cpu", "app.cpu{,}",
			"app.cpu{__name__=x}", "app.cpu{a=b,a=c}", "app.cpu{a=\x00}", "app.cpu{a=\n}", huge})
	case 1, 2:
		return base
	default:
		var tags []string
		for k := 1 + g.n(3); k > 0; k-- {
			tags = append(tags, g.pick([]string{"host.name", "k8s.pod.name", "région", "env", "__session_id__", "__x", "a-b"})+
				"="+g.pick([]string{"h1", "ünï", "名前", "", "a.b", "x y"}))
		}
		return base + "{" + strings.Join(tags, ",") + "}"
	}
}

// foldedText is a folded or lines body: valid, negative, huge or missing
// counts, NUL bytes, CRLF, UTF-16.
func (g *gen) foldedText() []byte {
	switch g.n(8) {
	case 0:
		return nil
	case 1:
		return []byte("a;b -5\nc 3\n") // negative counts: item 7
	case 2:
		return []byte("a;b 99999999999999999999\na 9223372036854775807\na 9223372036854775807\n")
	case 3:
		return []byte("a;\x00;b 1\n;;; 2\n  \n\r\na;b\r\n x\n")
	case 4:
		return []byte(strings.Repeat("f;", 5000) + "leaf 1\n")
	default:
		return []byte(foldedBody)
	}
}

// ingestBody is an /ingest body for format, and its content type.
func (g *gen) ingestBody(format string) ([]byte, string) {
	switch format {
	case "pprof":
		return g.rawProfile(), g.pick([]string{"", "application/octet-stream"})
	case "speedscope":
		return []byte(g.pick([]string{`{"$schema":"https://www.speedscope.app/file-format-schema.json","shared":{"frames":[{"name":"a"},{"name":"b"}]},"profiles":[{"type":"sampled","name":"p","unit":"none","startValue":0,"endValue":3,"samples":[[0,1],[0]],"weights":[2,1]}]}`,
			`{}`, `[]`, `{"shared":{"frames":[]},"profiles":[{"type":"sampled","samples":[[5]],"weights":[1]}]}`, `{"profiles":[{"type":"evented","events":[{"type":"O","frame":9,"at":1}]}]}`, "nul\x00", ""})), "application/json"
	case "jfr", "trie", "tree":
		return g.garbage(nil), "binary/octet-stream"
	case "multipart":
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		if g.p(0.8) {
			pw, _ := mw.CreateFormFile("profile", "profile.pprof")
			_, _ = pw.Write(g.rawProfile())
		}
		if g.p(0.5) {
			pw, _ := mw.CreateFormFile("sample_type_config", "sample_type_config.json")
			_, _ = pw.Write([]byte(g.pick([]string{`{"cpu":{"units":"nanoseconds"}}`, `null`, `{`, `{"x":null}`, `[]`})))
		}
		_ = mw.Close()
		b := buf.Bytes()
		if g.p(0.2) {
			b = g.garbage(b)
		}
		return b, mw.FormDataContentType()
	default:
		return g.foldedText(), g.pick([]string{"", "text/plain", "binary/octet-stream"})
	}
}

// sendIngest sends one generated write: push.v1 (Connect proto, JSON,
// gRPC), /ingest in every format, OTLP/HTTP and OTLP gRPC.
func (w *world) sendIngest(parent context.Context, c *clients, ta *tally, seed uint64, i int) {
	g := newGen(seed, 2, i, w)
	tenant := g.ingestTenant()
	ctx, cancel := reqCtx(parent, tenant, false)
	defer cancel()
	var status int
	ctx = context.WithValue(ctx, statusKey{}, &status)
	t0 := time.Now()
	switch g.n(10) {
	case 0, 1, 2: // push.v1
		req := g.pushRequest()
		kind := g.pick([]string{"connect-proto", "connect-json", "grpc"})
		what := fmt.Sprintf("#%d seed %d push %s tenant=%q %d series", i, seed, kind, tenant, len(req.Series))
		var err error
		if _, merr := proto.Marshal(req); merr != nil || g.p(0.1) {
			kind = "loose-" + strings.TrimSuffix(kind, "-json")
			err = w.rawCall(ctx, strings.TrimPrefix(kind, "loose-"), "/push.v1.PusherService/Push", looseMarshal(req))
		} else {
			pc := map[string]interface {
				Push(context.Context, *connect.Request[pushv1.PushRequest]) (*connect.Response[pushv1.PushResponse], error)
			}{"connect-proto": c.push, "connect-json": c.pushJSON, "grpc": c.pushGRPC}[kind]
			_, err = pc.Push(ctx, connect.NewRequest(req))
		}
		ta.add("push "+kind, what, connectResult(status, err, time.Since(t0)))
	case 3, 4, 5, 6: // /ingest
		format := g.pick([]string{"", "", "folded", "lines", "pprof", "pprof", "multipart", "speedscope", "jfr", "trie", "tree", "xyz"})
		body, ct := g.ingestBody(format)
		q := url.Values{"name": {g.appName()}}
		for _, k := range []string{"from", "until"} {
			if g.p(0.7) {
				q.Set(k, g.attime())
			}
		}
		if g.p(0.4) {
			// Bad rates must be refused (400), good ones stored.
			q.Set("sampleRate", g.pick([]string{"100", "0", "-1", "abc", "1e9", "18446744073709551616", "1000000000000"}))
		}
		if g.p(0.3) {
			q.Set("spyName", g.pick([]string{"gospy", "pyspy", "rbspy", "dotnetspy", "ebpfspy", "ünï", ""}))
		}
		if g.p(0.2) {
			q.Set("units", g.pick([]string{"samples", "objects", "bytes", "x"}))
			q.Set("aggregationType", g.pick([]string{"sum", "average", "x"}))
		}
		if format != "" && format != "multipart" {
			q.Set("format", format)
		}
		h := http.Header{}
		if g.p(0.15) {
			// A gzip body on /ingest is decoded (or refused past its cap).
			body = gz(body)
			h.Set("Content-Encoding", "gzip")
		}
		path := g.pick([]string{"/ingest", "/ingest", "/pyroscope/ingest"})
		what := fmt.Sprintf("#%d seed %d POST %s?%s tenant=%q content-type=%q encoding=%q body=%.200q",
			i, seed, path, trunc(q.Encode(), 300), tenant, ct, h.Get("Content-Encoding"), body)
		r, _ := w.post(parent, tenant, http.MethodPost, path+"?"+q.Encode(), ct, body, h)
		ta.add("POST /ingest "+format, what, r)
	case 7, 8: // OTLP/HTTP
		body := w.otlpBin
		ct := g.pick([]string{"application/x-protobuf", "application/protobuf", "application/json", "text/plain", ""})
		if ct == "application/json" {
			body = w.otlpJSON
		}
		switch {
		case ct != "application/json" && g.p(0.4):
			body = g.mutateOTLP()
		case g.p(0.5):
			body = g.garbage(body)
		}
		h := http.Header{}
		if g.p(0.3) {
			body = gz(body)
			h.Set("Content-Encoding", "gzip")
		} else if g.p(0.05) {
			h.Set("Content-Encoding", g.pick([]string{"gzip", "br", "identity"}))
		}
		what := fmt.Sprintf("#%d seed %d OTLP/HTTP tenant=%q content-type=%q encoding=%q %d bytes", i, seed, tenant, ct, h.Get("Content-Encoding"), len(body))
		r, _ := w.post(parent, tenant, http.MethodPost, "/v1development/profiles", ct, body, h)
		ta.add("POST /v1development/profiles", what, r)
	default: // OTLP gRPC, on the OTLP port and the gRPC port, and Connect
		body := w.otlpBin
		switch {
		case g.p(0.4):
			body = g.mutateOTLP()
		case g.p(0.5):
			body = g.garbage(body)
		}
		kind := g.pick([]string{"grpc-otlp", "grpc", "connect-proto"})
		what := fmt.Sprintf("#%d seed %d OTLP Export %s tenant=%q %d bytes", i, seed, kind, tenant, len(body))
		err := w.rawCall(ctx, kind, otlpExport, body)
		ta.add("OTLP Export "+kind, what, connectResult(status, err, time.Since(t0)))
	}
}
