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

	"github.com/llmesh/llmesh/internal/wait"
)

// binaryMesh is a mesh of real processes: a fake provider, wnam egress
// processes and an HK ingress process.
type binaryMesh struct {
	t           *testing.T
	providerURL string
	fake        *process
	egress      map[string]*process
	seeds       []string
	ingressURL  string
}

var chaosEnv = []string{"LLMESH_TUNNEL_TOKEN=chaos-token"}

// startBinaryMesh starts the fake provider, two wnam egress processes and the
// HK ingress, and waits until the ingress sees both egress nodes alive.
func startBinaryMesh(t *testing.T) *binaryMesh {
	t.Helper()
	bm := &binaryMesh{t: t, egress: map[string]*process{}}
	bm.fake = startProcess(t, "fakeprovider", nil, "-listen", "127.0.0.1:0")
	bm.providerURL = bm.fake.field(t, `listening url=(\S+)`)
	bm.addEgress("chaos-wnam-1")
	bm.addEgress("chaos-wnam-2")
	cfg := writeConfig(t, fmt.Sprintf(`
node: {name: chaos-hk, loc: HK}
http: {listen: "127.0.0.1:0"}
tunnel: {token: "${LLMESH_TUNNEL_TOKEN}", insecure: true}
gossip: {bind: "127.0.0.1:0", profile: local, join: ["%s", "%s"], rejoin_interval: 1s}
routing:
  rules: [{locs: [HK], hint: wnam}]
providers:
  openai: {base_url: "http://127.0.0.1:9"}
`, bm.seeds[0], bm.seeds[1]))
	ingress := startProcess(t, "ingress", chaosEnv, "-config", cfg)
	bm.ingressURL = "http://" + ingress.field(t, `node started.* http=(\S+)`)
	bm.waitAlive("chaos-wnam-1", "chaos-wnam-2")
	return bm
}

// addEgress starts a wnam egress process that joins the mesh's seeds.
func (bm *binaryMesh) addEgress(name string) {
	t := bm.t
	t.Helper()
	join := ""
	if len(bm.seeds) > 0 {
		join = fmt.Sprintf(`join: ["%s"], `, strings.Join(bm.seeds, `", "`))
	}
	cfg := writeConfig(t, fmt.Sprintf(`
node: {name: %s, loc: US, hint: wnam}
http: {listen: "127.0.0.1:0"}
tunnel: {listen: "127.0.0.1:0", token: "${LLMESH_TUNNEL_TOKEN}"}
gossip: {bind: "127.0.0.1:0", profile: local, %srejoin_interval: 1s}
drain_timeout: 10s
providers:
  openai: {base_url: "%s"}
`, name, join, bm.providerURL))
	p := startProcess(t, "egress", chaosEnv, "-config", cfg)
	bm.seeds = append(bm.seeds, p.field(t, `node started.* gossip=(\S+)`))
	bm.egress[name] = p
}

func (bm *binaryMesh) waitAlive(names ...string) {
	bm.t.Helper()
	want := map[string]string{}
	for _, n := range names {
		want[n] = "alive"
	}
	wait.For(bm.t, 20*time.Second, func() error { return memberStates(bm.ingressURL, want) })
}

// providerRequests counts the requests the fake provider logged.
func (bm *binaryMesh) providerRequests() int {
	return strings.Count(bm.fake.output(), "msg=request")
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
	bm := startBinaryMesh(t)
	ingress, egress := bm.ingressURL, bm.egress
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
	wait.For(t, 15*time.Second, func() error {
		return memberStates(ingress, map[string]string{victim: "dead", survivor: "alive"})
	})
	t.Logf("gossip declared %s dead %s after the kill", victim, time.Since(killed).Round(time.Millisecond))
	wait.For(t, 5*time.Second, func() error {
		if got := bm.providerRequests(); got != sent {
			return fmt.Errorf("clients sent %d requests, the provider logged %d", sent, got)
		}
		return nil
	})
}

// TestRollingRestartProcesses restarts every egress process of the pool with
// SIGTERM, one after the other, while clients send short requests and
// second-long SSE streams through the HK ingress process. Every request must
// succeed, every stream must be whole, each process must exit 0, and the
// provider must see each request exactly once.
func TestRollingRestartProcesses(t *testing.T) {
	bm := startBinaryMesh(t)
	client := &http.Client{Timeout: 30 * time.Second}
	traffic := startLoad(t, 4, func(w, i int) error {
		stream := (w+i)%2 == 0
		body := `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
		if stream {
			body = `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`
		}
		req, _ := http.NewRequest("POST", bm.ingressURL+"/openai/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("X-Fake-Chunks", "10")
		if stream {
			req.Header.Set("X-Fake-Delay", "100ms")
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		switch {
		case err != nil:
			return fmt.Errorf("body: %w", err)
		case resp.StatusCode != 200:
			return fmt.Errorf("status %d: %s", resp.StatusCode, b)
		case stream && !strings.Contains(string(b), "[DONE]"):
			return fmt.Errorf("stream cut: %s", b)
		}
		return nil
	})
	traffic.progress(t, 8, 30*time.Second)
	for _, old := range []string{"chaos-wnam-1", "chaos-wnam-2"} {
		if err := bm.egress[old].stop(t); err != nil {
			t.Errorf("%s did not exit 0 after SIGTERM: %v", old, err)
		}
		bm.addEgress(old + "b")
		bm.waitAlive(old + "b")
		traffic.progress(t, 8, 30*time.Second)
	}
	sent := traffic.finish(t)
	wait.For(t, 5*time.Second, func() error {
		if got := bm.providerRequests(); int64(got) != sent {
			return fmt.Errorf("clients sent %d requests, the provider logged %d", sent, got)
		}
		return nil
	})
	t.Logf("%d requests across two egress restarts, none failed, none duplicated", sent)
}
