package javaagent

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"

	"kiln.dev/tests/lib/kilntest"
)

const (
	// agentVersion is the io.pyroscope:agent release the test attaches
	// (the newest on Maven Central when written); .ci/install-deps fetches it.
	agentVersion = "2.9.2"
	// appSeconds is how long the Java program runs; the test stops it as
	// soon as it has seen everything.
	appSeconds = 90
	// seenTimeout bounds the polling of the querier after the start.
	seenTimeout = 75 * time.Second
	pollEvery   = 2 * time.Second
	maxPolls    = 40 // a second bound, should time be odd
	stopGrace   = 3 * time.Second
	tailLines   = 40
)

// want is one thing the test must find: a method of the program in the
// flame graph of a profile type, in the series a selector picks.
type want struct {
	what     string
	typeID   string
	selector string
	frame    string // a flame graph name containing it counts
	absent   bool   // the frame must NOT be there (labels keep series apart)
}

// unavailable skips the test, or with KILN_REQUIRE_AGENTS set (CI machines prepared by
// .ci/install-deps) a missing Java or agent fails instead of skipping.
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if v := os.Getenv("KILN_REQUIRE_AGENTS"); v != "" && v != "0" {
		t.Fatalf("Java agent unavailable (KILN_REQUIRE_AGENTS is set): %s", msg)
	}
	t.Skipf("Java agent unavailable: %s", msg)
}

// agentJar finds io.pyroscope:agent in the local Maven repository
// (KILN_PYROSCOPE_JAVA_AGENT overrides), fetching it with mvn when absent.
func agentJar(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("KILN_PYROSCOPE_JAVA_AGENT"); p != "" {
		return p
	}
	home, _ := os.UserHomeDir()
	jar := filepath.Join(home, ".m2", "repository", "io", "pyroscope", "agent", agentVersion,
		"agent-"+agentVersion+".jar")
	if _, err := os.Stat(jar); err == nil {
		return jar
	}
	if _, err := exec.LookPath("mvn"); err != nil {
		unavailable(t, "%s is missing and there is no mvn to fetch it", jar)
	}
	cmd := exec.Command("mvn", "-q", "-B", "dependency:get",
		"-Dartifact=io.pyroscope:agent:"+agentVersion, "-Dtransitive=false")
	out, err := runBounded(cmd, 5*time.Minute)
	if _, serr := os.Stat(jar); serr != nil {
		unavailable(t, "mvn dependency:get io.pyroscope:agent:%s: %v: %s", agentVersion, err, out)
	}
	return jar
}

