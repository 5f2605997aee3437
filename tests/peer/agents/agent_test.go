package agents

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"kiln.dev/tests/lib/kilntest"
)

const (
	// agentRunSeconds is how long an agent program burns CPU before it
	// stops its profiler (flushing the last profile) and exits; the test
	// kills it earlier once it has what it needs.
	agentRunSeconds = 60
	// seenTimeout bounds how long a test polls the querier for the hot
	// function after the agent started.
	seenTimeout = 45 * time.Second
	// afterExitGrace is how long polling goes on after the agent exited on
	// its own, for its last upload to be queryable.
	afterExitGrace = 5 * time.Second
	pollEvery      = 2 * time.Second
	maxPolls       = 40 // a second bound, should queries be fast and time odd
	agentStopGrace = 3 * time.Second
	// outputTailLines is how much of an agent's output a failure repeats.
	outputTailLines = 40
)

// agentCase describes one SDK under test.
type agentCase struct {
	sdk string // "python", "node", "go": also the value of the kiln_agent tag
	// hot is the name of the function that burns CPU; a flame graph name
	// containing it counts (runtimes decorate names with files and lines).
	hot string
	// wantType is the profile type the hot function must show up in.
	wantType string
	// command builds the agent program's command line.
	command func(t *testing.T, server, app string) *exec.Cmd
}

// startAgent runs cmd with its output in the test log. Cleanup stops it
// (SIGTERM, then SIGKILL) before the server is stopped.
func startAgent(t *testing.T, sdk string, cmd *exec.Cmd) *kilntest.Proc {
	t.Helper()
	t.Logf("starting agent: %s", strings.Join(cmd.Args, " "))
	p, err := kilntest.StartProc(t, sdk, cmd)
	if err != nil {
		t.Fatalf("start %s agent: %v", sdk, err)
	}
	t.Cleanup(func() { p.StopWithin(agentStopGrace) })
	return p
}

// describeExit says how an agent ended.
func describeExit(p *kilntest.Proc) string {
	if p.State() == nil {
		return fmt.Sprintf("wait: %v", p.WaitErr())
	}
	return p.State().String()
}

// requireAgents reports whether a missing agent runtime fails the test
// (KILN_REQUIRE_AGENTS=1, for CI machines set up by .ci/install-deps)
// instead of skipping it.
func requireAgents() bool {
	v := os.Getenv("KILN_REQUIRE_AGENTS")
	return v != "" && v != "0"
}

// unavailable skips (or, with KILN_REQUIRE_AGENTS, fails) a test whose agent
// cannot run here, with the exact reason.
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if requireAgents() {
		t.Fatalf("agent unavailable (KILN_REQUIRE_AGENTS is set): %s", msg)
	}
	t.Skipf("agent unavailable: %s", msg)
}

// probe runs a short command and returns its combined output and error.
func probe(dir string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// moduleDir is the directory of this Go module (go test runs the tests in
// the package directory, which is the module root).
func moduleDir(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}

// observation is what one round of queries saw.
type observation struct {
	services   []string
	types      []string // __profile_type__ values of the service
	allTypes   []string // ProfileTypes, all services
	tagValues  []string // kiln_agent values of the service
	hotTotal   map[string]int64
	fgTotal    map[string]int64
	topNames   map[string][]string
	queryError error
}

func (o *observation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "service_name values=%q; profile types of the service=%q; ProfileTypes=%q; kiln_agent values=%q",
		o.services, o.types, o.allTypes, o.tagValues)
	ids := make([]string, 0, len(o.fgTotal))
	for id := range o.fgTotal {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		names := o.topNames[id]
		if len(names) > 15 {
			names = append(names[:15:15], "...")
		}
		fmt.Fprintf(&b, "\n  %s: flame graph total=%d, hot total=%d, names=%q", id, o.fgTotal[id], o.hotTotal[id], names)
	}
	if o.queryError != nil {
		fmt.Fprintf(&b, "\n  last query error: %v", o.queryError)
	}
	return b.String()
}

