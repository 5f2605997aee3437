// Package recording_rules proves recording rules against a real Prometheus
// (Debian's): rules created through settings.v1 with upstream's Connect
// client (JSON, as Profiles Drilldown sends), CPU profiles with known totals
// pushed with upstream's push client, and PromQL over Prometheus' HTTP API
// returning the totals, whole-profile and for one function, after Kiln
// remote-wrote them; and after kill -9 and a restart the counters go on
// from there, counting the next profile once, and a kill -9 amid pushes
// and remote writes never leaves Prometheus ahead of the saved counters.
package recording_rules

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/pprof/profile"

	capabilitiesv1 "github.com/grafana/pyroscope/api/gen/proto/go/capabilities/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/capabilities/v1/capabilitiesv1connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	settingsv1 "github.com/grafana/pyroscope/api/gen/proto/go/settings/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/settings/v1/settingsv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"kiln.dev/tests/lib/kilntest"
)

const cpuType = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"

// startPrometheus runs Debian's prometheus on a loopback port with the
// remote write receiver and a temporary TSDB; its base URL.
func startPrometheus(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus not installed (.ci/install-deps installs Debian's)")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte("global: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(kilntest.FreePort(t))
	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+addr, "--web.enable-remote-write-receiver")
	p, err := kilntest.StartProc(t, "prometheus", cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Cmd.Process.Kill(); <-p.Done() })
	base := "http://" + addr
	for i := 0; i < 200; i++ {
		res, err := http.Get(base + "/-/ready")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return base
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("prometheus not ready: %s", p.Log.Tail(20))
	return ""
}

// cpuProfile is one CPU profile at t: main;work 10 ms, main;idle 5 ms and
// main;work;helper 7 ms: 22 ms in all, 17 ms through work.
func cpuProfile(t *testing.T, at time.Time) []byte {
	t.Helper()
	fn := map[string]*profile.Function{}
	loc := map[string]*profile.Location{}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "cpu", Unit: "nanoseconds"}},
		PeriodType: &profile.ValueType{Type: "cpu", Unit: "nanoseconds"},
		Period:     10000000, TimeNanos: at.UnixNano(), DurationNanos: int64(10 * time.Second),
	}
	frame := func(name string) *profile.Location {
		if l, ok := loc[name]; ok {
			return l
		}
		f := &profile.Function{ID: uint64(len(fn) + 1), Name: name}
		fn[name] = f
		p.Function = append(p.Function, f)
		l := &profile.Location{ID: uint64(len(loc) + 1), Line: []profile.Line{{Function: f}}}
		loc[name] = l
		p.Location = append(p.Location, l)
		return l
	}
	add := func(v int64, leafFirst ...string) {
		s := &profile.Sample{Value: []int64{v}}
		for _, n := range leafFirst {
			s.Location = append(s.Location, frame(n))
		}
		p.Sample = append(p.Sample, s)
	}
	add(10000000, "work", "main")
	add(5000000, "idle", "main")
	add(7000000, "helper", "work", "main")
	var b bytes.Buffer
	if err := p.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// promValue is the value of PromQL q's single sample, or "" when none.
func promValue(t *testing.T, base, q string) string {
	t.Helper()
	res, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if len(body.Data.Result) != 1 {
		return ""
	}
	return fmt.Sprint(body.Data.Result[0].Value[1])
}

