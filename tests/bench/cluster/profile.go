// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"
)

// timeNanosField is perftools.profiles.Profile.time_nanos.
const timeNanosField = 9

// profile is one test data file, prepared for pushing: the bytes as on disk
// and variants whose time_nanos differ, so that successive pushes of a pod
// carry successive profile times as a real SDK's do.
type profile struct {
	rel      string
	name     string // __name__ pushed
	service  string
	rawLen   int      // uncompressed pprof bytes of a variant
	variants [][]byte // gzipped, one per push round
}

// nameOf picks __name__ as the SDKs do for these files: Node's are wall
// profiles, the rest CPU.
func nameOf(rel string) string {
	if strings.Contains(rel, "nodejs") || strings.Contains(rel, "-js.") {
		return "wall"
	}
	return "process_cpu"
}

func gunzip(b []byte) ([]byte, error) {
	if len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		return b, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	return io.ReadAll(zr)
}

// withTime returns raw with every top-level time_nanos field dropped and
// one set to t appended; the other fields keep their bytes and order.
func withTime(raw []byte, t int64) ([]byte, error) {
	out := make([]byte, 0, len(raw)+16)
	for b := raw; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return nil, protowire.ParseError(m)
		}
		if num != timeNanosField {
			out = append(out, b[:n+m]...)
		}
		b = b[n+m:]
	}
	out = protowire.AppendTag(out, timeNanosField, protowire.VarintType)
	return protowire.AppendVarint(out, uint64(t)), nil
}

func gzipBytes(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// loadProfile reads root/rel and makes `rounds` gzipped variants, round r
// timed t0 + r*interval.
func loadProfile(root, rel string, rounds int, t0, interval int64) (*profile, error) {
	gz, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		return nil, err
	}
	raw, err := gunzip(gz)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rel, err)
	}
	p := &profile{
		rel:     rel,
		name:    nameOf(rel),
		service: "cluster-bench-" + strings.NewReplacer(".", "_", "/", "_").Replace(filepath.Base(rel)),
	}
	for r := 0; r < rounds; r++ {
		b, err := withTime(raw, t0+int64(r)*interval)
		p.rawLen = len(b)
		if err == nil {
			b, err = gzipBytes(b)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", rel, err)
		}
		p.variants = append(p.variants, b)
	}
	return p, nil
}

// gzLen is the mean size of the gzipped variants (what goes on the wire).
func (p *profile) gzLen() float64 {
	total := 0
	for _, v := range p.variants {
		total += len(v)
	}
	return float64(total) / float64(len(p.variants))
}
