package durability

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"kiln.dev/tests/lib/kilntest"
)

// The role kiln is told to assume, as EKS would set it from the
// ServiceAccount's eks.amazonaws.com/role-arn annotation.
const wiRole = "arn:aws:iam::123456789012:role/kiln-blocks"

// testSTS is an STS endpoint run by the test: versitygw v1.8.0 implements
// AssumeRoleWithWebIdentity itself, but verifies the token by fetching its
// issuer's keys over https from a public address on port 443 (its SSRF
// guard refuses loopback and private addresses), which no test here can
// serve. So this endpoint checks each request as AWS's STS would receive
// it (an unsigned form POST: Action, Version, RoleArn, RoleSessionName, and
// a WebIdentityToken equal to what the test last wrote to the token file;
// it does not verify the JWT) and answers the keys of a real versitygw
// user, which versitygw then checks on every S3 request kiln signs with
// them. versitygw refuses a session token with a permanent user's keys
// (InvalidToken), so the answer carries none unless sessionToken is set.
type testSTS struct {
	srv *httptest.Server

	mu           sync.Mutex
	token        string // the token file's current contents
	access       string // the keys to issue
	secret       string
	sessionToken string
	lifetime     time.Duration
	fail         string // an error Code to answer with instead ("" = none)
	issued       []string
	seen         []string // WebIdentityToken of each call
	bad          []string // what was wrong with requests
}

func startSTS(t *testing.T) *testSTS {
	s := &testSTS{lifetime: time.Hour}
	s.srv = httptest.NewServer(s)
	t.Cleanup(s.srv.Close)
	return s
}

func (s *testSTS) check(r *http.Request) string {
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		return fmt.Sprintf("%s with Content-Type %q, want a form POST", r.Method, r.Header.Get("Content-Type"))
	}
	if err := r.ParseForm(); err != nil {
		return "form: " + err.Error()
	}
	want := map[string]string{"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15",
		"RoleArn": wiRole, "RoleSessionName": "kiln-peer", "WebIdentityToken": s.token}
	for k, v := range want {
		if got := r.PostForm.Get(k); got != v {
			return fmt.Sprintf("%s = %q, want %q", k, got, v)
		}
	}
	if r.URL.RawQuery != "" {
		return "query string " + r.URL.RawQuery + " (the token belongs in the body)"
	}
	return ""
}

func (s *testSTS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = append(s.seen, r.FormValue("WebIdentityToken"))
	w.Header().Set("Content-Type", "text/xml")
	code := s.fail
	if why := s.check(r); why != "" {
		s.bad = append(s.bad, why)
		code = "InvalidParameterValue"
	}
	if code != "" {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, "<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code>"+
			"<Message>refused by the test STS</Message></Error><RequestId>1</RequestId></ErrorResponse>", code)
		return
	}
	s.issued = append(s.issued, s.access)
	tok := ""
	if s.sessionToken != "" {
		tok = "<SessionToken>" + s.sessionToken + "</SessionToken>"
	}
	fmt.Fprintf(w, "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"+
		"<AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>%s</AccessKeyId>"+
		"<SecretAccessKey>%s</SecretAccessKey>%s<Expiration>%s</Expiration></Credentials>"+
		"<AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/kiln-blocks/kiln-peer</Arn>"+
		"</AssumedRoleUser></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>",
		s.access, s.secret, tok, time.Now().Add(s.lifetime).UTC().Format("2006-01-02T15:04:05Z"))
}

func (s *testSTS) set(f func(s *testSTS)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *testSTS) snapshot() (issued, seen, bad []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.issued...), append([]string(nil), s.seen...), append([]string(nil), s.bad...)
}

// wiSetup is a versitygw with users, a token file and a test STS.
type wiSetup struct {
	s3        *kilntest.S3
	sts       *testSTS
	tokenFile string
}

func newWISetup(t *testing.T) *wiSetup {
	w := &wiSetup{s3: kilntest.StartS3IAM(t), sts: startSTS(t),
		tokenFile: filepath.Join(t.TempDir(), "token")}
	w.writeToken(t, "eyJhbGciOiJSUzI1NiJ9."+kilntest.RandomHex(8)+".first")
	return w
}

// writeToken replaces the token file as kubelet does (a new file renamed
// into place) and tells the STS to expect it.
func (w *wiSetup) writeToken(t *testing.T, jwt string) {
	tmp := w.tokenFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(jwt), 0o600); err != nil {
		t.Fatal(err)
	}
	w.sts.set(func(s *testSTS) { s.token = jwt })
	if err := os.Rename(tmp, w.tokenFile); err != nil {
		t.Fatal(err)
	}
}

// env is what an EKS pod with an IRSA ServiceAccount has, and no static keys.
func (w *wiSetup) env() []string {
	return []string{"AWS_ROLE_ARN=" + wiRole, "AWS_WEB_IDENTITY_TOKEN_FILE=" + w.tokenFile,
		"AWS_ROLE_SESSION_NAME=kiln-peer", "AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=",
		"AWS_SESSION_TOKEN="}
}

// args are the S3 flags without keys.
func (w *wiSetup) args() []string {
	return []string{"-storage.backend=s3", "-storage.s3.endpoint=" + w.s3.Endpoint(),
		"-storage.s3.bucket-name=" + kilntest.S3Bucket, "-storage.s3.force-path-style=true",
		"-storage.prefix=" + s3Pfx, "-storage.s3.sts-endpoint=" + w.sts.srv.URL + "/"}
}

