// SPDX-License-Identifier: Apache-2.0

package benchkit

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

// Profile is one test data file, prepared for pushing: variants of its
// bytes whose time_nanos differ, so that successive pushes of a pod carry
// successive profile times as a real SDK's do.
type Profile struct {
	Rel      string
	Name     string // __name__ pushed
	Service  string
	RawLen   int      // uncompressed pprof bytes of a variant
	Variants [][]byte // gzipped, one per push round
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

// LoadProfile reads root/rel and makes `rounds` gzipped variants, round r
// timed t0 + r*interval. Its service_name is servicePrefix followed by the
// file's name.
func LoadProfile(root, rel, servicePrefix string, rounds int, t0, interval int64) (*Profile, error) {
	gz, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		return nil, err
	}
	raw, err := gunzip(gz)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rel, err)
	}
	p := &Profile{
		Rel:     rel,
		Name:    nameOf(rel),
		Service: servicePrefix + strings.NewReplacer(".", "_", "/", "_").Replace(filepath.Base(rel)),
	}
	for r := 0; r < rounds; r++ {
		b, err := withTime(raw, t0+int64(r)*interval)
		p.RawLen = len(b)
		if err == nil {
			b, err = gzipBytes(b)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", rel, err)
		}
		p.Variants = append(p.Variants, b)
	}
	return p, nil
}

// GzLen is the mean size of the gzipped variants (what goes on the wire).
func (p *Profile) GzLen() float64 {
	total := 0
	for _, v := range p.Variants {
		total += len(v)
	}
	return float64(total) / float64(len(p.Variants))
}
