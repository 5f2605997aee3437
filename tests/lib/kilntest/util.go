package kilntest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"connectrpc.com/connect"
)

// ReqCtx is the context of one request: the test's, with RequestTimeout.
func ReqCtx(t testing.TB) (context.Context, context.CancelFunc) {
	return ReqCtxTimeout(t, RequestTimeout)
}

// ReqCtxTimeout is ReqCtx with another timeout.
func ReqCtxTimeout(t testing.TB, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), d)
}

// RandomHex returns n random bytes in hex (crypto/rand.Read does not fail).
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// NewTenant returns a tenant ID unique to this test run: prefix-<12 hex>.
func NewTenant(prefix string) string {
	return prefix + "-" + RandomHex(6)
}

// NewUUID returns a random (version 4) UUID string.
func NewUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// ConnectCode is the Connect code of err (connect.CodeOf, also through
// wrapped errors).
func ConnectCode(err error) connect.Code {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Code()
	}
	return connect.CodeOf(err)
}