// runBounded runs cmd, killing it after d.
func runBounded(cmd *exec.Cmd, d time.Duration) (string, error) {
	timer := time.AfterFunc(d, func() {
		if cmd.Process != nil {
			_ = cmd.Process.Kill()
		}
	})
	defer timer.Stop()
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// compile builds app/KilnJavaApp.java against the agent's API into a
// temporary directory.
func compile(t *testing.T, jar string) string {
	t.Helper()
	for _, tool := range []string{"java", "javac"} {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable(t, "%s: %v", tool, err)
		}
	}
	dir := t.TempDir()
	src, err := filepath.Abs(filepath.Join("app", "KilnJavaApp.java"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := runBounded(exec.Command("javac", "-d", dir, "-cp", jar, src), 2*time.Minute)
	if err != nil {
		t.Fatalf("javac: %v: %s", err, out)
	}
	return dir
}

// app is one run of the Java program: its process, and the directory its
// JVM writes a crash report (hs_err) to.
type app struct {
	p      *kilntest.Proc
	errDir string
}

// startApp runs the program with the agent attached and env added.
func startApp(t *testing.T, jar, classes string, env ...string) app {
	t.Helper()
	errDir := t.TempDir()
	cmd := exec.Command("java", "-XX:ErrorFile="+filepath.Join(errDir, "hs_err_pid%p.log"),
		"-javaagent:"+jar, "-cp", jar+string(os.PathListSeparator)+classes,
		"KilnJavaApp", fmt.Sprint(appSeconds))
	cmd.Env = append(os.Environ(), env...)
	t.Logf("starting: %s %s", strings.Join(env, " "), strings.Join(cmd.Args, " "))
	p, err := kilntest.StartProc(t, "java", cmd)
	if err != nil {
		t.Fatalf("start java: %v", err)
	}
	t.Cleanup(func() { p.StopWithin(stopGrace) })
	return app{p, errDir}
}

// crashedInProfiler says whether a's JVM died in the agent's native
// profiler (async-profiler's library in its crash report): a fault of the
// client, before anything reached Kiln, seen once in CI in async-profiler's
// OTLP dump (Profiler::dumpOtlp).
func (a app) crashedInProfiler() bool {
	reports, _ := filepath.Glob(filepath.Join(a.errDir, "hs_err_pid*.log"))
	for _, r := range reports {
		if b, err := os.ReadFile(r); err == nil && bytes.Contains(b, []byte("libasyncProfiler")) {
			return true
		}
	}
	return false
}

// frameTotal is the summed total of the flame graph nodes whose name
// contains frame (levels are [x, total, self, name] quads).
func frameTotal(fg *querierv1.FlameGraph, frame string) int64 {
	names := fg.GetNames()
	var sum int64
	for _, lvl := range fg.GetLevels() {
		v := lvl.GetValues()
		for i := 0; i+3 < len(v); i += 4 {
			if idx := v[i+3]; idx >= 0 && idx < int64(len(names)) && strings.Contains(names[idx], frame) {
				sum += v[i+1]
			}
		}
	}
	return sum
}

// check asks for w's flame graph over [start, end] and says whether w holds.
func check(t *testing.T, q querierv1connect.QuerierServiceClient, w want, start, end int64) (bool, string) {
	ctx, cancel := kilntest.ReqCtx(t)
	defer cancel()
	maxNodes := int64(16384)
	resp, err := q.SelectMergeStacktraces(ctx, connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
		ProfileTypeID: w.typeID, LabelSelector: w.selector, Start: start, End: end, MaxNodes: &maxNodes,
	}))
	if err != nil {
		return false, fmt.Sprintf("%s: %v", w.what, err)
	}
	fg := resp.Msg.GetFlamegraph()
	got := frameTotal(fg, w.frame)
	note := fmt.Sprintf("%s: %s in %s %s = %d of %d", w.what, w.frame, w.typeID, w.selector, got, fg.GetTotal())
	if w.absent {
		return got == 0, note
	}
	return got > 0, note
}

// pollAll polls the querier until every want holds, bounded in time and
// count; it fails with the last notes and the program's output. A program
// whose JVM crashed in the agent's own profiler is run once more (start)
// with fresh bounds: what Kiln must show is unchanged.
func pollAll(t *testing.T, q querierv1connect.QuerierServiceClient, start func() app, wants []want) {
	t.Helper()
	a := start()
	p := a.p
	began := time.Now()
	from := began.Add(-5 * time.Minute).UnixMilli()
	deadline := began.Add(seenTimeout)
	rerun := false
	var notes []string
	for polls := 1; ; polls++ {
		end := time.Now().Add(time.Minute).UnixMilli()
		notes = notes[:0]
		done := true
		for _, w := range wants {
			ok, note := check(t, q, w, from, end)
			notes = append(notes, note)
			done = done && ok
		}
		if done {
			t.Logf("all seen after %v (%d polls):\n  %s", time.Since(began).Round(time.Millisecond), polls,
				strings.Join(notes, "\n  "))
			return
		}
		if p.Exited() && !rerun && a.crashedInProfiler() {
			t.Logf("the JVM crashed in the agent's profiler (async-profiler; report in %s), not in "+
				"Kiln: running the program once more\n%s", a.errDir, p.Log.Tail(tailLines))
			rerun = true
			a = start()
			p = a.p
			polls, deadline = 0, time.Now().Add(seenTimeout)
			continue
		}
		if time.Now().After(deadline) || polls >= maxPolls || p.Exited() {
			t.Fatalf("after %d polls over %v (program exited: %v), not everything was seen:\n  %s\nprogram output:\n%s",
				polls, time.Since(began).Round(time.Millisecond), p.Exited(), strings.Join(notes, "\n  "),
				p.Log.Tail(tailLines))
		}
		time.Sleep(pollEvery)
	}
}

