package sweep

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

const querierPath = "/querier.v1.QuerierService/"

// queryMethods are every querier.v1 method.
var queryMethods = []string{"ProfileTypes", "LabelNames", "LabelValues", "Series", "SelectMergeStacktraces",
	"SelectMergeSpanProfile", "SelectMergeProfile", "SelectSeries", "SelectHeatmap", "Diff", "GetProfileStats",
	"AnalyzeQuery"}

func (g *gen) stackTraceSelector() *typesv1.StackTraceSelector {
	if g.p(0.8) {
		return nil
	}
	sel := &typesv1.StackTraceSelector{}
	for k := g.n(4); k > 0; k-- {
		sel.CallSite = append(sel.CallSite, &typesv1.Location{Name: g.pick(g.w.functions)})
	}
	if g.p(0.5) {
		sel.GoPgo = &typesv1.GoPGO{KeepLocations: []uint32{0, 1, 2, 64, math.MaxUint32}[g.n(5)], AggregateCallees: g.p(0.5)}
	}
	return sel
}

func (g *gen) format() querierv1.ProfileFormat {
	return querierv1.ProfileFormat([]int32{0, 1, 2, 3, 4, 4, 3, 2, 99, -1}[g.n(10)])
}

func (g *gen) mergeRequest() *querierv1.SelectMergeStacktracesRequest {
	s, e := g.timeRange()
	r := &querierv1.SelectMergeStacktracesRequest{ProfileTypeID: g.typeID(), LabelSelector: g.selector(),
		Start: s, End: e, MaxNodes: g.maxNodes(), Format: g.format(), StackTraceSelector: g.stackTraceSelector()}
	switch g.n(8) {
	case 0:
		r.ProfileIdSelector = g.ids()
	case 1:
		r.SpanSelector = g.spans()
	case 2:
		r.TraceIdSelector = []string{"0af7651916cd43dd8448eb211c80319c"}
	case 3:
		r.Async = &querierv1.AsyncQueryRequest{RequestId: "x", Type: querierv1.AsyncQueryType(g.n(4))}
	}
	return r
}

// queryRequest draws one querier request; method is its name.
func (g *gen) queryRequest() (method string, msg proto.Message) {
	method = queryMethods[g.n(len(queryMethods))]
	s, e := g.timeRange()
	matchers := func() []string {
		out := make([]string, g.n(3))
		for i := range out {
			out[i] = g.selector()
		}
		return out
	}
	switch method {
	case "ProfileTypes":
		return method, &querierv1.ProfileTypesRequest{Start: s, End: e}
	case "LabelNames":
		return method, &typesv1.LabelNamesRequest{Matchers: matchers(), Start: s, End: e}
	case "LabelValues":
		return method, &typesv1.LabelValuesRequest{Name: g.labelName(), Matchers: matchers(), Start: s, End: e}
	case "Series":
		var names []string
		if g.p(0.5) {
			names = g.groupBy()
		}
		return method, &querierv1.SeriesRequest{Matchers: matchers(), LabelNames: names, Start: s, End: e}
	case "SelectMergeStacktraces":
		return method, g.mergeRequest()
	case "SelectMergeSpanProfile":
		return method, &querierv1.SelectMergeSpanProfileRequest{ProfileTypeID: g.typeID(), LabelSelector: g.selector(),
			SpanSelector: g.spans(), Start: s, End: e, MaxNodes: g.maxNodes(), Format: g.format()}
	case "SelectMergeProfile":
		return method, &querierv1.SelectMergeProfileRequest{ProfileTypeID: g.typeID(), LabelSelector: g.selector(),
			Start: s, End: e, MaxNodes: g.maxNodes(), StackTraceSelector: g.stackTraceSelector(), ProfileIdSelector: g.ids()}
	case "SelectSeries":
		r := &querierv1.SelectSeriesRequest{ProfileTypeID: g.typeID(), LabelSelector: g.selector(), Start: s, End: e,
			GroupBy: g.groupBy(), Step: g.step(s, e), StackTraceSelector: g.stackTraceSelector(), Limit: g.limit(),
			ExemplarType: typesv1.ExemplarType(g.n(4))}
		if g.p(0.5) {
			a := typesv1.TimeSeriesAggregationType(g.n(3))
			r.Aggregation = &a
		}
		return method, r
	case "SelectHeatmap":
		return method, &querierv1.SelectHeatmapRequest{ProfileTypeID: g.typeID(), LabelSelector: g.selector(),
			Start: s, End: e, Step: g.step(s, e), GroupBy: g.groupBy(), QueryType: querierv1.HeatmapQueryType(g.n(4)),
			ExemplarType: typesv1.ExemplarType(g.n(4)), Limit: g.limit()}
	case "Diff":
		r := &querierv1.DiffRequest{}
		if g.p(0.9) {
			r.Left = g.mergeRequest()
		}
		if g.p(0.9) {
			r.Right = g.mergeRequest()
			if g.p(0.5) && r.Left != nil {
				r.Right.ProfileTypeID = r.Left.ProfileTypeID
			}
		}
		return method, r
	case "GetProfileStats":
		return method, &typesv1.GetProfileStatsRequest{}
	default: // AnalyzeQuery
		q := g.typeID() + g.selector()
		if g.p(0.3) {
			q = g.selector()
		}
		return method, &querierv1.AnalyzeQueryRequest{Start: s, End: e, Query: q}
	}
}