// TestS3WebIdentity runs kiln on S3 with web identity credentials only:
//
//	refresh             kiln trades the token file for a versitygw user's
//	                    keys; the keys live 20 s, so kiln trades again after
//	                    10 s, reading the token file the test rotated, and
//	                    gets a second user's keys; the first user is then
//	                    deleted, and the block flushed at SIGTERM and read
//	                    back after a restart prove that kiln signs with the
//	                    second user's keys
//	token-sent          STS answers with a session token: versitygw refuses
//	                    it (InvalidToken) beside a permanent user's keys, so
//	                    kiln's refusal at start proves the token is sent
//	sts-refuses         STS refuses the token: kiln does not start, and says
//	                    which role STS refused
//
// What this cannot prove: AWS's own STS (its JWT verification and trust
// policy) and S3 accepting AWS's temporary keys with their session token.
func TestS3WebIdentity(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	prof := loadProfile(t, root, cpuFile)
	t.Run("refresh", func(t *testing.T) { wiRefreshRun(t, prof) })
	t.Run("token-sent", func(t *testing.T) {
		wiStartError(t, func(w *wiSetup) {
			w.s3.CreateUser(t, "kilnwitok", "kilnwitoksecret")
			w.sts.set(func(s *testSTS) {
				s.access, s.secret, s.sessionToken = "kilnwitok", "kilnwitoksecret", "kiln-peer-session-token"
			})
		}, "InvalidToken")
	})
	t.Run("sts-refuses", func(t *testing.T) {
		wiStartError(t, func(w *wiSetup) {
			w.sts.set(func(s *testSTS) { s.fail = "InvalidIdentityToken" })
		}, "InvalidIdentityToken")
	})
}

func wiRefreshRun(t *testing.T, prof *profileCase) {
	w := newWISetup(t)
	user1, user2 := "kilnwi1"+kilntest.RandomHex(3), "kilnwi2"+kilntest.RandomHex(3)
	w.s3.CreateUser(t, user1, user1+"-secret")
	w.sts.set(func(s *testSTS) { s.access, s.secret, s.lifetime = user1, user1+"-secret", 20*time.Second })
	storage := t.TempDir()
	tenant := "dur-wi-" + kilntest.RandomHex(4)
	opts := []kilntest.Option{kilntest.Env(w.env()...)}
	args := append(w.args(), "-ingester.flush-check-period=1s")
	k := startKilnWith(t, storage, opts, args...)
	c := k.Clients(t, tenant)
	mustPush(t, k, c, prof, "wi", 3)

	// The token rotates and STS hands out another user's keys.
	w.s3.CreateUser(t, user2, user2+"-secret")
	second := "eyJhbGciOiJSUzI1NiJ9." + kilntest.RandomHex(8) + ".second"
	w.writeToken(t, second)
	w.sts.set(func(s *testSTS) { s.access, s.secret = user2, user2+"-secret" })
	if !waitFor(60*time.Second, 200*time.Millisecond, func() bool {
		return len(k.Log.Grep("refreshed", "key "+user2)) > 0
	}) {
		issued, seen, bad := w.sts.snapshot()
		t.Fatalf("kiln did not refresh its keys within 60 s of their half-life (issued %v, tokens %d, bad %v)",
			issued, len(seen), bad)
	}
	w.s3.DeleteUser(t, user1)
	issued, seen, _ := w.sts.snapshot()
	t.Logf("STS issued %v; refreshed: %q", issued, k.Log.Grep("refreshed"))
	if seen[len(seen)-1] != second {
		t.Errorf("the refresh sent the old token, not the rotated file's")
	}

	// user1 is gone: the flush at SIGTERM and the reads after a restart
	// work only if kiln signs with user2's keys.
	k.Terminate(t)
	if bs := listBlocks(t, w.s3.Dir(s3Pfx), tenant); len(bs) != 1 {
		t.Fatalf("%d blocks after SIGTERM, want 1: %s", len(bs), describeBlocks(bs))
	}
	w.sts.set(func(s *testSTS) { s.lifetime = time.Hour })
	k = startKilnWith(t, storage, opts, args...)
	expectPushes(t, k, k.Clients(t, tenant), prof, "wi", 3, "after the refresh, user1 deleted and a restart")
	if errs := k.Log.Grep("InvalidAccessKeyId"); len(errs) > 0 {
		t.Errorf("kiln signed with deleted keys: %q", errs)
	}
	k.Terminate(t)
	if _, _, bad := w.sts.snapshot(); len(bad) > 0 {
		t.Errorf("STS received bad requests: %q", bad)
	}
}

// wiStartError: with the STS (or versitygw) set up by prepare, kiln exits
// at start with one error line containing want.
func wiStartError(t *testing.T, prepare func(w *wiSetup), want string) {
	bin := kilntest.RequireBin(t)
	w := newWISetup(t)
	prepare(w)
	args := append(w.args(), "-storage.path="+t.TempDir(), "-server.http-listen-port=0",
		"-server.grpc-listen-port=0", "-server.otlp-grpc-listen-port=-1")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), w.env()...)
	out, err := cmd.CombinedOutput()
	var errLines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "level=error") {
			errLines = append(errLines, l)
		}
	}
	t.Logf("kiln: %v; errors: %q", err, errLines)
	if err == nil || ctx.Err() != nil {
		t.Errorf("kiln did not exit with an error (err %v)", err)
	}
	if len(errLines) != 1 || !strings.Contains(errLines[0], want) || !strings.Contains(errLines[0], wiRole) {
		t.Errorf("want one error line naming %q and the role, got %q", want, errLines)
	}
	if _, seen, bad := w.sts.snapshot(); len(seen) == 0 || len(bad) > 0 {
		t.Errorf("STS calls %d, bad requests %q", len(seen), bad)
	}
}
