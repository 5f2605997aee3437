package sweep

import (
	"bytes"
	"math"

	"github.com/google/pprof/profile"
)

// extremes are the values a mutated profile gets: the int64 limits (whose
// sums overflow), zero, negatives.
var extremes = []int64{math.MaxInt64, math.MinInt64, math.MaxInt64 / 2, -1, 0, 1 << 62, -(1 << 62)}

// mutatePprof parses one of the data's files and breaks it the way a
// buggy or hostile SDK could while keeping it a well-formed protobuf:
// extreme values, times and periods, stacks of 5000 frames, invalid UTF-8
// and empty names, huge label sets, and sample value counts that do not
// match the sample types. The result is written gzipped or not.
func (g *gen) mutatePprof() []byte {
	p, err := profile.ParseData(g.w.pprofRaw[g.n(len(g.w.pprofRaw))])
	if err != nil || len(p.Sample) == 0 {
		return nil
	}
	for k := 1 + g.n(3); k > 0; k-- {
		s := p.Sample[g.n(len(p.Sample))]
		switch g.n(9) {
		case 0: // extreme values in many samples: totals overflow
			for _, smp := range p.Sample {
				for i := range smp.Value {
					if g.p(0.5) {
						smp.Value[i] = extremes[g.n(len(extremes))]
					}
				}
			}
		case 1:
			p.TimeNanos = extremes[g.n(len(extremes))]
			p.DurationNanos = extremes[g.n(len(extremes))]
		case 2:
			p.Period = extremes[g.n(len(extremes))]
		case 3: // a deep stack
			if len(s.Location) > 0 {
				for len(s.Location) < 5000 {
					s.Location = append(s.Location, s.Location[g.n(len(s.Location))])
				}
			}
		case 4:
			if len(p.Function) > 0 {
				f := p.Function[g.n(len(p.Function))]
				f.Name = []string{"", "\xff\xfe", "a\x00b", huge, "ünï;名前", "other"}[g.n(6)]
			}
		case 5:
			if s.Label == nil {
				s.Label = map[string][]string{}
			}
			for i := 0; i < 50; i++ {
				s.Label[[]string{"span_id", "trace_id", "profile_id", "thread", "\xff", ""}[g.n(6)]] = []string{
					[]string{"0000000000000001", "zz", "", "\xff", huge[:1000]}[g.n(5)]}
			}
			if s.NumLabel == nil {
				s.NumLabel = map[string][]int64{}
			}
			s.NumLabel["bytes"] = []int64{extremes[g.n(len(extremes))]}
		case 6: // value count off by one
			if g.p(0.5) {
				s.Value = append(s.Value, 1)
			} else if len(s.Value) > 0 {
				s.Value = s.Value[:len(s.Value)-1]
			}
		case 7:
			for _, st := range p.SampleType {
				st.Type, st.Unit = []string{"", "cpu", "\xff", "ünï", huge[:500]}[g.n(5)], []string{"", "nanoseconds", "count", "bytes"}[g.n(4)]
			}
		default:
			if len(p.Location) > 0 {
				l := p.Location[g.n(len(p.Location))]
				l.Address = math.MaxUint64
				l.Line = append(l.Line, l.Line...)
			}
		}
	}
	var buf bytes.Buffer
	var werr error
	if g.p(0.5) {
		werr = p.Write(&buf)
	} else {
		werr = p.WriteUncompressed(&buf)
	}
	if werr != nil {
		return nil
	}
	return buf.Bytes()
}