// hotFrameTotal decodes a flame graph (levels of [x_delta, total, self,
// name] quads) and returns the summed total of the nodes whose name
// contains hot, plus any layout problem.
func hotFrameTotal(fg *querierv1.FlameGraph, hot string) (int64, error) {
	names := fg.GetNames()
	var sum int64
	for li, lvl := range fg.GetLevels() {
		v := lvl.GetValues()
		if len(v)%4 != 0 {
			return 0, fmt.Errorf("level %d has %d values, not a multiple of 4", li, len(v))
		}
		for i := 0; i+3 < len(v); i += 4 {
			idx := v[i+3]
			if idx < 0 || idx >= int64(len(names)) {
				return 0, fmt.Errorf("level %d node %d: name index %d out of range (%d names)", li, i/4, idx, len(names))
			}
			if strings.Contains(names[idx], hot) {
				sum += v[i+1]
			}
		}
	}
	return sum, nil
}

// observe runs one round of queries for app over [start, end] (ms).
//
// The flame graph of the wanted type is asked first and the metadata
// after it: stored data only grows, so whatever the flame graph showed is
// already there for the later queries. Likewise the service's profile
// types are asked before ProfileTypes (all services).
func observe(t *testing.T, s *kilntest.Server, q querierv1connect.QuerierServiceClient, ac agentCase, app string, start, end int64) *observation {
	t.Helper()
	o := &observation{hotTotal: map[string]int64{}, fgTotal: map[string]int64{}, topNames: map[string][]string{}}
	sel := `{service_name="` + app + `"}`
	fail := func(what string, err error) {
		s.CheckAfterError(t, err)
		o.queryError = fmt.Errorf("%s: %w", what, err)
	}
	maxNodes := int64(8192)
	flame := func(id string) {
		ctx, cancel := kilntest.ReqCtx(t)
		defer cancel()
		resp, err := q.SelectMergeStacktraces(ctx, connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
			ProfileTypeID: id,
			LabelSelector: sel,
			Start:         start,
			End:           end,
			MaxNodes:      &maxNodes,
		}))
		if err != nil {
			fail(fmt.Sprintf("SelectMergeStacktraces(%s, %s)", id, sel), err)
			return
		}
		fg := resp.Msg.GetFlamegraph()
		hot, err := hotFrameTotal(fg, ac.hot)
		if err != nil {
			o.queryError = fmt.Errorf("SelectMergeStacktraces(%s, %s): bad flame graph: %w", id, sel, err)
			return
		}
		o.fgTotal[id] = fg.GetTotal()
		o.hotTotal[id] = hot
		o.topNames[id] = fg.GetNames()
	}
	labelValues := func(name string, matchers []string) ([]string, bool) {
		ctx, cancel := kilntest.ReqCtx(t)
		defer cancel()
		resp, err := q.LabelValues(ctx, connect.NewRequest(&typesv1.LabelValuesRequest{Name: name, Matchers: matchers, Start: start, End: end}))
		if err != nil {
			fail(fmt.Sprintf("LabelValues(%s, %q)", name, matchers), err)
			return nil, false
		}
		return resp.Msg.GetNames(), true
	}

	flame(ac.wantType)

	var ok bool
	if o.services, ok = labelValues("service_name", nil); !ok {
		return o
	}
	if o.types, ok = labelValues("__profile_type__", []string{sel}); !ok {
		return o
	}
	if o.tagValues, ok = labelValues("kiln_agent", []string{sel}); !ok {
		return o
	}
	ctx, cancel := kilntest.ReqCtx(t)
	pt, err := q.ProfileTypes(ctx, connect.NewRequest(&querierv1.ProfileTypesRequest{Start: start, End: end}))
	cancel()
	if err != nil {
		fail("ProfileTypes", err)
		return o
	}
	for _, p := range pt.Msg.GetProfileTypes() {
		o.allTypes = append(o.allTypes, p.GetID())
	}

	// Not there yet: look at the service's other types, so that a failure
	// can tell where the hot frames went.
	if o.hotTotal[ac.wantType] == 0 {
		for _, id := range o.types {
			if id != ac.wantType {
				flame(id)
			}
		}
	}
	return o
}

