// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"google.golang.org/protobuf/proto"

	bk "kiln.dev/tests/bench/internal/benchkit"
)

// The small-push row driven by wrk (Debian's HTTP benchmarking tool, C
// and epoll) as well as by the Go Connect client. On one 2-core machine
// the Go client spends more CPU per push than kiln does (about 90 µs to
// kiln's 110 at 64 clients), so that row measures how two cores are
// shared as much as kiln. wrk sends the same pushes the same way the
// Connect client does (the Connect unary protocol over HTTP/1.1: a POST of
// the PushRequest as application/proto, one keep-alive connection per
// client, a request at a time) for a fraction of the CPU.

// wrkRounds is how many variants of each client's push wrk cycles
// through (times advance 10 s a round, as an SDK's do).
const wrkRounds = 16

// wrkScript sends body k of the bodies file (lengths and tenants in the
// index) on request k, cycling; every request is a whole push.
const wrkScript = `
local bodies, tenants = {}, {}
local idx = io.open(%q, "r")
local data = io.open(%q, "rb")
for line in idx:lines() do
  local len, tenant = line:match("^(%%d+) (.+)$")
  bodies[#bodies + 1] = data:read(tonumber(len))
  tenants[#tenants + 1] = tenant
end
idx:close()
data:close()
local n = 0
request = function()
  n = n + 1
  local k = (n %% #bodies) + 1
  return wrk.format("POST", "/push.v1.PusherService/Push",
    {["Content-Type"] = "application/proto", ["X-Scope-OrgID"] = tenants[k]}, bodies[k])
end
`

// writeWrkBodies writes the pushes wrk sends to dir: for round r and
// client w, body r*C+w is client w's push of variant r (no profile id: kiln
// gives each push its own, so a body sent again is stored again, as a new
// push is).
func writeWrkBodies(cfg config, variants [][]byte, dir string) (script string, err error) {
	var data, idx bytes.Buffer
	for r := 0; r < wrkRounds; r++ {
		for w := 0; w < cfg.smallClients; w++ {
			b, err := proto.Marshal(&pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
				Labels:  smallLabels(w),
				Samples: []*pushv1.RawSample{{RawProfile: variants[r%len(variants)]}},
			}}})
			if err != nil {
				return "", err
			}
			data.Write(b)
			fmt.Fprintf(&idx, "%d %s\n", len(b), smallTenant(cfg, w))
		}
	}
	dataPath, idxPath := filepath.Join(dir, "bodies.bin"), filepath.Join(dir, "bodies.idx")
	script = filepath.Join(dir, "push.lua")
	if err := os.WriteFile(dataPath, data.Bytes(), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(idxPath, idx.Bytes(), 0o644); err != nil {
		return "", err
	}
	return script, os.WriteFile(script, []byte(fmt.Sprintf(wrkScript, idxPath, dataPath)), 0o644)
}

// wrkDriver runs wrk with one connection per client on two threads (the
// cores of the machine this row is measured on): a warm-up of 2 s, then
// the timed run of -small-duration (wrk stops on time only: -small-n does
// not apply).
func wrkDriver(cfg config, k *bk.Kiln, variants [][]byte, r *smallResult, mark func() error) error {
	dir, err := os.MkdirTemp("", "kiln-wrk-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	script, err := writeWrkBodies(cfg, variants, dir)
	if err != nil {
		return err
	}
	run := func(d time.Duration) (*wrkOut, error) {
		threads := min(2, cfg.smallClients)
		cmd := exec.Command("wrk", "-t"+strconv.Itoa(threads), "-c"+strconv.Itoa(cfg.smallClients),
			"-d"+strconv.Itoa(int(d.Seconds()))+"s", "--latency", "--timeout", "10s", "-s", script,
			"http://"+k.HTTP)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("wrk: %v\n%s", err, out)
		}
		w, err := parseWrk(string(out))
		if err != nil {
			return nil, fmt.Errorf("%v in wrk's output:\n%s", err, out)
		}
		w.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		return w, nil
	}
	warm, err := run(2 * time.Second)
	if err != nil {
		return err
	}
	if warm.non2xx+warm.sockErrs > 0 {
		return fmt.Errorf("warm-up: %d pushes failed\n%s", warm.non2xx+warm.sockErrs, k.Output())
	}
	if err := mark(); err != nil {
		return err
	}
	w, err := run(cfg.smallDuration)
	if err != nil {
		return err
	}
	r.pushes, r.failed, r.wall, r.clientCPU = w.requests-w.non2xx, w.non2xx+w.sockErrs, w.wall, w.cpu
	r.p50, r.p90, r.p99 = w.pct[50], w.pct[90], w.pct[99]
	if r.failed > 0 {
		r.firstErr = fmt.Errorf("wrk counted %d non-2xx responses and %d socket errors", w.non2xx, w.sockErrs)
	}
	return nil
}

// wrkOut is what a wrk run printed, and its CPU.
type wrkOut struct {
	requests         int64 // responses, non-2xx ones included
	non2xx, sockErrs int64
	wall             time.Duration
	pct              map[int]float64 // percentile -> ms
	cpu              time.Duration
}

var (
	wrkTotal   = regexp.MustCompile(`^\s*(\d+) requests in ([0-9.]+)(us|ms|s|m),`)
	wrkPct     = regexp.MustCompile(`^\s*(50|75|90|99)%\s+([0-9.]+)(us|ms|s|m)$`)
	wrkNon2xx  = regexp.MustCompile(`^\s*Non-2xx or 3xx responses: (\d+)`)
	wrkSockErr = regexp.MustCompile(`^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// wrkUnit is a wrk time unit in milliseconds.
var wrkUnit = map[string]float64{"us": 0.001, "ms": 1, "s": 1000, "m": 60000}

func parseWrk(out string) (*wrkOut, error) {
	w := &wrkOut{pct: map[int]float64{}}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if m := wrkTotal.FindStringSubmatch(line); m != nil {
			w.requests, _ = strconv.ParseInt(m[1], 10, 64)
			v, _ := strconv.ParseFloat(m[2], 64)
			w.wall = time.Duration(v * wrkUnit[m[3]] * float64(time.Millisecond))
		} else if m := wrkPct.FindStringSubmatch(line); m != nil {
			p, _ := strconv.Atoi(m[1])
			v, _ := strconv.ParseFloat(m[2], 64)
			w.pct[p] = v * wrkUnit[m[3]]
		} else if m := wrkNon2xx.FindStringSubmatch(line); m != nil {
			w.non2xx, _ = strconv.ParseInt(m[1], 10, 64)
		} else if m := wrkSockErr.FindStringSubmatch(line); m != nil {
			for _, s := range m[1:] {
				n, _ := strconv.ParseInt(s, 10, 64)
				w.sockErrs += n
			}
		}
	}
	if w.requests == 0 || w.wall == 0 || len(w.pct) < 4 {
		return nil, fmt.Errorf("no request count, time or latency distribution")
	}
	return w, nil
}