// waitValue polls Prometheus until q answers want (20 s at most).
func waitValue(t *testing.T, base, q, want string) {
	t.Helper()
	got := ""
	for i := 0; i < 200; i++ {
		if got = promValue(t, base, q); got == want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("PromQL %s = %q, want %q", q, got, want)
}

func TestRecordingRulesInPrometheus(t *testing.T) {
	kilntest.RequireEnv(t)
	prom := startPrometheus(t)
	k := kilntest.Start(t, kilntest.KillAtCleanup(), kilntest.Args(
		"-recording-rules.remote-write-url="+prom+"/api/v1/write",
		"-recording-rules.remote-write-interval=200ms",
		"-recording-rules.refresh-period=100ms"))
	tenant := kilntest.NewTenant("rules")
	c := k.Clients(t, tenant)
	rules := settingsv1connect.NewRecordingRulesServiceClient(c.HTTP, k.HTTPURL(), connect.WithProtoJSON())
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	// Drilldown offers "Create metric" only when the ruler flags are on.
	ff, err := capabilitiesv1connect.NewFeatureFlagsServiceClient(c.HTTP, k.HTTPURL()).
		GetFeatureFlags(ctx, connect.NewRequest(&capabilitiesv1.GetFeatureFlagsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	on := 0
	for _, f := range ff.Msg.FeatureFlags {
		if (f.Name == "pyroscopeRuler" || f.Name == "pyroscopeRulerFunctions") && f.Enabled {
			on++
		}
	}
	if on != 2 {
		t.Errorf("feature flags %v: want pyroscopeRuler and pyroscopeRulerFunctions on", ff.Msg.FeatureFlags)
	}
	matchers := []string{`{__profile_type__="` + cpuType + `", service_name="rr-app"}`}
	for _, r := range []*settingsv1.UpsertRecordingRuleRequest{
		{MetricName: "rr_cpu_nanoseconds", Matchers: matchers, GroupBy: []string{"service_name"},
			ExternalLabels: []*typesv1.LabelPair{{Name: "source", Value: "kiln"}}},
		{MetricName: "rr_work_cpu_nanoseconds", Matchers: matchers, GroupBy: []string{"service_name"},
			StacktraceFilter: &settingsv1.StacktraceFilter{
				FunctionName: &settingsv1.StacktraceFilterFunctionName{FunctionName: "work"}}},
		// Kiln's MetricType SELF (1; upstream's enum stops at TOTAL): only
		// the samples whose leaf frame is work.
		{MetricName: "rr_work_self_cpu_nanoseconds", Matchers: matchers, GroupBy: []string{"service_name"},
			StacktraceFilter: &settingsv1.StacktraceFilter{
				FunctionName: &settingsv1.StacktraceFilterFunctionName{FunctionName: "work",
					MetricType: settingsv1.MetricType(1)}}},
	} {
		res, err := rules.UpsertRecordingRule(ctx, connect.NewRequest(r))
		if err != nil {
			t.Fatal(err)
		}
		if res.Msg.Rule.ProfileType != cpuType || res.Msg.Rule.Id == "" {
			t.Fatalf("upsert answered %v", res.Msg.Rule)
		}
	}
	list, err := rules.ListRecordingRules(ctx, connect.NewRequest(&settingsv1.ListRecordingRulesRequest{}))
	if err != nil || len(list.Msg.Rules) != 3 {
		t.Fatalf("list: %v %v", list, err)
	}
	time.Sleep(300 * time.Millisecond) // past the refresh period: the distributor has the rules
	now := time.Now()
	for i := 0; i < 3; i++ {
		prof := cpuProfile(t, now.Add(time.Duration(i-3)*10*time.Second))
		for _, svc := range []string{"rr-app", "rr-other"} {
			_, err := c.Push.Push(ctx, connect.NewRequest(&pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
				Labels: []*typesv1.LabelPair{{Name: "__name__", Value: "process_cpu"},
					{Name: "service_name", Value: svc}},
				Samples: []*pushv1.RawSample{{RawProfile: prof, ID: kilntest.NewUUID()}},
			}}}))
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	waitValue(t, prom, `rr_cpu_nanoseconds{service_name="rr-app",source="kiln"}`, "66000000")
	waitValue(t, prom, `rr_work_cpu_nanoseconds{service_name="rr-app"}`, "51000000")
	waitValue(t, prom, `rr_work_self_cpu_nanoseconds{service_name="rr-app"}`, "30000000")
	if got := promValue(t, prom, `rr_cpu_nanoseconds{service_name="rr-other"}`); got != "" {
		t.Errorf("a profile the matchers exclude was counted: %s", got)
	}
	// One more profile, then kill -9 as soon as it is acknowledged (before
	// any remote write could send it), then a restart on the same storage:
	// the counters continue from the acknowledged pushes (journaled before
	// the acknowledgement), one more profile adds once: no reset, nothing
	// lost, nothing counted twice.
	_, err = c.Push.Push(ctx, connect.NewRequest(&pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
		Labels: []*typesv1.LabelPair{{Name: "__name__", Value: "process_cpu"},
			{Name: "service_name", Value: "rr-app"}},
		Samples: []*pushv1.RawSample{{RawProfile: cpuProfile(t, now.Add(-5*time.Second)), ID: kilntest.NewUUID()}},
	}}}))
	if err != nil {
		t.Fatal(err)
	}
	k.Kill(t)
	k = k.Restart(t)
	c = k.Clients(t, tenant)
	time.Sleep(300 * time.Millisecond)
	_, err = c.Push.Push(ctx, connect.NewRequest(&pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
		Labels: []*typesv1.LabelPair{{Name: "__name__", Value: "process_cpu"},
			{Name: "service_name", Value: "rr-app"}},
		Samples: []*pushv1.RawSample{{RawProfile: cpuProfile(t, time.Now()), ID: kilntest.NewUUID()}},
	}}}))
	if err != nil {
		t.Fatal(err)
	}
	waitValue(t, prom, `rr_cpu_nanoseconds{service_name="rr-app",source="kiln"}`, "110000000")
	waitValue(t, prom, `rr_work_cpu_nanoseconds{service_name="rr-app"}`, "85000000")
	waitValue(t, prom, `rr_work_self_cpu_nanoseconds{service_name="rr-app"}`, "50000000")
	if got := promValue(t, prom, `resets(rr_cpu_nanoseconds[10m])`); got != "0" {
		t.Errorf("the counter went back across the restart: resets = %s", got)
	}
	// The scrape endpoint has the same counters.
	res, err := c.HTTP.Get(k.HTTPURL() + "/metrics/tenant/" + tenant)
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	_, _ = body.ReadFrom(res.Body)
	res.Body.Close()
	if !bytes.Contains(body.Bytes(), []byte(`rr_work_cpu_nanoseconds{service_name="rr-app"} 85000000 `)) {
		t.Errorf("/metrics/tenant/%s:\n%s", tenant, body.String())
	}
}

