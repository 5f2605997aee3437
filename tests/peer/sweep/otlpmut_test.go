package sweep

import (
	"math"

	collpb "go.opentelemetry.io/proto/otlp/collector/profiles/v1development"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"
)

// mutateOTLP parses the OTLP capture and breaks it as a buggy exporter
// could while keeping it a well-formed protobuf: extreme sample values
// (their per-sample sums overflow) and timestamps, indices at and past the
// ends of the dictionary, attribute values nested deep, huge strings, and
// periods and times at the integer limits. Strings that are not UTF-8 go
// out loosely encoded.
func (g *gen) mutateOTLP() []byte {
	req := &collpb.ExportProfilesServiceRequest{}
	if err := proto.Unmarshal(g.w.otlpBin, req); err != nil || req.Dictionary == nil {
		return g.w.otlpBin
	}
	d := req.Dictionary
	idx := func(n int) int32 {
		return []int32{0, int32(n) - 1, int32(n), -1, math.MaxInt32, math.MinInt32}[g.n(6)]
	}
	for k := 1 + g.n(3); k > 0; k-- {
		rp := req.ResourceProfiles[g.n(len(req.ResourceProfiles))]
		if len(rp.ScopeProfiles) == 0 || len(rp.ScopeProfiles[0].Profiles) == 0 {
			continue
		}
		p := rp.ScopeProfiles[0].Profiles[0]
		switch g.n(7) {
		case 0: // extreme values: the sum of a sample's values overflows
			for _, s := range p.Samples {
				s.Values = []int64{math.MaxInt64, math.MaxInt64, extremes[g.n(len(extremes))]}
				s.TimestampsUnixNano = nil
			}
		case 1:
			p.TimeUnixNano = []uint64{0, math.MaxUint64, 1 << 63}[g.n(3)]
			p.DurationNano = math.MaxUint64
			p.Period = extremes[g.n(len(extremes))]
			for _, s := range p.Samples {
				s.TimestampsUnixNano = append(s.TimestampsUnixNano, math.MaxUint64, 0)
			}
		case 2:
			if len(p.Samples) > 0 {
				s := p.Samples[g.n(len(p.Samples))]
				s.StackIndex = idx(len(d.StackTable))
				s.LinkIndex = idx(len(d.LinkTable))
				s.AttributeIndices = append(s.AttributeIndices, idx(len(d.AttributeTable)))
			}
		case 3:
			if len(d.LocationTable) > 0 {
				l := d.LocationTable[g.n(len(d.LocationTable))]
				l.MappingIndex = idx(len(d.MappingTable))
				if len(l.Lines) > 0 {
					l.Lines[0].FunctionIndex = idx(len(d.FunctionTable))
				}
			}
		case 4: // nested attribute values
			v := &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "leaf"}}
			for i := 0; i < 200; i++ {
				v = &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{v}}}}
			}
			if rp.Resource != nil {
				rp.Resource.Attributes = append(rp.Resource.Attributes, &commonpb.KeyValue{Key: "service.name", Value: v},
					&commonpb.KeyValue{Key: "k8s.pod.name", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: math.MinInt64}}},
					&commonpb.KeyValue{Key: "process.executable.name", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: math.NaN()}}})
			}
		case 5:
			if len(d.StringTable) > 1 {
				d.StringTable[1+g.n(len(d.StringTable)-1)] = []string{"", "\xff\xfe", "a\x00b", huge}[g.n(4)]
			}
		default:
			if p.SampleType != nil {
				p.SampleType.TypeStrindex = idx(len(d.StringTable))
				p.SampleType.UnitStrindex = idx(len(d.StringTable))
			}
		}
	}
	return looseMarshal(req)
}
