package cigate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pprof "github.com/google/pprof/profile"
	"kiln.dev/tests/lib/kilntest"
)

// The benchmark: three functions with the same loop (written out in each,
// since an inlined helper would take their self time), so that what the rest
// of the machine does (a sibling hyperthread's load, the clock) slows each
// alike and leaves their shares alone: with different instruction mixes an
// identical build once moved one function's share by 20%. Each call runs for
// about 15 ms, longer than the profiler's 10 ms period: a call then gets its
// length in samples give or take one, whatever the phase of the clock. With
// 0.1 ms calls the samples fell in step with the loop's period, and a run's
// shares followed how the two drifted, not the code: an identical build's
// mean share once moved by a third. The slow build makes beta do three times
// the work, so its share about doubles (from a third to three fifths): at
// 100 Hz and a few hundred samples a run, smaller changes need more runs
// than a test should take to be told from noise.
const benchSrc = `package benchprog

import "testing"

var sink uint64

// About 15 ms of one core per call.
const callIters = 9000000

//go:noinline
func alpha(n int) uint64 {
	x := uint64(1)
	for i := 0; i < n; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return x
}

//go:noinline
func beta(n int) uint64 {
	x := uint64(3)
	for i := 0; i < n*BETA_FACTOR; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return x
}

//go:noinline
func gamma(n int) uint64 {
	x := uint64(5)
	for i := 0; i < n; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return x
}

func BenchmarkWork(b *testing.B) {
	for i := 0; i < b.N; i++ {
		sink += alpha(callIters) + beta(callIters) + gamma(callIters)
	}
}
`

const (
	// A function's share of ~140 samples a run moves by about 12% from run
	// to run by sampling alone, so the two sides' means (5 and 4 runs) could
	// differ by about 8%: the default 10% would now and then fail an
	// identical build whose runs the rank test happens to separate. (Long
	// calls keep it nearer 5%, see benchSrc.) Beta's slowdown is +80%.
	thresholdPct = 30
	baselineRuns = 5
	currentRuns  = 4
	// Fixed work, not a wall-clock target: on a loaded machine a time
	// target gives a starved process few samples (~1 s of CPU = 100
	// samples). 30 rounds of three 15 ms calls is ~1.4 s.
	benchTime = "30x"
	// Go preempts a loop that runs past 10 ms by a signal, and the CPU
	// profile shows the time around it as runtime.asyncPreempt, whose share
	// follows the machine's load (3% to 30% of an identical build's runs):
	// a function no build changed, moving past any threshold. The loops here
	// call nothing, allocate nothing and run alone, so they need no
	// preemption by signal.
	noAsyncPreempt = "GODEBUG=asyncpreemptoff=1"
)

// buildBench compiles the benchmark with beta's factor into a test binary.
func buildBench(t *testing.T, dir string, factor int) string {
	t.Helper()
	src := filepath.Join(dir, fmt.Sprintf("src%d", factor))
	must(t, os.MkdirAll(src, 0o755))
	must(t, os.WriteFile(filepath.Join(src, "go.mod"), []byte("module benchprog\n\ngo 1.21\n"), 0o644))
	code := strings.Replace(benchSrc, "BETA_FACTOR", fmt.Sprint(factor), 1)
	must(t, os.WriteFile(filepath.Join(src, "bench_test.go"), []byte(code), 0o644))
	bin := filepath.Join(dir, fmt.Sprintf("bench%d.test", factor))
	run(t, src, 2*time.Minute, "go", "test", "-c", "-o", bin, ".")
	return bin
}

// ciRun is one CI run's CPU profile of the benchmark program.
type ciRun struct {
	branch, commit, prof string
	i                    int
}

// profile runs the benchmark binary once under the CPU profiler, as CI run
// i of `branch` at `commit` (uploaded later, to each target).
func profile(t *testing.T, bin, dir, branch, commit string, i int) ciRun {
	t.Helper()
	prof := filepath.Join(dir, fmt.Sprintf("%s-%d.pprof", branch, i))
	start := time.Now()
	runEnv(t, dir, time.Minute, noAsyncPreempt, bin, "-test.run", "^$", "-test.bench", ".",
		"-test.benchtime", benchTime, "-test.cpuprofile", prof)
	t.Logf("%s run %d: benchmark %.1fs, %s", branch, i, time.Since(start).Seconds(), leafShares(t, prof))
	return ciRun{branch, commit, prof, i}
}