// TestRecordingRulesAcrossDistributors: in a cluster each distributor
// counts the pushes it received, so each sends its own series, told apart
// by kiln_distributor; summed without that label they are the tenant's
// total, and neither series ever goes back (no interleaved partial counts).
func TestRecordingRulesAcrossDistributors(t *testing.T) {
	kilntest.RequireEnv(t)
	prom := startPrometheus(t)
	nats := kilntest.StartNATS(t)
	cluster := kilntest.Args("-cluster.nats-url="+nats.URL(), "-storage.filesystem.dir="+t.TempDir(),
		"-cluster.heartbeat-period=200ms", "-distributor.replication-factor=1")
	kilntest.Start(t, kilntest.Target("ingester"), kilntest.Name("ingester"), cluster)
	q := kilntest.Start(t, kilntest.Target("querier"), kilntest.Name("querier"), cluster)
	rw := kilntest.Args("-recording-rules.remote-write-url="+prom+"/api/v1/write",
		"-recording-rules.remote-write-interval=200ms", "-recording-rules.refresh-period=100ms")
	d1 := kilntest.Start(t, kilntest.Target("distributor"), kilntest.Name("distributor-1"), cluster, rw)
	// A -storage.path that does not exist yet, as on a fresh node: a
	// distributor has no WAL to make it, and its counters are kept there.
	d2 := kilntest.Start(t, kilntest.Target("distributor"), kilntest.Name("distributor-2"), cluster, rw,
		kilntest.Storage(filepath.Join(t.TempDir(), "fresh")))
	tenant := kilntest.NewTenant("rules-cluster")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	rules := settingsv1connect.NewRecordingRulesServiceClient(q.Clients(t, tenant).HTTP, q.HTTPURL())
	if _, err := rules.UpsertRecordingRule(ctx, connect.NewRequest(&settingsv1.UpsertRecordingRuleRequest{
		MetricName: "rrc_cpu_nanoseconds", GroupBy: []string{"service_name"},
		Matchers: []string{`{__profile_type__="` + cpuType + `", service_name="rrc-app"}`}})); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // past the refresh period
	push := func(d *kilntest.Server, at time.Time) {
		c := d.Clients(t, tenant)
		req := &pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
			Labels: []*typesv1.LabelPair{{Name: "__name__", Value: "process_cpu"},
				{Name: "service_name", Value: "rrc-app"}},
			Samples: []*pushv1.RawSample{{RawProfile: cpuProfile(t, at), ID: kilntest.NewUUID()}},
		}}}
		// Until the distributor sees the ingester in the ring a push is
		// refused, and a refused push counts nothing.
		for i := 0; ; i++ {
			_, err := c.Push.Push(ctx, connect.NewRequest(req))
			if err == nil {
				return
			}
			if i == 100 {
				t.Fatalf("%s: push: %v", d.Name, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	now := time.Now()
	push(d1, now.Add(-30*time.Second))
	push(d1, now.Add(-20*time.Second))
	push(d2, now.Add(-10*time.Second))
	waitValue(t, prom, `sum without (kiln_distributor) (rrc_cpu_nanoseconds{service_name="rrc-app"})`, "66000000")
	waitValue(t, prom, `count(rrc_cpu_nanoseconds{service_name="rrc-app"})`, "2")
	if got := promValue(t, prom, `sum(resets(rrc_cpu_nanoseconds[10m]))`); got != "0" {
		t.Errorf("a distributor's counter went back: resets = %s", got)
	}
}

// TestRecordingRulesKillWhilePushing: kill -9 lands while pushes and remote
// writes go on; each time the restarted Kiln's counter (what it loaded)
// holds every acknowledged push, and is at least the highest value
// Prometheus received, so the counter never goes back.
func TestRecordingRulesKillWhilePushing(t *testing.T) {
	kilntest.RequireEnv(t)
	prom := startPrometheus(t)
	args := kilntest.Args("-recording-rules.remote-write-url="+prom+"/api/v1/write",
		"-recording-rules.remote-write-interval=20ms", "-recording-rules.refresh-period=100ms")
	k := kilntest.Start(t, kilntest.KillAtCleanup(), args)
	tenant := kilntest.NewTenant("rules-kill")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	rules := settingsv1connect.NewRecordingRulesServiceClient(k.Clients(t, tenant).HTTP, k.HTTPURL())
	if _, err := rules.UpsertRecordingRule(ctx, connect.NewRequest(&settingsv1.UpsertRecordingRuleRequest{
		MetricName: "rrk_cpu_nanoseconds", GroupBy: []string{"service_name"},
		Matchers: []string{`{__profile_type__="` + cpuType + `", service_name="rrk-app"}`}})); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // past the refresh period
	const q = `max_over_time(rrk_cpu_nanoseconds{service_name="rrk-app"}[10m])`
	acked := 0
	for round := 0; round < 5; round++ {
		c := k.Clients(t, tenant)
		stop := make(chan struct{})
		done := make(chan int)
		for g := 0; g < 4; g++ {
			go func() {
				n := 0
				defer func() { done <- n }()
				for {
					select {
					case <-stop:
						return
					default:
					}
					_, err := c.Push.Push(ctx, connect.NewRequest(&pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
						Labels: []*typesv1.LabelPair{{Name: "__name__", Value: "process_cpu"},
							{Name: "service_name", Value: "rrk-app"}},
						Samples: []*pushv1.RawSample{{RawProfile: cpuProfile(t, time.Now()), ID: kilntest.NewUUID()}},
					}}}))
					if err != nil {
						return // killed
					}
					n++
				}
			}()
		}
		time.Sleep(time.Second)
		k.Kill(t)
		close(stop)
		pushed := 0
		for g := 0; g < 4; g++ {
			pushed += <-done
		}
		sent, _ := strconv.ParseFloat(promValue(t, prom, q), 64)
		k = k.Restart(t)
		loaded := tenantCounter(t, k, tenant, `rrk_cpu_nanoseconds{service_name="rrk-app"}`)
		t.Logf("round %d: %d pushes, Prometheus received at most %.0f, the restart loaded %.0f",
			round, pushed, sent, loaded)
		if pushed == 0 || sent == 0 {
			t.Fatalf("round %d: nothing pushed or sent", round)
		}
		if loaded < sent {
			t.Errorf("round %d: Prometheus received %.0f, the restart continued from %.0f", round, sent, loaded)
		}
		// Every acknowledged push counts (a push cut by the kill may too).
		acked += pushed
		if loaded < float64(acked)*22e6 || loaded > float64(acked+4)*22e6 {
			t.Errorf("round %d: %d pushes acknowledged in all (%.0f ns), the restart loaded %.0f",
				round, acked, float64(acked)*22e6, loaded)
		}
	}
}

// tenantCounter is series' value on Kiln's /metrics/tenant/<tenant>.
func tenantCounter(t *testing.T, k *kilntest.Server, tenant, series string) float64 {
	t.Helper()
	res, err := k.Clients(t, tenant).HTTP.Get(k.HTTPURL() + "/metrics/tenant/" + tenant)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(res.Body)
	for _, line := range strings.Split(body.String(), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == series {
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("/metrics/tenant/%s has no %s:\n%s", tenant, series, body.String())
	return 0
}