// runAgentTest is the whole test for one SDK: start kiln, start the agent
// against it, poll the querier until the hot function shows up in the
// wanted profile type, and check what the querier says about the service.
func runAgentTest(t *testing.T, ac agentCase) {
	s := kilntest.Start(t, kilntest.OtherListenersOnLoopback())
	// The querier client as Grafana's data source uses it: Connect unary,
	// binary proto, plain HTTP/1.1, no tenant header (the agents send none
	// either, so both sides are tenant "anonymous").
	q := s.Clients(t, "").Query
	app := "kiln-agent-" + ac.sdk + "-" + kilntest.RandomHex(4)
	testStart := time.Now()

	proc := startAgent(t, ac.sdk, ac.command(t, s.HTTPURL(), app))

	// Agents stamp profiles with their own clocks (Node in whole seconds):
	// query a window that comfortably covers the run.
	start := testStart.Add(-5 * time.Minute).UnixMilli()
	deadline := time.Now().Add(seenTimeout)
	var exitedAt time.Time
	var last *observation
	polls := 0
	for {
		polls++
		end := time.Now().Add(time.Minute).UnixMilli()
		last = observe(t, s, q, ac, app, start, end)
		if last.hotTotal[ac.wantType] > 0 {
			break
		}
		now := time.Now()
		if proc.Exited() && exitedAt.IsZero() {
			exitedAt = now
			t.Logf("%s agent exited on its own after %v: %s", ac.sdk, now.Sub(testStart).Round(time.Millisecond), describeExit(proc))
		}
		if now.After(deadline) || polls >= maxPolls || (!exitedAt.IsZero() && now.Sub(exitedAt) > afterExitGrace) {
			msg := fmt.Sprintf("after %d polls over %v, %q did not appear with a non-zero total in the %s flame graph of service_name=%q",
				polls, now.Sub(testStart).Round(time.Millisecond), ac.hot, ac.wantType, app)
			if !exitedAt.IsZero() {
				msg += "; the agent exited: " + describeExit(proc)
			}
			t.Fatalf("%s\nlast observation: %s\nagent output (last lines):\n%s", msg, last, proc.Log.Tail(outputTailLines))
		}
		time.Sleep(pollEvery)
	}
	t.Logf("%q seen after %v (%d polls): %s total=%d of flame graph total=%d",
		ac.hot, time.Since(testStart).Round(time.Millisecond), polls, ac.wantType, last.hotTotal[ac.wantType], last.fgTotal[ac.wantType])
	t.Logf("observation: %s", last)

	// What the querier says about the service, as Grafana would ask it.
	if !slices.Contains(last.services, app) {
		t.Errorf("LabelValues(service_name) = %q, does not contain %q although its flame graph has data", last.services, app)
	}
	if !slices.Contains(last.types, ac.wantType) {
		t.Errorf("LabelValues(__profile_type__, {service_name=%q}) = %q, does not contain %s although its flame graph has data", app, last.types, ac.wantType)
	}
	for _, id := range last.types {
		if !slices.Contains(last.allTypes, id) {
			t.Errorf("profile type %s of service %q is missing from ProfileTypes = %q", id, app, last.allTypes)
		}
	}
	// The SDK's tags must reach the series labels.
	if !slices.Equal(last.tagValues, []string{ac.sdk}) {
		t.Errorf("LabelValues(kiln_agent, {service_name=%q}) = %q, want [%q] (the tag the agent was configured with)", app, last.tagValues, ac.sdk)
	}
	if fg := last.fgTotal[ac.wantType]; last.hotTotal[ac.wantType] > fg {
		t.Errorf("%s: hot frame total %d exceeds the flame graph total %d", ac.wantType, last.hotTotal[ac.wantType], fg)
	}
	if proc.Exited() && proc.State() != nil && !proc.State().Success() {
		t.Errorf("%s agent failed: %s\n%s", ac.sdk, describeExit(proc), proc.Log.Tail(outputTailLines))
	}
}

