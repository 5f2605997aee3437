package otlppeer

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	collpb "go.opentelemetry.io/proto/otlp/collector/profiles/v1development"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"kiln.dev/tests/lib/kilntest"
)

// The OTLP captures of the shared test data (see its MANIFEST.md): each has
// a .pb.bin (protobuf) and a .pb.json (OTLP/JSON) form.
const (
	ebpfCapture      = "grafana-pyroscope/otel-ebpf-profile"
	ebpfCapture2025  = "hard/grafana-pyroscope/otel-ebpf-profile.2025capture"
	corruptedCapture = "hard/grafana-pyroscope/otel-ebpf-profile-corrupted"
)

type capture struct {
	name    string
	bin     []byte // the .pb.bin file as it is
	json    []byte // the .pb.json file as it is
	req     *collpb.ExportProfilesServiceRequest
	jsonReq *collpb.ExportProfilesServiceRequest
}

func loadCapture(t *testing.T, base string) *capture {
	t.Helper()
	_, testdata := kilntest.RequireEnv(t)
	c := &capture{name: base}
	var err error
	if c.bin, err = os.ReadFile(filepath.Join(testdata, base+".pb.bin")); err != nil {
		t.Fatal(err)
	}
	if c.json, err = os.ReadFile(filepath.Join(testdata, base+".pb.json")); err != nil {
		t.Fatal(err)
	}
	c.req = &collpb.ExportProfilesServiceRequest{}
	if err := proto.Unmarshal(c.bin, c.req); err != nil {
		t.Fatalf("%s.pb.bin: %v", base, err)
	}
	c.jsonReq = &collpb.ExportProfilesServiceRequest{}
	if err := protojson.Unmarshal(c.json, c.jsonReq); err != nil {
		t.Fatalf("%s.pb.json: %v", base, err)
	}
	return c
}

// seriesKey is one profile type of one service.
type seriesKey struct {
	typeID  string
	service string
}

// expectation is what Kiln must answer for a request, computed here with
// Pyroscope's OTLP rules (pkg/ingester/otlp/convert.go, ingest_handler.go):
//   - samples/count with a cpu/nanoseconds period is process_cpu, type
//     cpu/nanoseconds, value count*period; off_cpu/nanoseconds is off_cpu;
//     otherwise the period type names it, process_cpu when there is none;
//   - a sample's value is the sum of its values, or its timestamp count;
//   - service_name is the sample's service.name, else the resource's, else
//     unknown_service[:<process.executable.name>].
//
// Samples whose value is not positive are left out: the pipeline drops them.
type expectation struct {
	totals   map[seriesKey]int64
	types    map[string]bool
	services map[string]bool
	minNs    int64
	maxNs    int64
}

// anyString is the label value of an attribute value: a string, an int in
// decimal, or the only element of a one-element array of those.
func anyString(v *commonpb.AnyValue, strs []string, inArray bool) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_StringValueStrindex:
		return strs[x.StringValueStrindex]
	case *commonpb.AnyValue_ArrayValue:
		if !inArray && len(x.ArrayValue.GetValues()) == 1 {
			return anyString(x.ArrayValue.Values[0], strs, true)
		}
	}
	return ""
}

func resourceService(res *resourcepb.Resource, strs []string) string {
	exe := ""
	for _, kv := range res.GetAttributes() {
		key := kv.GetKey()
		if key == "" {
			key = strs[kv.GetKeyStrindex()]
		}
		v := anyString(kv.GetValue(), strs, false)
		switch {
		case v == "":
		case key == "service.name":
			return v
		case key == "process.executable.name" && exe == "":
			exe = v
		}
	}
	if exe == "" {
		return "unknown_service"
	}
	return "unknown_service:" + exe
}

// profileType is the Pyroscope profile type ID a Profile is stored under,
// and whether its values convert from sample counts to cpu nanoseconds.
func profileType(typ, unit, periodType, periodUnit string, period int64) (string, bool) {
	pt, pu := "", ""
	if period != 0 {
		pt, pu = periodType, periodUnit
	}
	cpu := typ == "samples" && unit == "count" && pt == "cpu" && pu == "nanoseconds"
	name := pt
	switch {
	case cpu:
		name, typ, unit = "process_cpu", "cpu", "nanoseconds"
	case typ == "off_cpu" && unit == "nanoseconds":
		name = "off_cpu"
	case name == "":
		name = "process_cpu"
	}
	return strings.Join([]string{name, typ, unit, periodType, periodUnit}, ":"), cpu
}

// expect computes the expectation of req, leaving out the profiles for
// which skip (given the resource, scope and profile positions) is true.
func expect(req *collpb.ExportProfilesServiceRequest, skip func(i, j, k int) bool) expectation {
	e := expectation{totals: map[seriesKey]int64{}, types: map[string]bool{}, services: map[string]bool{}}
	d := req.GetDictionary()
	strs := d.GetStringTable()
	for i, rp := range req.GetResourceProfiles() {
		rsvc := resourceService(rp.GetResource(), strs)
		for j, sp := range rp.GetScopeProfiles() {
			for k, p := range sp.GetProfiles() {
				if skip != nil && skip(i, j, k) {
					continue
				}
				st, pt := p.GetSampleType(), p.GetPeriodType()
				id, cpu := profileType(strs[st.GetTypeStrindex()], strs[st.GetUnitStrindex()],
					strs[pt.GetTypeStrindex()], strs[pt.GetUnitStrindex()], p.GetPeriod())
				for _, s := range p.GetSamples() {
					v := int64(len(s.GetTimestampsUnixNano()))
					if len(s.GetValues()) > 0 {
						v = 0
						for _, x := range s.GetValues() {
							v += x
						}
					}
					if cpu {
						v *= p.GetPeriod()
					}
					if v <= 0 {
						continue
					}
					svc := rsvc
					for _, ai := range s.GetAttributeIndices() {
						a := d.GetAttributeTable()[ai]
						if strs[a.GetKeyStrindex()] == "service.name" {
							if v := anyString(a.GetValue(), strs, false); v != "" {
								svc = v
							}
							break
						}
					}
					e.totals[seriesKey{id, svc}] += v
					e.types[id] = true
					e.services[svc] = true
				}
				ts := int64(p.GetTimeUnixNano())
				if e.minNs == 0 || ts < e.minNs {
					e.minNs = ts
				}
				if ts > e.maxNs {
					e.maxNs = ts
				}
			}
		}
	}
	return e
}

// window is the query range (ms) around the profiles' times.
func (e expectation) window() (start, end int64) {
	return time.Unix(0, e.minNs).Add(-time.Hour).UnixMilli(), time.Unix(0, e.maxNs).Add(time.Hour).UnixMilli()
}
