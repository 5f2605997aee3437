package kilntest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// RingMember is one ingester of GET /ring?format=json.
type RingMember struct {
	ID             string  `json:"id"`
	Addr           string  `json:"addr"`
	HTTPAddr       string  `json:"http_addr"`
	Zone           string  `json:"zone"`
	State          string  `json:"state"` // JOINING, ACTIVE, LEAVING
	Tokens         int     `json:"tokens"`
	Ownership      float64 `json:"ownership"`
	HeartbeatAgeMS int64   `json:"heartbeat_age_ms"`
}

// Ring is GET /ring?format=json of a cluster process: the ingesters it
// routes over.
type Ring struct {
	Members []RingMember `json:"members"`
}

// String is "id:STATE(age) ..." for messages.
func (r *Ring) String() string {
	var parts []string
	for _, m := range r.Members {
		parts = append(parts, fmt.Sprintf("%s:%s(%dms)", m.ID, m.State, m.HeartbeatAgeMS))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// Active returns the ids of the ACTIVE members whose heartbeat is younger
// than maxAge.
func (r *Ring) Active(maxAge time.Duration) []string {
	var ids []string
	for _, m := range r.Members {
		if m.State == "ACTIVE" && time.Duration(m.HeartbeatAgeMS)*time.Millisecond < maxAge {
			ids = append(ids, m.ID)
		}
	}
	return ids
}

// Ring fetches GET /ring?format=json (3 s timeout).
func (s *Server) Ring() (*Ring, error) {
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get(s.HTTPURL() + "/ring?format=json")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /ring: HTTP %d: %s", resp.StatusCode, body)
	}
	var r Ring
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("GET /ring: %w: %s", err, body)
	}
	return &r, nil
}

// Metric returns the value of the first sample of GET /metrics whose line
// starts with series (a name, or a name and labels), and whether there was
// one.
func (s *Server) Metric(series string) (string, bool, error) {
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get(s.HTTPURL() + "/metrics")
	if err != nil {
		return "", false, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", false, err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, series); ok && strings.HasPrefix(rest, " ") {
			return strings.TrimSpace(rest), true, nil
		}
	}
	return "", false, nil
}