const cpuType = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"

// TestPythonAgent: the pyroscope-io SDK (pyroscope-rs, Connect push.v1
// Push with Content-Encoding gzip) profiling a Python program.
func TestPythonAgent(t *testing.T) {
	t.Parallel()
	kilntest.RequireBin(t)
	dir := moduleDir(t)
	python := os.Getenv("KILN_PYTHON")
	if python == "" {
		python = "python3"
	}
	if _, err := exec.LookPath(python); err != nil {
		unavailable(t, "%s: %v", python, err)
	}
	if out, err := probe(dir, python, "-c", "import pyroscope, importlib.metadata as m; print(m.version('pyroscope-io'))"); err != nil {
		unavailable(t, "%s cannot import pyroscope (pip install -r requirements.txt): %v: %s", python, err, out)
	} else {
		t.Logf("pyroscope-io %s", out)
	}
	runAgentTest(t, agentCase{
		sdk:      "python",
		hot:      "kiln_hot_python_loop",
		wantType: cpuType,
		command: func(t *testing.T, server, app string) *exec.Cmd {
			cmd := exec.Command(python, filepath.Join(dir, "python", "app.py"), server, app, fmt.Sprint(agentRunSeconds))
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "KILN_AGENT_UPLOAD_INTERVAL=2", "PYTHONUNBUFFERED=1")
			return cmd
		},
	})
}

// TestNodeAgent: the @pyroscope/nodejs SDK (POST /ingest with a gzipped
// pprof body) profiling a Node program with its wall profiler.
func TestNodeAgent(t *testing.T) {
	t.Parallel()
	kilntest.RequireBin(t)
	dir := moduleDir(t)
	node := os.Getenv("KILN_NODE")
	if node == "" {
		node = "node"
	}
	if _, err := exec.LookPath(node); err != nil {
		unavailable(t, "%s: %v", node, err)
	}
	if out, err := probe(dir, node, "-e", "require('@pyroscope/nodejs'); const fs = require('fs'); console.log(JSON.parse(fs.readFileSync('node_modules/@pyroscope/nodejs/package.json')).version)"); err != nil {
		unavailable(t, "%s cannot load @pyroscope/nodejs (npm ci in %s): %v: %s", node, dir, err, out)
	} else {
		t.Logf("@pyroscope/nodejs %s", out)
	}
	runAgentTest(t, agentCase{
		sdk:      "node",
		hot:      "kilnHotNodeLoop",
		wantType: "wall:wall:nanoseconds:wall:nanoseconds",
		command: func(t *testing.T, server, app string) *exec.Cmd {
			cmd := exec.Command(node, filepath.Join(dir, "node", "app.js"), server, app, fmt.Sprint(agentRunSeconds))
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "KILN_AGENT_UPLOAD_INTERVAL_MS=2000", "DEBUG=pyroscope")
			return cmd
		},
	})
}

// TestGoAgent: the pyroscope-go SDK (POST /ingest multipart pprof)
// profiling a Go program built from ./goapp.
func TestGoAgent(t *testing.T) {
	t.Parallel()
	kilntest.RequireBin(t)
	dir := moduleDir(t)
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		p, lerr := exec.LookPath("go")
		if lerr != nil {
			unavailable(t, "no go command: %v; %v", err, lerr)
		}
		gobin = p
	}
	exe := filepath.Join(t.TempDir(), "goapp")
	if out, err := probe(dir, gobin, "build", "-o", exe, "./goapp"); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go build ./goapp: %v\n%s", err, out)
		}
		unavailable(t, "go build ./goapp: %v: %s", err, out)
	}
	runAgentTest(t, agentCase{
		sdk:      "go",
		hot:      "kilnHotGoLoop",
		wantType: cpuType,
		command: func(t *testing.T, server, app string) *exec.Cmd {
			cmd := exec.Command(exe, server, app, fmt.Sprint(agentRunSeconds))
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "KILN_AGENT_UPLOAD_INTERVAL=2s")
			return cmd
		},
	})
}
