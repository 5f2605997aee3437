package sweep

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
)

// jsonToken finds the scalar tokens of a JSON text: strings, numbers,
// true, false and null.
var jsonToken = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null`)

// jsonReplacements are what a scalar becomes: wrong types, out-of-range
// numbers, bad escapes, lone surrogates, deep nesting.
var jsonReplacements = []string{
	`1e400`, `-1e400`, `-1`, `18446744073709551616`, `9223372036854775808`, `-9223372036854775809`, `1.5`, `-0`,
	`0x10`, `01`, `NaN`, `"NaN"`, `"Infinity"`, `"-Infinity"`, `"9223372036854775808"`, `"1e3"`, `" 1"`, `""`,
	`null`, `true`, `[]`, `{}`, `[null]`, `{"a":1}`, `"\u0000"`, `"\ud800"`, `"\udc00\ud800"`, `"\x"`, `"\u12"`,
	`"\\"`, `"é"`, `"` + strings.Repeat(`\u00e9`, 2000) + `"`,
	strings.Repeat("[", 100000) + strings.Repeat("]", 100000), strings.Repeat(`{"a":`, 20000) + "1" + strings.Repeat("}", 20000),
	`PROFILE_FORMAT_TREE`, `"PROFILE_FORMAT_NOPE"`, `"TIME_SERIES_AGGREGATION_TYPE_AVERAGE"`, `99`,
}

// mutateJSON applies one to three mutations to a JSON text: a scalar
// replaced, a cut, a duplicated or unknown key, trailing bytes.
func (g *gen) mutateJSON(b []byte) []byte {
	s := string(b)
	for k := 1 + g.n(3); k > 0; k-- {
		switch g.n(8) {
		case 0:
			s = s[:g.n(len(s)+1)]
		case 1:
			if i := strings.IndexByte(s, '{'); i >= 0 {
				s = s[:i+1] + g.pick([]string{`"zzz":{"x":[1,2,{}]},`, `"start":1,"start":"2",`, `"":0,`, `"\u0000":1,`}) + s[i+1:]
			}
		case 2:
			s += g.pick([]string{" ", "}", ",", "x", "\x00", "{}"})
		default:
			locs := jsonToken.FindAllStringIndex(s, -1)
			if len(locs) == 0 {
				s = g.pick(jsonReplacements)
				continue
			}
			l := locs[g.n(len(locs))]
			s = s[:l[0]] + g.pick(jsonReplacements) + s[l[1]:]
		}
	}
	return []byte(s)
}

// sendJSON sends a mutated JSON body to a querier method, push or OTLP
// over Connect (and OTLP/HTTP) with Content-Type application/json.
func (w *world) sendJSON(parent context.Context, ta *tally, seed uint64, i int) {
	g := newGen(seed, 5, i, w)
	var path string
	var body []byte
	tenant := g.tenant()
	switch g.n(6) {
	case 0:
		path, tenant = "/push.v1.PusherService/Push", g.ingestTenant()
		body, _ = protojson.Marshal(g.pushRequest())
	case 1:
		path, tenant = g.pick([]string{"/v1development/profiles", otlpExport}), g.ingestTenant()
		body = w.otlpJSON
	default:
		method, msg := g.queryRequest()
		path = querierPath + method
		var err error
		if body, err = protojson.Marshal(msg); err != nil {
			body = []byte(`{"start":1}`) // not UTF-8: the mutations still apply
		}
	}
	body = g.mutateJSON(body)
	h := http.Header{}
	if g.p(0.5) {
		h.Set("Accept", "application/json; allow-utf8-labelnames=true")
	}
	what := fmt.Sprintf("#%d seed %d POST %s tenant=%q json=%.300q", i, seed, path, tenant, body)
	r, _ := w.post(parent, tenant, http.MethodPost, path, "application/json", body, h)
	kind := "json " + path
	if strings.HasPrefix(path, querierPath) {
		kind = "json querier.v1"
	}
	ta.add(kind, what, r)
}