// commonEnv is the agent configuration both modes share: short uploads,
// allocation and lock profiling on, static labels.
func commonEnv(server, app string) []string {
	return []string{
		"PYROSCOPE_SERVER_ADDRESS=" + server,
		"PYROSCOPE_APPLICATION_NAME=" + app,
		"PYROSCOPE_UPLOAD_INTERVAL=2s",
		"PYROSCOPE_PROFILER_ALLOC=512k",
		"PYROSCOPE_PROFILER_LOCK=1ms",
		"PYROSCOPE_LABELS=env=peer,kiln_agent=java",
		"PYROSCOPE_LOG_LEVEL=info",
	}
}

// startKiln starts kiln for one mode: recordings of a busy JVM pass the
// default 4 MiB profile size, so the limit is raised.
func startKiln(t *testing.T) (*kilntest.Server, querierv1connect.QuerierServiceClient) {
	s := kilntest.Start(t, kilntest.OtherListenersOnLoopback(),
		kilntest.Args("-validation.max-profile-size-bytes=64MiB"))
	return s, s.Clients(t, "").Query
}

const (
	cpuType   = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
	allocType = "memory:alloc_in_new_tlab_bytes:bytes:space:bytes"
	lockType  = "mutex:contentions:count:mutex:count"
)

// TestJavaAgentJFR: the agent's default mode, POST /ingest?format=jfr with
// a multipart form of the gzipped recording and the LabelsSnapshot. Each
// method is found in its profile type and in the series its dynamic label
// names, under the static labels.
func TestJavaAgentJFR(t *testing.T) {
	kilntest.RequireBin(t)
	jar := agentJar(t)
	classes := compile(t, jar)
	srv, q := startKiln(t)
	name := "kiln-java-jfr-" + kilntest.RandomHex(4)
	start := func() app { return startApp(t, jar, classes, commonEnv(srv.HTTPURL(), name)...) }
	sel := func(worker string) string {
		return fmt.Sprintf(`{service_name=%q,env="peer",kiln_agent="java",worker=%q}`, name, worker)
	}
	pollAll(t, q, start, []want{
		{"cpu", cpuType, sel("cpu"), "KilnJavaApp.cpuHot", false},
		{"alloc", allocType, sel("alloc"), "KilnJavaApp.allocHeavy", false},
		{"lock", lockType, sel("lock"), "KilnJavaApp.lockContended", false},
		{"lock delay", "mutex:delay:nanoseconds:mutex:count", sel("lock"), "KilnJavaApp.lockContended", false},
		{"cpu not under the alloc label", cpuType, sel("alloc"), "KilnJavaApp.cpuHot", true},
		{"alloc not under the cpu label", allocType, sel("cpu"), "KilnJavaApp.allocHeavy", true},
	})
}

// TestJavaAgentOTLP: PYROSCOPE_FORMAT=otlp, async-profiler's own OTLP
// export to /v1development/profiles. The agent allows one event at a time
// in this mode (its sequential sampling takes turns), and its export
// carries no resource attributes (the agent warns "OTLP export does not
// include the configured application name or labels"), so the data lands
// under service_name="unknown_service" and under the names Pyroscope's
// OTLP conversion gives async-profiler's sample types. Every event the
// agent turned to must be there.
func TestJavaAgentOTLP(t *testing.T) {
	kilntest.RequireBin(t)
	jar := agentJar(t)
	classes := compile(t, jar)
	srv, q := startKiln(t)
	name := "kiln-java-otlp-" + kilntest.RandomHex(4)
	env := append(commonEnv(srv.HTTPURL(), name), "PYROSCOPE_FORMAT=otlp",
		"PYROSCOPE_UPLOAD_INTERVAL=3s", "PYROSCOPE_SAMPLING_DURATION=1s",
		"PYROSCOPE_SAMPLING_EVENT_ORDER=itimer,alloc,lock")
	start := func() app { return startApp(t, jar, classes, env...) }
	sel := `{service_name="unknown_service"}`
	pollAll(t, q, start, []want{
		{"cpu", "itimer:itimer:ns:itimer:ns", sel, "KilnJavaApp.cpuHot", false},
		{"alloc", "object_sampler:object_sampler:bytes:object_sampler:bytes", sel, "KilnJavaApp.allocHeavy", false},
		{"lock", "lock_tracer:lock_tracer:ns:lock_tracer:ns", sel, "KilnJavaApp.lockContended", false},
	})
}
