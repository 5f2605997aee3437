// SPDX-License-Identifier: Apache-2.0

package benchkit

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Kiln is one kiln process on its own free 127.0.0.1 ports.
type Kiln struct {
	*Proc
	HTTP, GRPC string // host:port
}

// StartKiln starts bin with HTTP, gRPC and the cluster plane's gRPC
// (ingester.v1, which every ingester of a cluster serves) on free
// 127.0.0.1 ports, warn logging and args (the target, storage and limits
// are the caller's), and waits until /ready answers 200 and the gRPC port
// accepts.
func StartKiln(bin, name string, args ...string) (*Kiln, error) {
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	hp, gp, ip := ports[0], ports[1], ports[2]
	all := append([]string{
		"-server.http-listen-address=127.0.0.1",
		"-server.http-listen-port=" + strconv.Itoa(hp),
		"-server.grpc-listen-address=127.0.0.1",
		"-server.grpc-listen-port=" + strconv.Itoa(gp),
		"-server.internal-grpc-listen-address=127.0.0.1",
		"-server.internal-grpc-listen-port=" + strconv.Itoa(ip),
		"-log.level=warn",
	}, args...)
	p, err := StartProc(name, bin, all...)
	if err != nil {
		return nil, err
	}
	k := &Kiln{Proc: p, HTTP: net.JoinHostPort("127.0.0.1", strconv.Itoa(hp)),
		GRPC: net.JoinHostPort("127.0.0.1", strconv.Itoa(gp))}
	if err := k.waitReady(); err != nil {
		p.Stop()
		return nil, err
	}
	return k, nil
}

func (k *Kiln) waitReady() error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(ReadyTimeout)
	for {
		if k.Exited() {
			return fmt.Errorf("%s exited before becoming ready:\n%s", k.Name, k.Output())
		}
		resp, err := client.Get("http://" + k.HTTP + "/ready")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v:\n%s", k.Name, ReadyTimeout, k.Output())
		}
		time.Sleep(Poll)
	}
	return WaitAccept(k.Proc, k.GRPC)
}

// ActiveIngesters counts the ACTIVE members of GET /ring?format=json.
func (k *Kiln) ActiveIngesters() int {
	client := &http.Client{Timeout: time.Second}
	resp, err := client.Get("http://" + k.HTTP + "/ring?format=json")
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

// Metrics reads GET /metrics and returns the value of each named sample
// that has no labels (absent names are missing from the map).
func (k *Kiln) Metrics(names ...string) (map[string]float64, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + k.HTTP + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		name, val, ok := strings.Cut(line, " ")
		if !ok || !want[name] {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			out[name] = v
		}
	}
	return out, nil
}

// freePorts returns n distinct free ports.
func freePorts(n int) ([]int, error) {
	var ports []int
	for len(ports) < n {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		if !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	return ports, nil
}
