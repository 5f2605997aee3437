// SPDX-License-Identifier: Apache-2.0

package benchkit

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
)

const (
	Pods           = 50               // distinct pod label values, as in bench_push
	PushInterval   = 15 * time.Second // an SDK's upload period (profile time step per round)
	RequestTimeout = 30 * time.Second
	MB             = 1e6 // figures are in 10^6 bytes
)

// tenantTransport adds X-Scope-OrgID, as Alloy does with its configured
// headers.
type tenantTransport struct {
	base   http.RoundTripper
	tenant string
}

func (tt *tenantTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Header.Set("X-Scope-OrgID", tt.tenant)
	return tt.base.RoundTrip(r)
}

// TenantClient is an HTTP client over base that sends every request as
// tenant.
func TenantClient(base http.RoundTripper, tenant string) *http.Client {
	return &http.Client{Transport: &tenantTransport{base: base, tenant: tenant}}
}

// H1Transport is an HTTP/1.1 transport keeping up to conns idle
// connections, without proxies.
func H1Transport(conns int) *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     30 * time.Second,
	}
}

// Push sends push number i of p: pod i%Pods, in round i/Pods (its profile
// time). id is the RawSample.ID, "" for none.
func Push(c pushv1connect.PusherServiceClient, p *Profile, i int, id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), RequestTimeout)
	defer cancel()
	_, err := c.Push(ctx, connect.NewRequest(&pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
		Labels: []*typesv1.LabelPair{
			{Name: "__name__", Value: p.Name},
			{Name: "service_name", Value: p.Service},
			{Name: "pod", Value: fmt.Sprintf("pod-%02d", i%Pods)},
		},
		Samples: []*pushv1.RawSample{{RawProfile: p.Variants[(i/Pods)%len(p.Variants)], ID: id}},
	}}}))
	return err
}

// Load is what a timed push loop did.
type Load struct {
	OK, Failed int64
	FirstErr   error
	Wall       time.Duration
	Lat        []time.Duration // of the acknowledged pushes, sorted
}

// RunLoad calls push(i) for i = first, first+1, ... from conc goroutines
// until n calls are made, duration has passed or alive (when not nil)
// returns false.
func RunLoad(conc, first, n int, duration time.Duration, alive func() bool, push func(i int) error) *Load {
	return RunLoadWorkers(conc, first, n, duration, alive, func(_, i int) error { return push(i) })
}

// RunLoadWorkers is RunLoad with the worker's number (0..conc-1) passed
// to push, for clients that keep an identity (a tenant, a pod) of their own.
func RunLoadWorkers(conc, first, n int, duration time.Duration, alive func() bool,
	push func(w, i int) error) *Load {
	r := &Load{}
	var next atomic.Int64
	next.Store(int64(first))
	limit := int64(first + n)
	deadline := time.Now().Add(duration)
	lats := make([][]time.Duration, conc)
	var errOnce sync.Once
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for (alive == nil || alive()) && time.Now().Before(deadline) {
				i := next.Add(1) - 1
				if i >= limit {
					return
				}
				t := time.Now()
				if err := push(w, int(i)); err != nil {
					atomic.AddInt64(&r.Failed, 1)
					errOnce.Do(func() { r.FirstErr = err })
					continue
				}
				lats[w] = append(lats[w], time.Since(t))
				atomic.AddInt64(&r.OK, 1)
			}
		}(w)
	}
	wg.Wait()
	r.Wall = time.Since(t0)
	for _, l := range lats {
		r.Lat = append(r.Lat, l...)
	}
	slices.Sort(r.Lat)
	return r
}

// PerSecond is OK pushes per second of wall time.
func (r *Load) PerSecond() float64 { return float64(r.OK) / r.Wall.Seconds() }

// Percentile is the q quantile (nearest rank) of sorted, in milliseconds;
// 0 for none.
func Percentile(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return float64(sorted[int(q*float64(len(sorted)-1)+0.5)]) / float64(time.Millisecond)
}

// F2 and F1 format a figure with two and one decimals, as the tables do.
func F2(v float64) string { return fmt.Sprintf("%.2f", v) }
func F1(v float64) string { return fmt.Sprintf("%.1f", v) }
