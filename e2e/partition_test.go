package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/llmesh/llmesh/internal/fakeprovider"
	"github.com/llmesh/llmesh/internal/wait"
)

// The tests here are the long chaos tests: `make chaos` runs them
// (LLMESH_CHAOS=1); `make test` skips them.
func chaosOnly(t *testing.T) {
	t.Helper()
	if os.Getenv("LLMESH_CHAOS") == "" {
		t.Skip("long chaos test: run with make chaos (LLMESH_CHAOS=1)")
	}
}

// netns is a network namespace this test created, joined to the others by
// a veth pair. Addresses are the test's own hosts, inside its namespaces.
type netns struct {
	name, addr, link string
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// twoHosts creates namespaces a and b joined by a veth pair.
func twoHosts(t *testing.T) (a, b netns) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("no ip command (iproute2)")
	}
	id := fmt.Sprintf("%d", os.Getpid()%100000)
	a = netns{name: "llmesh-a-" + id, addr: "10.213.77.1", link: "lma" + id}
	b = netns{name: "llmesh-b-" + id, addr: "10.213.77.2", link: "lmb" + id}
	for _, n := range []netns{a, b} {
		run(t, "ip", "netns", "add", n.name)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", n.name).Run() })
		run(t, "ip", "-n", n.name, "link", "set", "lo", "up")
	}
	run(t, "ip", "link", "add", a.link, "netns", a.name, "type", "veth", "peer", "name", b.link, "netns", b.name)
	for _, n := range []netns{a, b} {
		run(t, "ip", "-n", n.name, "addr", "add", n.addr+"/24", "dev", n.link)
		run(t, "ip", "-n", n.name, "link", "set", n.link, "up")
	}
	return a, b
}

// statusIn fetches url from inside namespace ns and returns the status and
// headers.
func statusIn(ns, url string) (int, http.Header, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestHelperGet$", "--", url).Output()
	if err != nil {
		return 0, nil, err
	}
	var code int
	h := http.Header{}
	for i, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if i == 0 {
			fmt.Sscanf(line, "%d", &code)
			continue
		}
		if k, v, ok := strings.Cut(line, ": "); ok {
			h.Add(k, v)
		}
	}
	return code, h, nil
}

// streamIn starts, inside namespace ns, a streaming chat completion that
// lasts minutes; its exit code says how it ended: 0 complete, 4 cut.
func streamIn(t *testing.T, ns, url string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestHelperGet$", "--", url, "stream")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// TestHelperGet is not a test: statusIn and streamIn run the test binary
// inside a namespace with it, as a tiny HTTP client.
func TestHelperGet(t *testing.T) {
	args := os.Args
	var url string
	stream := false
	for i, a := range args {
		if a == "--" && i+1 < len(args) {
			url = args[i+1]
			stream = i+2 < len(args) && args[i+2] == "stream"
		}
	}
	if url == "" {
		t.Skip("helper for statusIn")
	}
	if stream {
		req, _ := http.NewRequest("POST", url, strings.NewReader(`{"model":"m","stream":true,"messages":[]}`))
		req.Header.Set("X-Fake-Chunks", "300")
		req.Header.Set("X-Fake-Delay", "1s")
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			os.Exit(3)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			os.Exit(4)
		}
		os.Exit(0)
	}
	resp, err := http.Get(url)
	if err != nil {
		os.Exit(3)
	}
	io.Copy(io.Discard, resp.Body)
	fmt.Println(resp.StatusCode)
	for k, vs := range resp.Header {
		for _, v := range vs {
			fmt.Printf("%s: %s\n", k, v)
		}
	}
	os.Exit(0)
}

