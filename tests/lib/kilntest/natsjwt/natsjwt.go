// Package natsjwt makes what NATS's decentralized authorization needs for
// one test: an operator, its system account and an account with JetStream,
// as nats-server configuration lines (resolver: MEMORY, the accounts
// preloaded), and users of that account as credentials files (their JWT
// and NKey seed), which clients give with their creds-file option.
//
// It is a package of its own so that only the tests using it need the
// NKey and JWT modules in their go.sum.
package natsjwt

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

// Operator is a throwaway NATS operator with one account for clients.
type Operator struct {
	opJWT   string
	sysPub  string
	sysJWT  string
	acct    nkeys.KeyPair
	acctPub string
	acctJWT string
	dir     string
}

// New makes an operator, a system account and a JetStream account, each
// with fresh keys.
func New(t testing.TB) *Operator {
	t.Helper()
	op := mustKey(t, nkeys.CreateOperator)
	opPub := mustPub(t, op)
	o := &Operator{dir: t.TempDir()}

	sys := mustKey(t, nkeys.CreateAccount)
	o.sysPub = mustPub(t, sys)
	sc := jwt.NewAccountClaims(o.sysPub)
	sc.Name = "SYS"
	o.sysJWT = mustEncode(t, sc.Encode, op)

	o.acct = mustKey(t, nkeys.CreateAccount)
	o.acctPub = mustPub(t, o.acct)
	ac := jwt.NewAccountClaims(o.acctPub)
	ac.Name = "KILN"
	// JetStream on, unlimited: kiln keeps its members in a KV bucket.
	ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
	o.acctJWT = mustEncode(t, ac.Encode, op)

	oc := jwt.NewOperatorClaims(opPub)
	oc.Name = "kiln-test"
	oc.SystemAccount = o.sysPub
	o.opJWT = mustEncode(t, oc.Encode, op)
	return o
}

// Config is the configuration lines that make nats-server trust the
// operator and know both accounts (for kilntest.NATSConfig).
func (o *Operator) Config() []string {
	q := strconv.Quote
	return []string{
		"operator: " + q(o.opJWT),
		"system_account: " + q(o.sysPub),
		"resolver: MEMORY",
		"resolver_preload: {",
		"  " + o.sysPub + ": " + q(o.sysJWT),
		"  " + o.acctPub + ": " + q(o.acctJWT),
		"}",
	}
}

// Creds issues a user of the account named name and writes its
// credentials file, returning the path.
func (o *Operator) Creds(t testing.TB, name string) string {
	t.Helper()
	u := mustKey(t, nkeys.CreateUser)
	uc := jwt.NewUserClaims(mustPub(t, u))
	uc.Name = name
	ujwt := mustEncode(t, uc.Encode, o.acct)
	seed, err := u.Seed()
	if err != nil {
		t.Fatal(err)
	}
	text, err := jwt.FormatUserConfig(ujwt, seed)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(o.dir, strings.ReplaceAll(name, "/", "_")+".creds")
	if err := os.WriteFile(path, text, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustKey(t testing.TB, create func() (nkeys.KeyPair, error)) nkeys.KeyPair {
	t.Helper()
	kp, err := create()
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func mustPub(t testing.TB, kp nkeys.KeyPair) string {
	t.Helper()
	pub, err := kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func mustEncode(t testing.TB, encode func(nkeys.KeyPair) (string, error), signer nkeys.KeyPair) string {
	t.Helper()
	s, err := encode(signer)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
