// SPDX-License-Identifier: Apache-2.0

package benchkit

import (
	"bytes"
	"fmt"
	"math/rand"
	"time"

	"github.com/google/pprof/profile"
)

// smallFuncs are the frames of the small profiles: a Go service's names,
// long as real ones are, so the gzipped pprof is about the size an SDK
// sends for a mostly idle process (1.2 KB).
var smallFuncs = []string{
	"runtime.main", "main.main", "main.run",
	"net/http.(*conn).serve", "net/http.serverHandler.ServeHTTP", "net/http.HandlerFunc.ServeHTTP",
	"github.com/acme/shop/internal/api.(*Server).Checkout",
	"github.com/acme/shop/internal/api.(*Server).Cart",
	"github.com/acme/shop/internal/cart.(*Service).Total",
	"github.com/acme/shop/internal/cart.(*Service).Load",
	"github.com/acme/shop/internal/store.(*DB).Query",
	"encoding/json.Marshal", "encoding/json.(*decodeState).object",
	"runtime.mallocgc", "runtime.memmove", "syscall.Syscall",
	"crypto/sha256.block", "compress/flate.(*compressor).deflate",
	"github.com/acme/shop/internal/pricing.(*Engine).Quote",
	"github.com/acme/shop/internal/pricing.(*Engine).discounts",
	"google.golang.org/grpc.(*ClientConn).Invoke", "runtime.gcBgMarkWorker",
}

// smallStacks are the stacks of every small profile, as indexes into
// smallFuncs, leaf first.
var smallStacks = [][]int{
	{13, 11, 8, 6, 5, 4, 3, 0},
	{14, 12, 9, 7, 5, 4, 3, 0},
	{15, 10, 9, 7, 5, 4, 3, 0},
	{16, 6, 5, 4, 3, 0},
	{17, 11, 8, 6, 5, 4, 3, 0},
	{13, 12, 10, 9, 8, 6, 5, 4, 3, 0},
	{14, 2, 1, 0},
	{15, 3, 0},
	{11, 7, 5, 4, 3, 0},
	{10, 8, 6, 5, 4, 3, 0},
	{18, 6, 5, 4, 3, 0},
	{19, 18, 6, 5, 4, 3, 0},
	{20, 19, 18, 6, 5, 4, 3, 0},
	{21},
	{13, 19, 18, 6, 5, 4, 3, 0},
	{12, 20, 7, 5, 4, 3, 0},
}

// SmallProfiles builds n gzipped CPU profiles (what pprof's Write gives,
// as a Go SDK sends) of the same stacks with values drawn afresh for each
// (10 ms units) and times t0, t0+step, ... Returns them and their mean
// gzipped size.
func SmallProfiles(n int, t0 int64, step time.Duration, seed int64) ([][]byte, float64, error) {
	rng := rand.New(rand.NewSource(seed))
	m := &profile.Mapping{ID: 1, Start: 0x400000, Limit: 0x1400000, File: "/usr/local/bin/shop",
		BuildID: "3f1c2a9e7b", HasFunctions: true}
	funcs := make([]*profile.Function, len(smallFuncs))
	locs := make([]*profile.Location, len(smallFuncs))
	for i, name := range smallFuncs {
		funcs[i] = &profile.Function{ID: uint64(i + 1), Name: name, SystemName: name,
			Filename: "/src/" + name[:min(len(name), 12)] + ".go"}
		locs[i] = &profile.Location{ID: uint64(i + 1), Mapping: m, Address: 0x401000 + uint64(i)*0x40,
			Line: []profile.Line{{Function: funcs[i], Line: int64(20 + 7*i)}}}
	}
	out := make([][]byte, 0, n)
	total := 0
	for v := 0; v < n; v++ {
		p := &profile.Profile{
			SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"},
				{Type: "cpu", Unit: "nanoseconds"}},
			PeriodType:    &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
			Period:        10_000_000,
			TimeNanos:     t0 + int64(v)*int64(step),
			DurationNanos: int64(15 * time.Second),
			Mapping:       []*profile.Mapping{m},
			Function:      funcs,
			Location:      locs,
		}
		for _, st := range smallStacks {
			s := &profile.Sample{}
			for _, f := range st {
				s.Location = append(s.Location, locs[f])
			}
			c := int64(1 + rng.Intn(40))
			s.Value = []int64{c, c * 10_000_000}
			p.Sample = append(p.Sample, s)
		}
		var buf bytes.Buffer
		if err := p.Write(&buf); err != nil {
			return nil, 0, fmt.Errorf("small profile: %w", err)
		}
		total += buf.Len()
		out = append(out, buf.Bytes())
	}
	return out, float64(total) / float64(n), nil
}
