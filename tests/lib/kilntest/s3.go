package kilntest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// S3 credentials of the server StartS3 runs.
const (
	S3AccessKey = "kilntestkey"
	S3SecretKey = "kilntestsecret"
	S3Bucket    = "kiln-test"
)

// S3 is a real S3 server the test started: versitygw's posix backend on
// 127.0.0.1, a free port and a temporary root holding the bucket
// S3Bucket. versitygw checks SigV4 signatures and payload hashes as AWS
// does. Restart brings it back on the same port and root.
type S3 struct {
	*Proc
	Bin  string
	Port int
	Root string // the posix root: <Root>/<S3Bucket>/<object name>
	// IAMDir holds the users of a server started by StartS3IAM ("" = none:
	// only the root keys S3AccessKey/S3SecretKey exist).
	IAMDir string

	runs int
}

// VersityGWBin returns the versitygw binary: $KILN_VERSITYGW, else
// versitygw on $PATH, else $(go env GOPATH)/bin (where .ci/install-deps
// installs it); the test fails when there is none, since CI installs it.
func VersityGWBin(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("KILN_VERSITYGW"); bin != "" {
		return bin
	}
	if bin, err := exec.LookPath("versitygw"); err == nil {
		return bin
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		home, _ := os.UserHomeDir()
		gopath = filepath.Join(home, "go")
	}
	bin := filepath.Join(gopath, "bin", "versitygw")
	if st, err := os.Stat(bin); err == nil && st.Mode()&0o111 != 0 {
		return bin
	}
	t.Fatalf("versitygw is not installed (run .ci/install-deps, or set KILN_VERSITYGW)")
	return ""
}

// StartS3 starts versitygw with an empty bucket S3Bucket and waits until
// its port accepts. It is killed at the end of the test.
func StartS3(t testing.TB) *S3 {
	t.Helper()
	s := &S3{Bin: VersityGWBin(t), Port: FreePort(t), Root: t.TempDir()}
	if err := os.Mkdir(filepath.Join(s.Root, S3Bucket), 0o755); err != nil {
		t.Fatalf("bucket: %v", err)
	}
	s.start(t)
	return s
}

// StartS3IAM is StartS3 with versitygw's internal IAM (users kept in a
// temporary directory, no cache, so a deleted user is refused at once):
// CreateUser and DeleteUser manage users besides the root.
func StartS3IAM(t testing.TB) *S3 {
	t.Helper()
	s := &S3{Bin: VersityGWBin(t), Port: FreePort(t), Root: t.TempDir(), IAMDir: t.TempDir()}
	if err := os.Mkdir(filepath.Join(s.Root, S3Bucket), 0o755); err != nil {
		t.Fatalf("bucket: %v", err)
	}
	s.start(t)
	return s
}

// admin runs one "versitygw admin" command as the root user.
func (s *S3) admin(t testing.TB, args ...string) {
	t.Helper()
	full := append([]string{"admin", "--access", S3AccessKey, "--secret", S3SecretKey,
		"--endpoint-url", s.Endpoint()}, args...)
	out, err := exec.Command(s.Bin, full...).CombinedOutput()
	if err != nil {
		t.Fatalf("versitygw %v: %v\n%s", args, err, out)
	}
}

// CreateUser adds a user with the admin role (it may read and write every
// bucket) to a server started by StartS3IAM.
func (s *S3) CreateUser(t testing.TB, access, secret string) {
	t.Helper()
	s.admin(t, "create-user", "--access", access, "--secret", secret, "--role", "admin")
}

// DeleteUser removes a user: requests signed with its keys are refused
// from then on (InvalidAccessKeyId).
func (s *S3) DeleteUser(t testing.TB, access string) {
	t.Helper()
	s.admin(t, "delete-user", "--access", access)
}

// Endpoint is http://127.0.0.1:PORT.
func (s *S3) Endpoint() string {
	return "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
}

// Args are kiln's flags for this server's bucket, under prefix ("" = none).
func (s *S3) Args(prefix string) []string {
	return []string{
		"-storage.backend=s3",
		"-storage.s3.endpoint=" + s.Endpoint(),
		"-storage.s3.bucket-name=" + S3Bucket,
		"-storage.s3.access-key-id=" + S3AccessKey,
		"-storage.s3.secret-access-key=" + S3SecretKey,
		"-storage.s3.force-path-style=true",
		"-storage.prefix=" + prefix,
	}
}

// Dir is where the objects under prefix live on the server's disk (for
// tests that look at or damage them directly).
func (s *S3) Dir(prefix string) string {
	return filepath.Join(s.Root, S3Bucket, prefix)
}

func (s *S3) start(t testing.TB) {
	t.Helper()
	s.runs++
	name := fmt.Sprintf("s3#%d", s.runs)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
	args := []string{"--access", S3AccessKey, "--secret", S3SecretKey, "--port", addr,
		"--keep-alive", "-q"}
	if s.IAMDir != "" {
		args = append(args, "--iam-dir", s.IAMDir, "--iam-cache-disable")
	}
	args = append(args, "posix", s.Root)
	p, err := StartProc(t, name, exec.Command(s.Bin, args...))
	if err != nil {
		t.Fatalf("start versitygw: %v", err)
	}
	s.Proc = p
	t.Cleanup(func() {
		if !p.Exited() {
			_ = p.Cmd.Process.Kill()
			<-p.Done()
		}
	})
	t0 := time.Now()
	for {
		if p.Exited() {
			t.Fatalf("%s exited before accepting: %s\n%s", name, p.ExitDescription(), p.Log.Tail(20))
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			break
		}
		if time.Since(t0) > NATSReadyTimeout {
			t.Fatalf("%s: %s not accepting after %v: %v", name, addr, NATSReadyTimeout, err)
		}
		time.Sleep(ReadyPoll)
	}
	t.Logf("%s accepting on %s in %v", name, addr, time.Since(t0).Round(time.Millisecond))
}

// Stop stops the server (SIGTERM, then SIGKILL after StopGrace); its root
// and so the bucket stay.
func (s *S3) Stop(t testing.TB) {
	t.Helper()
	s.StopWithin(StopGrace)
	t.Logf("%s stopped: %s", s.Name, s.ExitDescription())
}

// Restart starts the server again on the same port and root.
func (s *S3) Restart(t testing.TB) {
	t.Helper()
	if !s.Exited() {
		s.Stop(t)
	}
	s.start(t)
}
