package durability

import (
	"crypto/rand"
	"encoding/binary"
	"os"
	"strings"
	"testing"

	"kiln.dev/tests/lib/kilntest"
)

const walPushes = 8 // K: acknowledged pushes before the damage

// TestCorruptWALTail pushes K profiles (all acknowledged), SIGKILLs kiln,
// damages the tail of the newest non-empty WAL segment and restarts: the
// server must start, log the truncation, truncate the segment at the last
// intact record, and serve exactly the acknowledged pushes before the
// damaged record; a push afterwards must work and survive a SIGKILL and a
// SIGTERM restart.
//
//	garbage         random bytes appended after the last record: K served
//	torn-record     the first half of a copy of the last record appended
//	                (a write cut short): K served
//	zeros           4 KiB of zeros appended (a zero-filled tail): K served
//	flipped-byte    one byte flipped in the middle of the last record's
//	                payload (checksum mismatch): K-1 served
//	longer-length   the last record's length field made larger than the
//	                file (torn): K-1 served
func TestCorruptWALTail(t *testing.T) {
	_, root := kilntest.RequireEnv(t)
	prof := loadProfile(t, root, cpuFile)
	variants := []struct {
		name    string
		lost    int64 // acknowledged records the damage destroys
		mustLog bool  // the truncation must be logged
		damage  func(t *testing.T, file string, data []byte, recs []walRecord)
	}{
		{name: "garbage", mustLog: true, damage: func(t *testing.T, file string, data []byte, _ []walRecord) {
			g := make([]byte, 97)
			_, _ = rand.Read(g)
			// A first word that cannot be a plausible length of what follows
			// would make this a torn record; make it look like a short
			// record with a wrong checksum instead.
			binary.LittleEndian.PutUint32(g, 40)
			appendFile(t, file, g)
		}},
		{name: "torn-record", mustLog: true, damage: func(t *testing.T, file string, data []byte, recs []walRecord) {
			last := recs[len(recs)-1]
			rec := data[last.off:last.end]
			appendFile(t, file, rec[:len(rec)/2])
		}},
		{name: "zeros", damage: func(t *testing.T, file string, _ []byte, _ []walRecord) {
			appendFile(t, file, make([]byte, 4096))
		}},
		{name: "flipped-byte", lost: 1, mustLog: true, damage: func(t *testing.T, file string, _ []byte, recs []walRecord) {
			last := recs[len(recs)-1]
			flipBytes(t, file, last.payloadOff+(last.end-last.payloadOff)/2, 1)
		}},
		{name: "longer-length", lost: 1, mustLog: true, damage: func(t *testing.T, file string, data []byte, recs []walRecord) {
			last := recs[len(recs)-1]
			d := append([]byte(nil), data...)
			binary.LittleEndian.PutUint32(d[last.off:], uint32(last.end-last.payloadOff)+1000)
			writeFileKeepMode(t, file, d)
		}},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			storage := t.TempDir()
			tenant := "dur-wal-" + kilntest.RandomHex(4)
			service := tenant + "-svc"
			k := startKiln(t, storage)
			c := k.Clients(t, tenant)
			mustPush(t, k, c, prof, service, walPushes)
			expectPushes(t, k, c, prof, service, walPushes, "before the kill")
			k.Kill(t)

			file, data := newestNonEmptySegment(t, storage)
			recs, end := walFrames(data)
			t.Logf("segment %s: %d bytes, %d framed records, framing ends at %d; all segments %v",
				file, len(data), len(recs), end, walSegments(t, storage))
			if len(recs) != walPushes || end != int64(len(data)) {
				t.Fatalf("segment %s: %d records ending at %d of %d bytes; expected one record per push (%d), back to back",
					file, len(recs), end, len(data), walPushes)
			}
			v.damage(t, file, data, recs)
			damaged, _ := os.ReadFile(file)
			goodEnd := recs[len(recs)-1-int(v.lost)].end
			t.Logf("damaged %s: now %d bytes; the intact records end at %d", file, len(damaged), goodEnd)

			want := int64(walPushes) - v.lost
			k = startKiln(t, storage)
			c = k.Clients(t, tenant)
			if lines := walTruncationLines(k); len(lines) > 0 {
				t.Logf("truncation logged: %q", lines)
			} else if v.mustLog {
				t.Errorf("%s: no log line about the damaged WAL tail of %s (want a wal line saying it was truncated)", k.Name, file)
			} else {
				t.Logf("%s: the zero tail was not logged", k.Name)
			}
			expectPushes(t, k, c, prof, service, want, "after the damage and restart")
			if st, err := os.Stat(file); err == nil && st.Size() != goodEnd {
				t.Errorf("%s: segment %s is %d bytes after replay; the damaged tail should have been truncated at %d",
					k.Name, file, st.Size(), goodEnd)
			} else if err == nil {
				t.Logf("segment %s truncated to %d bytes", file, st.Size())
			}

			// The server goes on: a new push, then SIGKILL, then SIGTERM.
			mustPush(t, k, c, prof, service, 1)
			want++
			expectPushes(t, k, c, prof, service, want, "after a new push")
			k.Kill(t)
			k = startKiln(t, storage)
			c = k.Clients(t, tenant)
			expectPushes(t, k, c, prof, service, want, "after the new push, SIGKILL and restart")
			if lines := walTruncationLines(k); len(lines) > 0 {
				t.Errorf("%s: the WAL was truncated again on the next start: %q", k.Name, lines)
			}
			k.Terminate(t)
			k = startKiln(t, storage)
			c = k.Clients(t, tenant)
			expectPushes(t, k, c, prof, service, want, "after SIGTERM and restart")
			k.Terminate(t)
		})
	}
}

func appendFile(t *testing.T, file string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// walTruncationLines are the server's log lines about a WAL segment cut at
// a torn or corrupt record.
func walTruncationLines(k *kilntest.Server) []string {
	var out []string
	for _, l := range k.Log.Grep("wal") {
		if strings.Contains(l, "truncat") && (strings.Contains(l, "level=warn") || strings.Contains(l, "level=error")) {
			out = append(out, l)
		}
	}
	return out
}
