package firstrun

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"kiln.dev/tests/lib/kilntest"
)

// run runs kiln with args to completion (bounded) and returns its output.
func run(t *testing.T, args ...string) (string, int) {
	t.Helper()
	bin := kilntest.RequireBin(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("kiln %v: %v", args, err)
	}
	return string(out), code
}

func TestVersionAndBuildInfoMetric(t *testing.T) {
	out, code := run(t, "-version")
	t.Logf("kiln -version: %q", out)
	m := regexp.MustCompile(`^kiln, version (\S+) \(revision: (\S+)\)\n  build date: (\S+)\n$`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("kiln -version: exit %d, %q; want version, revision and build date", code, out)
	}
	if m[1] == "unknown" || m[2] == "unknown" {
		t.Errorf("version %q revision %q: want both known in a git checkout", m[1], m[2])
	}
	s := kilntest.Start(t, kilntest.OTLPOff())
	resp, err := kilntest.TenantClient(t, "").Get(s.HTTPURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := `kiln_build_info{version="` + m[1] + `",revision="` + m[2] + `"`
	var line string
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, "kiln_build_info{") {
			line = l
		}
	}
	t.Logf("metric: %s", line)
	if !strings.HasPrefix(line, want) || !strings.HasSuffix(line, "} 1") ||
		!strings.Contains(line, `builddate="`+m[3]+`"`) {
		t.Errorf("kiln_build_info line %q; want it to start %s, carry the build date and be 1", line, want)
	}
}

func TestHelpGroupedDefaultsOnce(t *testing.T) {
	out, code := run(t, "-help")
	if code != 0 {
		t.Fatalf("kiln -help: exit %d", code)
	}
	// Each flag is "  -name\n\thelp (default ...)\n".
	flags := regexp.MustCompile(`(?m)^  -(\S+)\n\t(.*)$`).FindAllStringSubmatch(out, -1)
	if len(flags) < 20 {
		t.Fatalf("only %d flags in -help", len(flags))
	}
	for _, f := range flags {
		if n := strings.Count(f[2], "default"); n > 1 {
			t.Errorf("-%s says its default %d times: %q", f[1], n, f[2])
		}
		if strings.Contains(f[2], `(default "")`) {
			t.Errorf("-%s prints an empty default", f[1])
		}
	}
	// Grouped: every dotted flag sits under the heading of its module.
	group := ""
	for _, l := range strings.Split(out, "\n") {
		if h := regexp.MustCompile(`^([a-z-]+):$`).FindStringSubmatch(l); h != nil {
			group = h[1]
			continue
		}
		if f := regexp.MustCompile(`^  -([a-z-]+)\.`).FindStringSubmatch(l); f != nil && f[1] != group {
			t.Errorf("%s is under %q, want under %q", strings.TrimSpace(l), group, f[1])
		}
	}
}

func TestStartLineSaysOTLPOff(t *testing.T) {
	s := kilntest.Start(t, kilntest.OTLPOff(), kilntest.LogLevel("info"), kilntest.IgnoreEnvArgs())
	lines := s.Log.Grep("listening")
	t.Logf("start line: %v", lines)
	if len(lines) != 1 || !strings.Contains(lines[0], "otlp_grpc=off") {
		t.Errorf("start line %v; want one saying otlp_grpc=off", lines)
	}
}

// A port another process holds: one error line naming it, no gRPC core
// internals, exit 1. Both the HTTP port and the gRPC port.
func TestPortClashIsOneLine(t *testing.T) {
	s := kilntest.Start(t, kilntest.OTLPOff())
	_, httpPort, _ := net.SplitHostPort(s.HTTPAddr)
	_, grpcPort, _ := net.SplitHostPort(s.GRPCAddr)
	cases := []struct{ name, want string }{
		{"HTTP", "127.0.0.1:" + httpPort + " (HTTP)"},
		{"gRPC", "127.0.0.1:" + grpcPort + " (gRPC)"},
	}
	for _, c := range cases {
		args := []string{"-server.otlp-grpc-listen-port=-1", "-server.http-listen-address=127.0.0.1",
			"-server.grpc-listen-address=127.0.0.1", "-storage.path=data"}
		if c.name == "HTTP" {
			args = append(args, "-server.http-listen-port="+httpPort, "-server.grpc-listen-port=0")
		} else {
			args = append(args, "-server.http-listen-port=0", "-server.grpc-listen-port="+grpcPort)
		}
		out, code := run(t, args...)
		t.Logf("%s clash: exit %d\n%s", c.name, code, out)
		if code != 1 {
			t.Errorf("%s clash: exit %d, want 1", c.name, code)
		}
		var errs []string
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			l := sc.Text()
			if !strings.HasPrefix(l, "ts=") {
				t.Errorf("%s clash: a line not Kiln's own: %q", c.name, l)
			}
			if strings.Contains(l, "level=error") {
				errs = append(errs, l)
			}
		}
		if len(errs) != 1 || !strings.Contains(errs[0], "cannot listen on "+c.want) {
			t.Errorf("%s clash: error lines %q; want one naming %s", c.name, errs, c.want)
		}
	}
}

func TestGetIngestIs405(t *testing.T) {
	s := kilntest.Start(t, kilntest.OTLPOff())
	for _, path := range []string{"/ingest", "/ingest?name=app.cpu", "/pyroscope/ingest"} {
		resp, err := kilntest.TenantClient(t, "").Get(s.HTTPURL() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
			t.Errorf("GET %s: HTTP %d Allow %q; want 405 Allow: POST", path, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
}

// The HTTP port sorts connections by their first bytes: one that says
// nothing for longer than the listener waits (5 s) is HTTP/1.1's, and
// is answered when it finally asks.
func TestSilentClientIsServed(t *testing.T) {
	s := kilntest.Start(t, kilntest.OTLPOff())
	conn, err := net.DialTimeout("tcp", s.HTTPAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	time.Sleep(6 * time.Second)
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, "GET /ready HTTP/1.1\r\nHost: kiln\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer after a silent start: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /ready after 6 s of silence: HTTP %d", resp.StatusCode)
	}
}

// make run installs only what the build needs, and only once: with its
// stamp in place it runs no installer at all (no package registry needed),
// and the first time it runs the build half of .ci/install-deps, never the
// peer tests' Go, npm or pip packages. make test still installs everything.
func TestMakeRunInstallsBuildDepsOnce(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	build := t.TempDir()
	plan := func(target string) string {
		cmd := exec.Command("make", "-n", "-C", root, target, "BUILD="+build)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make -n %s: %v\n%s", target, err, out)
		}
		return string(out)
	}
	first := plan("run")
	t.Logf("first make run:\n%s", first)
	if !strings.Contains(first, ".ci/install-deps build") || regexp.MustCompile(`install-deps\s*\n`).MatchString(first) {
		t.Errorf("a first make run must install the build dependencies only")
	}
	if err := os.WriteFile(filepath.Join(build, ".build-deps.stamp"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// Written now, the stamp is newer than the script.
	again := plan("run")
	t.Logf("next make run:\n%s", again)
	if strings.Contains(again, "install-deps") {
		t.Errorf("make run installs again although its stamp is there")
	}
	if test := plan("test"); !regexp.MustCompile(`(?m)^\.ci/install-deps$`).MatchString(test) {
		t.Errorf("make test must install everything:\n%s", test)
	}
}