// leafShares tells each function's share of a run's samples as its leaf,
// read by google/pprof: what a failed gate's means are made of.
func leafShares(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	must(t, err)
	defer f.Close()
	p, err := pprof.Parse(f)
	must(t, err)
	byLeaf := map[string]int64{}
	var total int64
	for _, s := range p.Sample {
		total += s.Value[0]
		if len(s.Location) > 0 && len(s.Location[0].Line) > 0 {
			byLeaf[s.Location[0].Line[0].Function.Name] += s.Value[0]
		}
	}
	out := fmt.Sprintf("%d samples", total)
	for _, fn := range []string{"alpha", "beta", "gamma"} {
		out += fmt.Sprintf(" %s %.1f%%", fn, 100*float64(byLeaf["benchprog."+fn])/float64(max(total, 1)))
	}
	return out
}

// target is where the gate talks to: one kiln, or a cluster's distributor
// (uploads) and querier (compares), with the auth flags it needs.
type target struct {
	uploadURL, queryURL string
	auth                []string
}

type junit struct {
	Failures int `xml:"failures,attr"`
	Cases    []struct {
		Name    string    `xml:"name,attr"`
		Failure *struct{} `xml:"failure"`
	} `xml:"testcase"`
}

// gate runs `kiln ci compare` for the branch and returns its exit code, report and JUnit.
func gate(t *testing.T, kiln string, to target, dir, branch string) (int, string, junit) {
	t.Helper()
	report := filepath.Join(dir, branch+".md")
	junitPath := filepath.Join(dir, branch+".xml")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := append([]string{"ci", "compare", "--url", to.queryURL, "--service", "benchprog",
		"--baseline", `{ci_branch="main"}`, "--current", fmt.Sprintf(`{ci_branch=%q}`, branch),
		"--min-share", "5", "--threshold", fmt.Sprint(thresholdPct), "--report", report, "--junit", junitPath}, to.auth...)
	cmd := exec.CommandContext(ctx, kiln, args...)
	out, err := cmd.CombinedOutput()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("kiln ci compare: %v\n%s", err, out)
	}
	md, rerr := os.ReadFile(report)
	if rerr != nil {
		t.Fatalf("no report (exit %d): %v\n%s", code, rerr, out)
	}
	var j junit
	x, jerr := os.ReadFile(junitPath)
	if jerr != nil || xml.Unmarshal(x, &j) != nil {
		t.Fatalf("no valid JUnit XML: %v\n%s", jerr, x)
	}
	t.Logf("gate %s: exit %d\n%s\n%s", branch, code, out, md)
	return code, string(md), j
}

func TestGate(t *testing.T) {
	kiln := kilntest.RequireBin(t)
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go toolchain")
	}
	dir := t.TempDir()
	base := buildBench(t, dir, 1)
	slow := buildBench(t, dir, 3)
	// The three kinds of run take turns, so that the machine's load as it
	// changes (other tests start and end beside this one) falls on each
	// alike: main's runs all first once made an identical build differ
	// from them by 18% in one function's share, past the threshold.
	var runs []ciRun
	for i := 0; i < baselineRuns || i < currentRuns; i++ {
		if i < baselineRuns {
			runs = append(runs, profile(t, base, dir, "main", "c0ffee1", i))
		}
		if i < currentRuns {
			runs = append(runs, profile(t, base, dir, "same", "c0ffee2", i),
				profile(t, slow, dir, "slow", "c0ffee3", i))
		}
	}
	t.Run("single", func(t *testing.T) {
		srv := kilntest.Start(t)
		checkGate(t, kiln, target{uploadURL: srv.HTTPURL(), queryURL: srv.HTTPURL()}, runs)
	})
	t.Run("cluster-with-auth", func(t *testing.T) {
		checkGate(t, kiln, authCluster(t), runs)
	})
}

