package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// startBinaryMesh runs the real commands: a fake provider, two wnam egress
// processes and an HK ingress process. It returns the ingress URL, the
// egress processes by name and a function that counts the requests the fake
// provider has logged.
func startBinaryMesh(t *testing.T) (ingressURL string, egress map[string]*process, providerRequests func() int) {
	t.Helper()
	fake := startProcess(t, "fakeprovider", nil, "-listen", "127.0.0.1:0")
	providerURL := fake.field(t, `listening url=(\S+)`)
	env := []string{"LLMESH_TUNNEL_TOKEN=chaos-token"}
	egress = map[string]*process{}
	var seeds []string
	for _, name := range []string{"chaos-wnam-1", "chaos-wnam-2"} {
		join := ""
		if len(seeds) > 0 {
			join = fmt.Sprintf(`join: ["%s"], `, seeds[0])
		}
		cfg := writeConfig(t, fmt.Sprintf(`
node: {name: %s, loc: US, hint: wnam}
http: {listen: "127.0.0.1:0"}
tunnel: {listen: "127.0.0.1:0", token: "${LLMESH_TUNNEL_TOKEN}"}
gossip: {bind: "127.0.0.1:0", profile: local, %srejoin_interval: 1s}
drain_timeout: 5s
providers:
  openai: {base_url: "%s"}
`, name, join, providerURL))
		p := startProcess(t, "egress", env, "-config", cfg)
		seeds = append(seeds, p.field(t, `node started.* gossip=(\S+)`))
		egress[name] = p
	}
	cfg := writeConfig(t, fmt.Sprintf(`
node: {name: chaos-hk, loc: HK}
http: {listen: "127.0.0.1:0"}
tunnel: {token: "${LLMESH_TUNNEL_TOKEN}", insecure: true}
gossip: {bind: "127.0.0.1:0", profile: local, join: ["%s", "%s"], rejoin_interval: 1s}
routing:
  rules: [{locs: [HK], hint: wnam}]
providers:
  openai: {base_url: "http://127.0.0.1:9"}
`, seeds[0], seeds[1]))
	ingress := startProcess(t, "ingress", env, "-config", cfg)
	ingressURL = "http://" + ingress.field(t, `node started.* http=(\S+)`)
	eventually(t, 20*time.Second, func() error {
		return memberStates(ingressURL, map[string]string{"chaos-wnam-1": "alive", "chaos-wnam-2": "alive"})
	})
	return ingressURL, egress, func() int {
		return strings.Count(fake.output(), "msg=request")
	}
}

// memberStates checks the states the node at url reports.
func memberStates(url string, want map[string]string) error {
	resp, err := http.Get(url + "/members")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var mr struct {
		Members []struct{ Name, State string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&mr); err != nil {
		return err
	}
	got := map[string]string{}
	for _, m := range mr.Members {
		got[m.Name] = m.State
	}
	for name, state := range want {
		if got[name] != state {
			return fmt.Errorf("%s is %q, want %q (all: %v)", name, got[name], state, got)
		}
	}
	return nil
}

// TestKill9MidStream kills the egress that serves a long SSE stream. The
// client's stream must break (never end cleanly, never hang), new requests
// must succeed on the other egress at once, gossip must declare the node
// dead, and the provider must never see a request twice.
func TestKill9MidStream(t *testing.T) {
	if testing.Short() {
		t.Skip("process-level chaos test")
	}
	ingress, egress, providerRequests := startBinaryMesh(t)
	sent := 0

	req, _ := http.NewRequest("POST", ingress+"/openai/v1/chat/completions",
		strings.NewReader(`{"model":"m","stream":true,"messages":[{"role":"user","content":"write a novel"}]}`))
	req.Header.Set("X-Fake-Chunks", "1000")
	req.Header.Set("X-Fake-Delay", "50ms")
	sent++
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	victim := resp.Header.Get("X-Mesh-Egress")
	survivor := map[string]string{"chaos-wnam-1": "chaos-wnam-2", "chaos-wnam-2": "chaos-wnam-1"}[victim]
	if resp.StatusCode != 200 || egress[victim] == nil {
		t.Fatalf("status %d via %q", resp.StatusCode, victim)
	}
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "data: ") {
		t.Fatalf("first event: %q %v", line, err)
	}

	egress[victim].cmd.Process.Kill() // SIGKILL: no drain, no leave
	killed := time.Now()
	streamErr := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, br)
		streamErr <- err
	}()
	select {
	case err := <-streamErr:
		if err == nil {
			t.Fatal("the stream served by the killed egress ended cleanly")
		}
		t.Logf("stream broke %s after the kill: %v", time.Since(killed).Round(time.Millisecond), err)
	case <-time.After(10 * time.Second):
		t.Fatal("the stream served by the killed egress still hangs 10 s after the kill")
	}

	for i := range 10 {
		sent++
		start := time.Now()
		resp, err := http.Get(ingress + "/openai/v1/models")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Mesh-Egress") != survivor {
			t.Fatalf("request %d after the kill: %d via %q", i, resp.StatusCode, resp.Header.Get("X-Mesh-Egress"))
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("request %d after the kill took %s", i, d)
		}
	}
	eventually(t, 15*time.Second, func() error {
		return memberStates(ingress, map[string]string{victim: "dead", survivor: "alive"})
	})
	t.Logf("gossip declared %s dead %s after the kill", victim, time.Since(killed).Round(time.Millisecond))
	eventually(t, 5*time.Second, func() error {
		if got := providerRequests(); got != sent {
			return fmt.Errorf("clients sent %d requests, the provider logged %d", sent, got)
		}
		return nil
	})
}
