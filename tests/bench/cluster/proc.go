// SPDX-License-Identifier: Apache-2.0

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	readyTimeout = 30 * time.Second
	poll         = 50 * time.Millisecond
	stopGrace    = 10 * time.Second
)

// proc is one child process: nats-server or a kiln process.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	log  bytes.Buffer
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

func startProc(name, bin string, args ...string) (*proc, error) {
	p := &proc{name: name, cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Stdout = p
	p.cmd.Stderr = p
	// The kernel kills the child if this program dies first.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	started := make(chan error, 1)
	go func() {
		// Pdeathsig is tied to the thread that started the child.
		runtime.LockOSThread()
		if err := p.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = p.cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) stop() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopGrace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// cpu is the user + system CPU time of the process so far.
func (p *proc) cpu() time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	rest := string(raw)
	if i := strings.LastIndexByte(rest, ')'); i >= 0 {
		rest = rest[i+1:]
	}
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration((utime + stime) * int64(time.Second) / clockTicks)
}

var clockTicks = func() int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err == nil {
		if v, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && v > 0 {
			return v
		}
	}
	return 100
}()

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	return port, l.Close()
}

// waitAccept polls addr until it accepts a connection.
func waitAccept(p *proc, addr string) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		if p.exited() {
			return fmt.Errorf("%s exited:\n%s", p.name, p.output())
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %s not accepting after %v", p.name, addr, readyTimeout)
		}
		time.Sleep(poll)
	}
}

// kiln is one kiln process of the cluster.
type kiln struct {
	*proc
	http, grpc string
}

func startKiln(bin, name, target string, args ...string) (*kiln, error) {
	hp, err := freePort()
	if err != nil {
		return nil, err
	}
	gp, err := freePort()
	for err == nil && gp == hp {
		gp, err = freePort()
	}
	if err != nil {
		return nil, err
	}
	all := append([]string{
		"-target=" + target,
		"-server.http-listen-address=127.0.0.1",
		"-server.http-listen-port=" + strconv.Itoa(hp),
		"-server.grpc-listen-address=127.0.0.1",
		"-server.grpc-listen-port=" + strconv.Itoa(gp),
		"-server.otlp-grpc-listen-port=-1",
		"-log.level=warn",
	}, args...)
	p, err := startProc(name, bin, all...)
	if err != nil {
		return nil, err
	}
	k := &kiln{proc: p, http: net.JoinHostPort("127.0.0.1", strconv.Itoa(hp)),
		grpc: net.JoinHostPort("127.0.0.1", strconv.Itoa(gp))}
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(readyTimeout)
	for {
		if p.exited() {
			return nil, fmt.Errorf("%s exited before becoming ready:\n%s", name, p.output())
		}
		resp, err := client.Get("http://" + k.http + "/ready")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return k, nil
			}
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("%s not ready after %v:\n%s", name, readyTimeout, p.output())
		}
		time.Sleep(poll)
	}
}

// activeIngesters counts the ACTIVE members of GET /ring?format=json.
func (k *kiln) activeIngesters() int {
	client := &http.Client{Timeout: time.Second}
	resp, err := client.Get("http://" + k.http + "/ring?format=json")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var r struct {
		Members []struct {
			State string `json:"state"`
		} `json:"members"`
	}
	if json.NewDecoder(resp.Body).Decode(&r) != nil {
		return 0
	}
	n := 0
	for _, m := range r.Members {
		if m.State == "ACTIVE" {
			n++
		}
	}
	return n
}