// authCluster starts a cluster (NATS, an ingester, a distributor and a
// querier, every one with a tokens file) and the target that reaches it
// with a token for the tenant "ci-team".
func authCluster(t *testing.T) target {
	const token = "ci-gate-token-6f1d0c55e1b84b1e9a"
	sum := sha256.Sum256([]byte(token))
	tokens := filepath.Join(t.TempDir(), "tokens.yaml")
	must(t, os.WriteFile(tokens, []byte("tokens:\n  - name: ci\n    sha256: "+hex.EncodeToString(sum[:])+
		"\n    tenants: [ci-team]\n    scope: [read, write]\n"), 0o600))
	nats := kilntest.StartNATS(t)
	args := kilntest.Args("-cluster.nats-url="+nats.URL(), "-storage.filesystem.dir="+t.TempDir(),
		"-distributor.replication-factor=1", "-auth.tokens-file="+tokens, "-auth.multitenancy-enabled=true")
	kilntest.Start(t, kilntest.Target("ingester"), kilntest.Name("ingester"), args)
	d := kilntest.Start(t, kilntest.Target("distributor"), kilntest.Name("distributor"), args)
	q := kilntest.Start(t, kilntest.Target("querier"), kilntest.Name("querier"), args)
	return target{uploadURL: d.HTTPURL(), queryURL: q.HTTPURL(),
		auth: []string{"--token", token, "--tenant", "ci-team"}}
}

// checkGate uploads the runs to the target, then the gate must pass the
// identical build and fail the slowed one naming beta alone.
func checkGate(t *testing.T, kiln string, to target, runs []ciRun) {
	dir := t.TempDir()
	for _, r := range runs {
		uploadWhenReady(t, kiln, to, r)
	}
	code, md, j := gate(t, kiln, to, dir, "same")
	if code != 0 || j.Failures != 0 || !strings.Contains(md, "passed") {
		t.Errorf("identical build: exit %d, %d JUnit failures; want a pass", code, j.Failures)
	}
	if !strings.Contains(md, "benchprog.beta") || !strings.Contains(md, "?view=diff") {
		t.Errorf("identical build: the report lacks the functions or the diff link")
	}

	code, md, j = gate(t, kiln, to, dir, "slow")
	if code != 1 {
		t.Errorf("slowed build: exit %d, want 1", code)
	}
	failed := []string{}
	for _, c := range j.Cases {
		if c.Failure != nil {
			failed = append(failed, c.Name)
		}
	}
	if !contains(failed, "benchprog.beta") || !strings.Contains(md, "FAILED") {
		t.Errorf("slowed build: failures %v, want benchprog.beta among them", failed)
	}
	for _, f := range failed {
		if f == "benchprog.alpha" || f == "benchprog.gamma" {
			t.Errorf("slowed build: %s failed though only beta was slowed", f)
		}
	}
	// Without the token the same compare is refused.
	if len(to.auth) > 0 {
		out, err := exec.Command(kiln, "ci", "compare", "--url", to.queryURL, "--service", "benchprog",
			"--current", `{ci_branch="same"}`).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "401") {
			t.Errorf("a compare without the token: %v\n%s", err, out)
		}
	}
}

// uploadWhenReady uploads r; a cluster's distributor refuses pushes until
// it sees an ingester in the ring, so the first upload is retried (bounded).
func uploadWhenReady(t *testing.T, kiln string, to target, r ciRun) {
	t.Helper()
	args := append([]string{"ci", "upload", "--url", to.uploadURL, "--service", "benchprog",
		"--repo", "kiln/ci-gate-test", "--branch", r.branch, "--commit", r.commit, "--job", "bench",
		"--test", "BenchmarkWork", "--run", fmt.Sprintf("%s-%02d", r.branch, r.i)}, to.auth...)
	for attempt := 0; ; attempt++ {
		out, err := exec.Command(kiln, append(args, r.prof)...).CombinedOutput()
		if err == nil {
			return
		}
		if attempt == 50 {
			t.Fatalf("kiln ci upload: %v\n%s", err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, dir string, limit time.Duration, name string, args ...string) {
	t.Helper()
	runEnv(t, dir, limit, "", name, args...)
}

// runEnv is run with one more KEY=value in the command's environment.
func runEnv(t *testing.T, dir string, limit time.Duration, env, name string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if env != "" {
		cmd.Env = append(os.Environ(), env)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}
