package compose

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/llmesh/llmesh/internal/wait"
)

// project is the compose project name of the test, apart from a user's.
const project = "llmesh-compose-test"

// TestComposeUp runs compose.yaml for real: it builds the offline image
// (make compose-image), brings the mesh up, sends a chat completion through
// each ingress region, checks from the response headers that it left from
// the egress pool the region's rule names, stops the mesh and checks that
// every node drained and exited 0. It needs a Docker daemon and
// LLMESH_DOCKER=1 (make compose-test).
func TestComposeUp(t *testing.T) {
	if os.Getenv("LLMESH_DOCKER") != "1" {
		t.Skip("set LLMESH_DOCKER=1 (make compose-test) to run the compose mesh in Docker")
	}
	if err := exec.Command("docker", "info").Run(); err != nil {
		t.Skipf("no Docker daemon (docker info: %v): start dockerd to run the compose mesh", err)
	}
	compose := composeCommand(t)
	image := "llmesh:compose-test"
	run(t, "make", "-C", "../..", "compose-image", "IMAGE="+image)

	env := append(os.Environ(), "LLMESH_IMAGE="+image, "LLMESH_TUNNEL_TOKEN=compose-test-token")
	dc := func(args ...string) (string, error) {
		cmd := exec.Command(compose[0], append(append(compose[1:], "-p", project, "-f", "compose.yaml"), args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := dc("logs", "--no-color")
			t.Logf("compose logs:\n%s", logs)
		}
		if out, err := dc("down", "--timeout", "30"); err != nil {
			t.Errorf("compose down: %v\n%s", err, out)
		}
	})
	if out, err := dc("up", "-d"); err != nil {
		t.Fatalf("compose up: %v\n%s", err, out)
	}

	for _, tc := range []struct{ ingress, egress, hint string }{
		{"http://127.0.10.1:8080", "wnam-sjc-1", "wnam"}, // hk: HK, CN -> wnam
		{"http://127.0.10.2:8080", "weur-fra-1", "weur"}, // eu: DE -> weur
	} {
		// Gossip takes a moment: until the ingress sees its egress, it
		// answers 503 no_egress (or cannot be reached yet).
		var h http.Header
		wait.For(t, 60*time.Second, func() error {
			var err error
			h, err = chat(tc.ingress)
			return err
		})
		if h.Get("X-Mesh-Route") != "egress" || h.Get("X-Mesh-Egress") != tc.egress || h.Get("X-Mesh-Hint") != tc.hint {
			t.Errorf("%s: X-Mesh-Route %q, X-Mesh-Egress %q, X-Mesh-Hint %q: want egress, %s, %s", tc.ingress,
				h.Get("X-Mesh-Route"), h.Get("X-Mesh-Egress"), h.Get("X-Mesh-Hint"), tc.egress, tc.hint)
		}
		t.Logf("%s: answered through %s (%s)", tc.ingress, h.Get("X-Mesh-Egress"), h.Get("X-Mesh-Hint"))
	}

	// docker stop sends SIGTERM: every node must drain and exit 0.
	if out, err := dc("stop"); err != nil {
		t.Fatalf("compose stop: %v\n%s", err, out)
	}
	ids, err := dc("ps", "-q")
	if err != nil || strings.TrimSpace(ids) == "" {
		t.Fatalf("compose ps: %v\n%s", err, ids)
	}
	for _, id := range strings.Fields(ids) {
		out, err := exec.Command("docker", "inspect", "-f", "{{.Name}} {{.State.ExitCode}}", id).Output()
		if err != nil {
			t.Fatalf("docker inspect %s: %v", id, err)
		}
		if name, code, _ := strings.Cut(strings.TrimSpace(string(out)), " "); code != "0" {
			t.Errorf("%s exited %s after SIGTERM, want 0", name, code)
		}
	}
}

// chat sends one OpenAI chat completion and returns the response headers,
// or an error until the answer is a 200.
func chat(base string) (http.Header, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/openai/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer sk-compose-test")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(`"chat.completion"`)) {
		return nil, fmt.Errorf("%s: %s: %.200s", base, resp.Status, b)
	}
	return resp.Header, nil
}

// composeCommand returns `docker compose` (the v2 plugin) where it works,
// else `docker-compose` (v1, Debian's package).
func composeCommand(t *testing.T) []string {
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	if _, err := exec.LookPath("docker-compose"); err == nil {
		return []string{"docker-compose"}
	}
	t.Skip("neither `docker compose` nor docker-compose is installed (apt-get install docker-compose)")
	return nil
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}
