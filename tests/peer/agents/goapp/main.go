// Command goapp is the Go agent program of Kiln's agent compatibility test.
//
// It profiles itself with github.com/grafana/pyroscope-go and burns CPU in
// kilnHotGoLoop until it has run for the given number of seconds or is
// killed.
//
// Usage: goapp SERVER_URL APPLICATION_NAME SECONDS
package main

import (
	"fmt"
	"log"
	"os"
	"strconv"
	"time"

	"github.com/grafana/pyroscope-go"
)

var sink uint64

// kilnHotGoLoop burns CPU until deadline; this is the frame the test looks
// for.
//
//go:noinline
func kilnHotGoLoop(deadline time.Time) uint64 {
	acc := uint64(1)
	for time.Now().Before(deadline) {
		for i := uint64(0); i < 200000; i++ {
			acc = (acc*31 + i) % 1000003
		}
	}
	return acc
}

type stderrLogger struct{ debug bool }

func (l stderrLogger) Infof(f string, a ...interface{})  { log.Printf("[info] "+f, a...) }
func (l stderrLogger) Errorf(f string, a ...interface{}) { log.Printf("[error] "+f, a...) }
func (l stderrLogger) Debugf(f string, a ...interface{}) {
	if l.debug {
		log.Printf("[debug] "+f, a...)
	}
}

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: goapp SERVER_URL APPLICATION_NAME SECONDS")
		os.Exit(2)
	}
	server, name := os.Args[1], os.Args[2]
	seconds, err := strconv.ParseFloat(os.Args[3], 64)
	if err != nil {
		log.Fatalf("bad SECONDS %q: %v", os.Args[3], err)
	}
	upload := 2 * time.Second
	if v := os.Getenv("KILN_AGENT_UPLOAD_INTERVAL"); v != "" {
		if upload, err = time.ParseDuration(v); err != nil {
			log.Fatalf("bad KILN_AGENT_UPLOAD_INTERVAL %q: %v", v, err)
		}
	}
	p, err := pyroscope.Start(pyroscope.Config{
		ApplicationName: name,
		ServerAddress:   server,
		UploadRate:      upload,
		Logger:          stderrLogger{debug: os.Getenv("KILN_AGENT_DEBUG") != ""},
		Tags:            map[string]string{"kiln_agent": "go"},
	})
	if err != nil {
		log.Fatalf("pyroscope.Start: %v", err)
	}
	fmt.Printf("go agent: profiling started, ApplicationName=%s\n", name)
	end := time.Now().Add(time.Duration(seconds * float64(time.Second)))
	for time.Now().Before(end) {
		next := time.Now().Add(time.Second)
		if next.After(end) {
			next = end
		}
		sink += kilnHotGoLoop(next)
	}
	fmt.Println("go agent: done, stopping")
	if err := p.Stop(); err != nil {
		log.Printf("stop: %v", err)
	}
}
