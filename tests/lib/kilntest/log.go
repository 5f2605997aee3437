package kilntest

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
)

// Log is the output of a child process: it forwards every line, with a
// prefix, to the test log while the test runs and to stderr once closed,
// and keeps the lines to search them (Grep, Watch, Tail).
type Log struct {
	mu      sync.Mutex
	t       testing.TB
	prefix  string
	partial bytes.Buffer
	lines   []string
	closed  bool
	watches []logWatch
}

// logWatch signals ch (without blocking) for every line containing sub.
type logWatch struct {
	sub string
	ch  chan string
}

// NewLog returns a Log that writes "<prefix><line>" to t's log.
func NewLog(t testing.TB, prefix string) *Log {
	return &Log{t: t, prefix: prefix}
}

// Write splits p into lines; an incomplete last line waits for the next
// write (or Close).
func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial.Write(p)
	for {
		line, err := l.partial.ReadString('\n')
		if err != nil {
			// Incomplete line: keep it for the next write.
			l.partial.Reset()
			l.partial.WriteString(line)
			break
		}
		l.emit(strings.TrimRight(line, "\n"))
	}
	return len(p), nil
}

func (l *Log) emit(line string) {
	l.lines = append(l.lines, line)
	for _, w := range l.watches {
		if strings.Contains(line, w.sub) {
			select {
			case w.ch <- line:
			default:
			}
		}
	}
	if l.closed {
		fmt.Fprintf(os.Stderr, "%s%s\n", l.prefix, line)
		return
	}
	l.t.Logf("%s%s", l.prefix, line)
}

// Close emits an incomplete last line; lines written later go to stderr,
// because the test log may be gone.
func (l *Log) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.partial.Len() > 0 {
		l.emit(l.partial.String())
		l.partial.Reset()
	}
	l.closed = true
}

// Lines returns a copy of every line so far.
func (l *Log) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// Grep returns the lines containing every one of the substrings.
func (l *Log) Grep(subs ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
next:
	for _, line := range l.lines {
		for _, s := range subs {
			if !strings.Contains(line, s) {
				continue next
			}
		}
		out = append(out, line)
	}
	return out
}

// Watch returns a channel that receives the lines containing sub from now
// on (lines are dropped while the channel is full).
func (l *Log) Watch(sub string) <-chan string {
	l.mu.Lock()
	defer l.mu.Unlock()
	ch := make(chan string, 16)
	l.watches = append(l.watches, logWatch{sub: sub, ch: ch})
	return ch
}

// Tail returns the last n lines joined by newlines, or "(no output)".
func (l *Log) Tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := l.lines
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 0 {
		return "(no output)"
	}
	return strings.Join(lines, "\n")
}
