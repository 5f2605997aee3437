package sweep

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// legacyQuery is a render query: a type id or an old app name with
// matchers, or a generated selector.
func (g *gen) legacyQuery() string {
	switch g.n(4) {
	case 0:
		return g.selector()
	case 1:
		return g.pick(g.w.apps) + "{" + g.matchers() + "}"
	default:
		return g.typeID() + "{" + g.matchers() + "}"
	}
}

func (g *gen) maxNodesParam(q url.Values) {
	for _, k := range []string{"max-nodes", "maxNodes"} {
		if g.p(0.3) {
			q.Set(k, g.pick([]string{"0", "1", "16", "8192", "1048576", "1048577", "-1", "abc", "", "9223372036854775807", "99999999999999999999"}))
		}
	}
}

// legacyRequest draws one GET of the legacy HTTP API or an operational
// route, or the same routes with another method or a broken query string.
func (g *gen) legacyRequest() (method, path string) {
	q := url.Values{}
	var route string
	switch g.n(10) {
	case 0, 1, 2, 3:
		route = "/pyroscope/render"
		if g.p(0.95) {
			q.Set("query", g.legacyQuery())
		}
		for _, k := range []string{"from", "until"} {
			if g.p(0.7) {
				q.Set(k, g.attime())
			}
		}
		g.maxNodesParam(q)
		if g.p(0.3) {
			q.Set("groupBy", g.labelName())
		}
		if g.p(0.2) {
			q.Set("aggregation", g.pick([]string{"sum", "avg", "x", ""}))
		}
		if g.p(0.3) {
			q.Set("format", g.pick([]string{"json", "dot", "pprof", "collapsed", "html", ""}))
		}
	case 4, 5:
		route = "/pyroscope/render-diff"
		for _, side := range []string{"left", "right"} {
			if g.p(0.95) {
				q.Set(side+"Query", g.legacyQuery())
			}
			for _, k := range []string{"From", "Until"} {
				if g.p(0.7) {
					q.Set(side+k, g.attime())
				}
			}
		}
		g.maxNodesParam(q)
		if g.p(0.2) {
			q.Set("format", g.pick([]string{"json", "dot", "x"}))
		}
	case 6, 7:
		route = "/pyroscope/label-values"
		if g.p(0.9) {
			q.Set("label", g.labelName())
		}
		if g.p(0.3) {
			q.Set("query", g.selector())
		}
	default:
		route = g.pick([]string{"/ready", "/metrics", "/ring", "/ring?format=json", "/", "/nope", "/pyroscope/",
			"/querier.v1.QuerierService/", "/querier.v1.QuerierService/Nope", "/push.v1.PusherService/Push",
			"/pyroscope/render/../ready", "/%2e%2e/ready", "/ingest"})
	}
	path = route
	if enc := q.Encode(); enc != "" {
		path += "?" + enc
	}
	switch g.n(12) {
	case 0:
		if !strings.Contains(path, "?") {
			path += "?"
		}
		path += g.pick([]string{"&%zz", "&&&", "&query", "&query=%", "&from=1&from=2", "#frag", "&" + strings.Repeat("a=1&", 2000)})
	case 1:
		path = strings.ReplaceAll(path, "%", "%25") // double-encoded
	}
	method = http.MethodGet
	if g.p(0.08) {
		method = g.pick([]string{http.MethodPost, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions, "BREW"})
	}
	return method, path
}

// sendLegacy sends one generated legacy or operational request.
func (w *world) sendLegacy(parent context.Context, ta *tally, seed uint64, i int) {
	g := newGen(seed, 3, i, w)
	method, path := g.legacyRequest()
	tenant := g.tenant()
	h := http.Header{}
	if g.p(0.1) {
		h.Set("Accept", g.pick([]string{utf8Accept, "text/html", "application/json", "*/*", ""}))
	}
	what := fmt.Sprintf("#%d seed %d %s %s tenant=%q", i, seed, method, trunc(path, 400), tenant)
	r, _ := w.post(parent, tenant, method, path, "", nil, h)
	route, _, _ := strings.Cut(path, "?")
	if strings.HasPrefix(route, "/pyroscope/r") || strings.HasPrefix(route, "/pyroscope/l") {
		route = method + " " + route
	} else {
		route = method + " (other routes)"
	}
	ta.add(route, what, r)
}

// garbagePaths are every route that takes a body, including the internal
// ingester.v1 methods, which the public ports answer unimplemented.
var garbagePaths = []string{
	"/push.v1.PusherService/Push", otlpExport,
	"/ingester.v1.IngesterService/Push", "/ingester.v1.IngesterService/Series",
	"/ingester.v1.IngesterService/MergeTree", "/ingester.v1.IngesterService/Profiles",
	"/ingester.v1.IngesterService/Stats",
}

// writes reports whether path stores data: those get the ingest tenant.
func writes(path string) bool {
	return strings.HasSuffix(path, "/Push") || path == otlpExport || strings.HasPrefix(path, "/ingest") ||
		strings.HasPrefix(path, "/v1development")
}

// sendGarbage sends random or mangled bytes to a route: Connect proto or
// JSON, gRPC, or bare HTTP with odd content types and encodings.
func (w *world) sendGarbage(parent context.Context, ta *tally, seed uint64, i int) {
	g := newGen(seed, 4, i, w)
	paths := append([]string{"/ingest", "/v1development/profiles"}, garbagePaths...)
	for _, m := range queryMethods {
		paths = append(paths, querierPath+m)
	}
	path := g.pick(paths)
	tenant := g.tenant()
	if writes(path) {
		tenant = g.ingestTenant()
	}
	var valid []byte
	if g.p(0.5) {
		valid = g.w.pprofRaw[g.n(len(g.w.pprofRaw))]
	}
	body := g.garbage(valid)
	ctx, cancel := reqCtx(parent, tenant, g.p(0.5))
	defer cancel()
	var status int
	ctx = context.WithValue(ctx, statusKey{}, &status)
	t0 := time.Now()
	kind := g.pick([]string{"connect-proto", "grpc", "http"})
	if strings.HasPrefix(path, "/ingest") || strings.HasPrefix(path, "/v1development") {
		kind = "http"
	}
	what := fmt.Sprintf("#%d seed %d %s %s tenant=%q %d bytes %.100q", i, seed, kind, path, tenant, len(body), body)
	if kind != "http" {
		err := w.rawCall(ctx, kind, path, body)
		ta.add("garbage "+kind, what, connectResult(status, err, time.Since(t0)))
		return
	}
	ct := g.pick([]string{"application/proto", "application/json", "application/x-protobuf", "text/plain", "",
		"application/grpc", "application/connect+proto", "multipart/form-data; boundary=x", "multipart/form-data"})
	h := http.Header{}
	if g.p(0.2) {
		h.Set("Content-Encoding", g.pick([]string{"gzip", "br", "deflate", "identity", "gzip, gzip"}))
	}
	if g.p(0.2) {
		h.Set("Connect-Protocol-Version", g.pick([]string{"1", "2", ""}))
	}
	what += fmt.Sprintf(" content-type=%q encoding=%q", ct, h.Get("Content-Encoding"))
	r, _ := w.post(ctx, tenant, http.MethodPost, path, ct, body, h)
	ta.add("garbage http", what, r)
}
