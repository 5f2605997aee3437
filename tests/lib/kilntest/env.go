package kilntest

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// RequireBin returns KILN_BIN, skipping the test when it is not set and
// failing it when the file does not exist.
func RequireBin(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("KILN_BIN")
	if bin == "" {
		t.Skip("KILN_BIN is not set; skipping the peer test")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("KILN_BIN=%s: %v", bin, err)
	}
	return bin
}

// RequireEnv returns KILN_BIN and KILN_TESTDATA, skipping the test when the
// binary is not configured and failing it when the test data are missing.
func RequireEnv(t testing.TB) (bin, testdata string) {
	t.Helper()
	bin = RequireBin(t)
	testdata = os.Getenv("KILN_TESTDATA")
	if testdata == "" {
		t.Fatal("KILN_TESTDATA is not set")
	}
	if _, err := os.Stat(testdata); err != nil {
		t.Fatalf("KILN_TESTDATA=%s: %v", testdata, err)
	}
	return bin, testdata
}

// helpText caches the binary's -help output (kiln -help may exit non-zero;
// only its text matters).
var help struct {
	once sync.Once
	text string
	err  error
}

func helpText(bin string) (string, error) {
	help.once.Do(func() {
		out, err := exec.Command(bin, "-help").CombinedOutput()
		help.text, help.err = string(out), err
	})
	return help.text, help.err
}

// HasFlag reports whether the kiln binary lists -name in its -help output,
// for flags newer than some binaries the tests may run against.
func HasFlag(t testing.TB, name string) bool {
	t.Helper()
	text, _ := helpText(RequireBin(t))
	return strings.Contains(text, "-"+name+"\n") || strings.Contains(text, "-"+name+" ")
}

// FreePort binds 127.0.0.1:0, notes the port and closes the listener.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	return port
}

// freePorts returns n distinct free ports of 127.0.0.1.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	seen := map[int]bool{}
	for len(ports) < n {
		p := FreePort(t)
		if !seen[p] {
			seen[p] = true
			ports = append(ports, p)
		}
	}
	return ports
}

// ReadLines returns the lines of a text file (lines up to 1 MiB).
func ReadLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines, sc.Err()
}
