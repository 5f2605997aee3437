package cigate

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestAuthHeaders checks what `kiln ci` sends for auth and tenancy, so it
// works against a kiln with auth on: Bearer from --token, Basic from
// KILN_BASIC_AUTH, X-Scope-OrgID from --tenant, and the CI labels from the
// GitHub environment. The server is a recorder, since the flags are the
// client's business; a 401 must make the upload fail.
func TestAuthHeaders(t *testing.T) {
	kiln := os.Getenv("KILN_BIN")
	if kiln == "" {
		t.Skip("KILN_BIN not set")
	}
	var mu sync.Mutex
	var got []*http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		got = append(got, r)
		mu.Unlock()
		if r.Header.Get("Authorization") == "" {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	prof := filepath.Join(t.TempDir(), "a.folded")
	must(t, os.WriteFile(prof, []byte("main;work 10\n"), 0o644))

	cmd := exec.Command(kiln, "ci", "upload", "--url", srv.URL, "--token", "s3cret", "--tenant",
		"team-a", prof)
	cmd.Env = append(os.Environ(), "GITHUB_REPOSITORY=o/r", "GITHUB_REF_NAME=main",
		"GITHUB_SHA=abc123", "GITHUB_JOB=bench", "GITHUB_HEAD_REF=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("upload: %v\n%s", err, out)
	}
	cmd = exec.Command(kiln, "ci", "upload", "--url", srv.URL, prof)
	cmd.Env = append(os.Environ(), "KILN_BASIC_AUTH=u:p")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("upload with basic auth: %v\n%s", err, out)
	}
	cmd = exec.Command(kiln, "ci", "upload", "--url", srv.URL, prof)
	cmd.Env = append(os.Environ(), "KILN_BASIC_AUTH=", "KILN_TOKEN=")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "401") {
		t.Errorf("upload without auth against a 401: err %v, output %s", err, out)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 {
		t.Fatalf("%d requests, want 3", len(got))
	}
	r := got[0]
	if r.URL.Path != "/ingest" || r.Header.Get("Authorization") != "Bearer s3cret" ||
		r.Header.Get("X-Scope-OrgID") != "team-a" {
		t.Errorf("first upload: %s %v", r.URL, r.Header)
	}
	name := r.URL.Query().Get("name")
	for _, want := range []string{"ci{", "ci_repo=o/r", "ci_branch=main", "ci_commit=abc123",
		"ci_job=bench", "ci_run="} {
		if !strings.Contains(name, want) {
			t.Errorf("name %q lacks %q", name, want)
		}
	}
	if f := r.URL.Query().Get("format"); f != "folded" {
		t.Errorf("format %q, want folded", f)
	}
	if u, p, ok := got[1].BasicAuth(); !ok || u != "u" || p != "p" {
		t.Errorf("second upload: basic auth %q %q %v", u, p, ok)
	}
}