// TestPartitionHeals cuts the link between an ingress (host a) and its egress
// pool (host b): the ingress applies its fallback policy (fail: 503) instead
// of hanging, and when the link comes back the mesh re-forms by itself
// (periodic re-join of the seeds) and requests flow through the egress again.
func TestPartitionHeals(t *testing.T) {
	chaosOnly(t)
	a, b := twoHosts(t)
	fake := startProcessIn(t, b.name, "fakeprovider", nil, "-listen", "127.0.0.1:0")
	providerURL := fake.field(t, `listening url=(\S+)`)
	env := []string{"LLMESH_TUNNEL_TOKEN=partition-token"}
	egress := startProcessIn(t, b.name, "egress", env, "-config", writeConfig(t, fmt.Sprintf(`
node: {name: part-wnam, hint: wnam}
http: {listen: "127.0.0.1:0"}
tunnel: {listen: "%s:9443", token: "${LLMESH_TUNNEL_TOKEN}"}
gossip: {bind: "%s:7946", profile: lan, rejoin_interval: 1s}
providers:
  openai: {base_url: "%s"}
`, b.addr, b.addr, providerURL)))
	egress.field(t, `node started.* http=(\S+)`)
	ingress := startProcessIn(t, a.name, "ingress", env, "-config", writeConfig(t, fmt.Sprintf(`
node: {name: part-hk, loc: HK}
http: {listen: "127.0.0.1:8080"}
tunnel: {token: "${LLMESH_TUNNEL_TOKEN}", insecure: true}
gossip: {bind: "%s:7946", profile: lan, join: ["%s:7946"], rejoin_interval: 1s}
routing: {rules: [{locs: [HK], hint: wnam}], fallback: fail}
providers:
  openai: {base_url: "http://127.0.0.1:9"}
`, a.addr, b.addr)))
	ingress.field(t, `node started.* http=(\S+)`)
	const url = "http://127.0.0.1:8080/openai/v1/models"
	through := func() error {
		code, h, err := statusIn(a.name, url)
		if err != nil || code != 200 || h.Get("X-Mesh-Egress") != "part-wnam" {
			return fmt.Errorf("status %d egress %q err %v", code, h.Get("X-Mesh-Egress"), err)
		}
		return nil
	}
	wait.For(t, 30*time.Second, through)
	sent := 1
	// A five-minute stream in flight when the link goes: the tunnel
	// keepalive (10 s + 10 s by default) must cut it, not leave it hanging.
	stream := streamIn(t, a.name, "http://127.0.0.1:8080/openai/v1/chat/completions")
	sent++
	wait.For(t, 10*time.Second, func() error {
		if !strings.Contains(fake.output(), "path=/v1/chat/completions") {
			return fmt.Errorf("the provider has not seen the stream yet")
		}
		return nil
	})
	type ending struct {
		err error
		at  time.Time
	}
	streamEnded := make(chan ending, 1)
	go func() {
		err := stream.Wait()
		streamEnded <- ending{err, time.Now()}
	}()

	// Partition: take the link down on both sides.
	run(t, "ip", "-n", a.name, "link", "set", a.link, "down")
	run(t, "ip", "-n", b.name, "link", "set", b.link, "down")
	cut := time.Now()
	wait.For(t, 30*time.Second, func() error {
		code, h, err := statusIn(a.name, url)
		if err != nil {
			return err
		}
		if code == 200 {
			sent++
		}
		if code != 503 || h.Get("X-Mesh-Error") != "no_egress" {
			return fmt.Errorf("status %d %q", code, h.Get("X-Mesh-Error"))
		}
		return nil
	})
	t.Logf("fallback (503 no_egress) %s after the partition", time.Since(cut).Round(time.Millisecond))
	select {
	case end := <-streamEnded:
		var exit *exec.ExitError
		if !errors.As(end.err, &exit) || exit.ExitCode() != 4 {
			t.Fatalf("the stream in flight ended with %v; want it cut (exit 4)", end.err)
		}
		t.Logf("the stream in flight was cut %s after the partition", end.at.Sub(cut).Round(time.Millisecond))
	case <-time.After(30*time.Second - time.Since(cut)):
		t.Fatal("the stream in flight was still open 30 s after the partition")
	}
	// On the other side, the egress cancelled the provider call.
	wait.For(t, 30*time.Second-time.Since(cut), func() error {
		if !strings.Contains(fake.output(), "msg=cancelled method=POST path=/v1/chat/completions") {
			return fmt.Errorf("the provider call of the cut stream is still running")
		}
		return nil
	})
	t.Logf("the egress cancelled the provider call within %s of the partition", time.Since(cut).Round(time.Millisecond))

	run(t, "ip", "-n", a.name, "link", "set", a.link, "up")
	run(t, "ip", "-n", b.name, "link", "set", b.link, "up")
	healed := time.Now()
	wait.For(t, 60*time.Second, func() error {
		err := through()
		if err == nil {
			sent++
		}
		return err
	})
	t.Logf("the mesh re-formed %s after the link came back", time.Since(healed).Round(time.Millisecond))
	if got := strings.Count(fake.output(), "msg=request"); got != sent {
		t.Fatalf("the ingress got %d answers through the egress, the provider logged %d requests", sent, got)
	}
}

// TestTenMinuteStreamWithSilentGaps: a generation that lasts ten minutes,
// with two minutes of silence between tokens, crosses the tunnel intact.
func TestTenMinuteStreamWithSilentGaps(t *testing.T) {
	chaosOnly(t)
	_, _, hk := standardMesh(t)
	req := newRequest(t, "POST", baseURL(hk)+"/openai/v1/chat/completions",
		strings.NewReader(`{"model":"m","stream":true,"messages":[{"role":"user","content":"think"}]}`))
	req.Header.Set("X-Fake-Chunks", "5")
	req.Header.Set("X-Fake-Delay", "2m")
	start := time.Now()
	resp, body := do(t, req)
	if resp.StatusCode != 200 || resp.Header.Get("X-Mesh-Route") != "egress" {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for i := range 5 {
		if !strings.Contains(body, fakeprovider.Chunk(i)) {
			t.Fatalf("chunk %d missing after %s:\n%s", i, time.Since(start), body)
		}
	}
	if !strings.Contains(body, "[DONE]") {
		t.Fatalf("stream did not end cleanly after %s", time.Since(start))
	}
	t.Logf("a %s stream crossed the tunnel intact", time.Since(start).Round(time.Second))
}
