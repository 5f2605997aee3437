// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	readyTimeout = 20 * time.Second
	readyPoll    = 50 * time.Millisecond
	stopGrace    = 5 * time.Second
)

// server is one kiln process started for one run.
type server struct {
	cmd      *exec.Cmd
	httpAddr string
	grpcAddr string
	dir      string
	done     chan struct{}
	log      bytes.Buffer // the server's stderr and stdout, shown when it fails
}

// freePort binds 127.0.0.1:0, notes the port and closes the listener.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	return port, l.Close()
}

// startServer starts bin on free 127.0.0.1 ports with a private storage
// directory, the rate limit, time window and sample count limit off, and
// waits until /ready answers 200 and the gRPC port accepts.
func startServer(bin string) (*server, error) {
	httpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	grpcPort, err := freePort()
	for err == nil && grpcPort == httpPort {
		grpcPort, err = freePort()
	}
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "kiln-pushload-")
	if err != nil {
		return nil, err
	}
	s := &server{
		httpAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort)),
		grpcAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(grpcPort)),
		dir:      dir,
		done:     make(chan struct{}),
	}
	s.cmd = exec.Command(bin,
		"-target=all",
		"-server.http-listen-address=127.0.0.1",
		"-server.http-listen-port="+strconv.Itoa(httpPort),
		"-server.grpc-listen-address=127.0.0.1",
		"-server.grpc-listen-port="+strconv.Itoa(grpcPort),
		"-storage.path="+dir,
		"-log.level=warn",
		"-distributor.ingestion-rate-limit-mb=0",
		"-validation.reject-older-than=0",
		"-validation.max-profile-stacktrace-samples=0",
	)
	s.cmd.Stdout = &s.log
	s.cmd.Stderr = &s.log
	// The kernel kills the server if this program dies first.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	started := make(chan error, 1)
	go func() {
		// Pdeathsig is tied to the thread that started the child.
		runtime.LockOSThread()
		if err := s.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = s.cmd.Wait()
		close(s.done)
	}()
	if err := <-started; err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	if err := s.waitReady(); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *server) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// waitReady polls /ready, then the gRPC port, until readyTimeout.
func (s *server) waitReady() error {
	deadline := time.Now().Add(readyTimeout)
	client := &http.Client{Timeout: time.Second}
	for {
		if s.exited() {
			return fmt.Errorf("kiln exited before becoming ready:\n%s", s.log.String())
		}
		resp, err := client.Get("http://" + s.httpAddr + "/ready")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kiln not ready after %v", readyTimeout)
		}
		time.Sleep(readyPoll)
	}
	for {
		c, err := net.DialTimeout("tcp", s.grpcAddr, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kiln gRPC port %s not accepting after %v: %v", s.grpcAddr, readyTimeout, err)
		}
		time.Sleep(readyPoll)
	}
}

// stop sends SIGTERM, then SIGKILL after stopGrace, and removes the storage
// directory.
func (s *server) stop() {
	defer os.RemoveAll(s.dir)
	if s.exited() {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(stopGrace):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// procStats is what /proc says about the server process.
type procStats struct {
	cpu   time.Duration // user + system time of all its threads
	hwmKB int64         // peak resident set (VmHWM)
	rssKB int64         // current resident set (VmRSS)
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times.
var clockTicks = func() int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if v, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && v > 0 {
			return v
		}
	}
	return 100
}()

func (s *server) stats() (procStats, error) {
	var st procStats
	pid := s.cmd.Process.Pid
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, err
	}
	// Fields after the command name, which is in parentheses and may hold
	// spaces: state is field 3, utime 14 and stime 15.
	rest := string(raw)
	if i := strings.LastIndexByte(rest, ')'); i >= 0 {
		rest = rest[i+1:]
	}
	f := strings.Fields(rest)
	if len(f) < 13 {
		return st, errors.New("short /proc/<pid>/stat")
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	st.cpu = time.Duration((utime + stime) * int64(time.Second) / clockTicks)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmHWM":
			st.hwmKB = n
		case "VmRSS":
			st.rssKB = n
		}
	}
	return st, nil
}