// callQuery sends msg to method with the typed upstream client q.
func callQuery(ctx context.Context, q querierv1connect.QuerierServiceClient, msg proto.Message) error {
	var err error
	switch m := msg.(type) {
	case *querierv1.ProfileTypesRequest:
		_, err = q.ProfileTypes(ctx, connect.NewRequest(m))
	case *typesv1.LabelNamesRequest:
		_, err = q.LabelNames(ctx, connect.NewRequest(m))
	case *typesv1.LabelValuesRequest:
		_, err = q.LabelValues(ctx, connect.NewRequest(m))
	case *querierv1.SeriesRequest:
		_, err = q.Series(ctx, connect.NewRequest(m))
	case *querierv1.SelectMergeStacktracesRequest:
		_, err = q.SelectMergeStacktraces(ctx, connect.NewRequest(m))
	case *querierv1.SelectMergeSpanProfileRequest:
		_, err = q.SelectMergeSpanProfile(ctx, connect.NewRequest(m))
	case *querierv1.SelectMergeProfileRequest:
		_, err = q.SelectMergeProfile(ctx, connect.NewRequest(m))
	case *querierv1.SelectSeriesRequest:
		_, err = q.SelectSeries(ctx, connect.NewRequest(m))
	case *querierv1.SelectHeatmapRequest:
		_, err = q.SelectHeatmap(ctx, connect.NewRequest(m))
	case *querierv1.DiffRequest:
		_, err = q.Diff(ctx, connect.NewRequest(m))
	case *typesv1.GetProfileStatsRequest:
		_, err = q.GetProfileStats(ctx, connect.NewRequest(m))
	case *querierv1.AnalyzeQueryRequest:
		_, err = q.AnalyzeQuery(ctx, connect.NewRequest(m))
	default:
		panic(fmt.Sprintf("callQuery: %T", msg))
	}
	return err
}

// protocols a query is sent with: the upstream client over Connect proto,
// JSON or gzip, gRPC, and a bare curl-like POST of the proto bytes.
var protocols = []string{"connect-proto", "connect-json", "connect-gzip", "grpc", "curl"}

// describe prints a request for the failure report.
func describe(msg proto.Message) string {
	b, err := protojson.MarshalOptions{}.Marshal(msg)
	if err != nil {
		return fmt.Sprintf("%v", msg)
	}
	return string(b)
}

// sendQuery sends one generated query and records its result.
func (w *world) sendQuery(parent context.Context, c *clients, ta *tally, seed uint64, i int) {
	g := newGen(seed, 1, i, w)
	method, msg := g.queryRequest()
	proto_ := protocols[g.n(len(protocols))]
	tenant, utf8 := g.tenant(), g.p(0.5)
	what := fmt.Sprintf("#%d seed %d %s tenant=%q utf8=%v %s", i, seed, proto_, tenant, utf8, describe(msg))
	ctx, cancel := reqCtx(parent, tenant, utf8)
	defer cancel()
	if g.p(0.05) {
		h := ctx.Value(headersKey{}).(http.Header)
		h.Set("Connect-Timeout-Ms", g.pick([]string{"abc", "-1", "0", "1", "99999999999999999999", "1000"}))
		if proto_ == "grpc" {
			h.Set("Grpc-Timeout", g.pick([]string{"1H", "abc", "99999999S", "0n", "-1m", "1", "100000000u"}))
		}
		what += fmt.Sprintf(" Connect-Timeout-Ms=%q Grpc-Timeout=%q", h.Get("Connect-Timeout-Ms"), h.Get("Grpc-Timeout"))
	}
	var status int
	ctx = context.WithValue(ctx, statusKey{}, &status)
	t0 := time.Now()
	var err error
	if _, merr := proto.Marshal(msg); merr != nil && proto_ != "curl" {
		// Go's encoder refuses strings that are not UTF-8: send the same
		// fields loosely encoded with the raw codec over the same protocol.
		proto_ = "loose-" + strings.Replace(proto_, "json", "proto", 1)
		err = w.rawCall(ctx, strings.TrimPrefix(proto_, "loose-"), querierPath+method, looseMarshal(msg))
	} else if proto_ == "curl" {
		r, _ := w.curl(ctx, querierPath+method, looseMarshal(msg))
		ta.add(method+" "+proto_, what, r)
		return
	} else {
		err = callQuery(ctx, c.query[proto_], msg)
	}
	ta.add(method+" "+proto_, what, connectResult(status, err, time.Since(t0)))
}

// rawCall sends body to path with the raw codec over proto_ (connect-*,
// grpc).
func (w *world) rawCall(ctx context.Context, proto_, path string, body []byte) error {
	hc, base := w.h1, w.s.HTTPURL()
	opts := []connect.ClientOption{connect.WithCodec(rawCodec{})}
	switch proto_ {
	case "grpc":
		hc, base = w.h2c, w.s.GRPCURL()
		opts = append(opts, connect.WithGRPC())
	case "grpc-otlp":
		hc, base = w.h2c, "http://"+w.s.OTLPAddr
		opts = append(opts, connect.WithGRPC())
	case "connect-gzip":
		opts = append(opts, connect.WithSendGzip())
	}
	cl := connect.NewClient[raw, raw](hc, base+path, opts...)
	in := raw(body)
	_, err := cl.CallUnary(ctx, connect.NewRequest(&in))
	return err
}

// curl posts proto bytes as curl does: Content-Type application/proto and
// nothing else (no Connect-Protocol-Version, no capability header).
func (w *world) curl(ctx context.Context, path string, body []byte) (result, []byte) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.s.HTTPURL()+path, strings.NewReader(string(body)))
	if err != nil {
		return result{err: err}, nil
	}
	req.Header.Set("Content-Type", "application/proto")
	return rawResult(w.h1, req)
}
