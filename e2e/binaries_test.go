package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/llmesh/llmesh/internal/wait"
)

// binDir is where binaries built the commands; TestMain removes it.
var binDir string

// binaries builds the real commands once per test binary.
var binaries = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "llmesh-bin-")
	if err != nil {
		return "", err
	}
	binDir = dir
	cmd := exec.Command("go", "build", "-ldflags", "-X github.com/llmesh/llmesh/pkg/version.Version=e2e-test", "-o", dir+"/", "./cmd/...")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return dir, nil
})

// TestMain removes the built commands (56 MB) once every test has ended.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// process is a running command whose stderr is watched for log lines.
type process struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	done  chan struct{}
	err   error
}

func startProcess(t *testing.T, name string, env []string, args ...string) *process {
	t.Helper()
	return startProcessIn(t, "", name, env, args...)
}

// startProcessIn runs a command inside network namespace ns ("" = this one).
func startProcessIn(t *testing.T, ns, name string, env []string, args ...string) *process {
	t.Helper()
	dir, err := binaries()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(dir, name), args...)
	if ns != "" {
		cmd = exec.Command("ip", append([]string{"netns", "exec", ns, filepath.Join(dir, name)}, args...)...)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	stderr, _ := p.cmd.StderrPipe()
	p.cmd.Stdout = io.Discard
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.mu.Unlock()
		}
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.output())
		}
	})
	return p
}

func (p *process) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// field waits for a log line matching re and returns its first group.
func (p *process) field(t *testing.T, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	var got string
	wait.For(t, 20*time.Second, func() error {
		if m := rx.FindStringSubmatch(p.output()); m != nil {
			got = m[1]
			return nil
		}
		select {
		case <-p.done:
			t.Fatalf("process exited (%v) before logging %q", p.err, re)
		default:
		}
		return fmt.Errorf("no log line matches %q", re)
	})
	return got
}

// stop sends SIGTERM and returns the exit error (nil for exit 0).
func (p *process) stop(t *testing.T) error {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(20 * time.Second):
		t.Fatal("process did not exit within 20 s of SIGTERM")
		return nil
	}
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "node.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestBinaries runs the real commands as an operator would: a fake provider,
// an egress and an HK ingress from YAML files with ${VAR} secrets, a request
// through the tunnel, the members command, SIGHUP and SIGTERM.
func TestBinaries(t *testing.T) {
	fake := startProcess(t, "fakeprovider", nil, "-listen", "127.0.0.1:0")
	providerURL := fake.field(t, `listening url=(\S+)`)

	env := []string{"LLMESH_TUNNEL_TOKEN=binary-test-token"}
	egressCfg := writeConfig(t, fmt.Sprintf(`
node: {name: bin-wnam-1, loc: US, colo: SJC, hint: wnam}
http: {listen: "127.0.0.1:0"}
tunnel: {listen: "127.0.0.1:0", token: "${LLMESH_TUNNEL_TOKEN}"}
gossip: {bind: "127.0.0.1:0", profile: local}
drain_timeout: 5s
providers:
  openai: {base_url: "%s"}
`, providerURL))
	egress := startProcess(t, "egress", env, "-config", egressCfg)
	egressGossip := egress.field(t, `node started.* gossip=(\S+)`)
	egressHTTP := egress.field(t, `node started.* http=(\S+)`)

	ingressCfg := writeConfig(t, fmt.Sprintf(`
node: {name: bin-hk-1, loc: HK, colo: HKG, hint: apac}
http: {listen: "127.0.0.1:0"}
tunnel: {token: "${LLMESH_TUNNEL_TOKEN}", insecure: true}
gossip: {bind: "127.0.0.1:0", profile: local, join: ["%s"]}
routing:
  rules: [{locs: [HK, CN], hint: wnam}]
drain_timeout: 5s
providers:
  openai: {base_url: "http://127.0.0.1:9"}
`, egressGossip))
	ingress := startProcess(t, "ingress", env, "-config", ingressCfg)
	ingressHTTP := "http://" + ingress.field(t, `node started.* http=(\S+)`)

	wait.For(t, 20*time.Second, func() error {
		resp, err := http.Get(ingressHTTP + "/openai/v1/models")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Mesh-Egress") != "bin-wnam-1" {
			return fmt.Errorf("status %d egress %q", resp.StatusCode, resp.Header.Get("X-Mesh-Egress"))
		}
		return nil
	})

	dir, _ := binaries()
	out, err := exec.Command(filepath.Join(dir, "ingress"), "members", "-addr", "http://"+egressHTTP).CombinedOutput()
	if err != nil {
		t.Fatalf("members: %v\n%s", err, out)
	}
	table := string(out)
	for _, want := range []string{"NAME", "bin-hk-1", "bin-wnam-1", "ingress", "egress", "wnam", "HKG", "alive", "e2e-test"} {
		if !strings.Contains(table, want) {
			t.Errorf("members table lacks %q:\n%s", want, table)
		}
	}
	out, err = exec.Command(filepath.Join(dir, "egress"), "members", "-addr", ingressHTTP, "-json").CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"tunnel": "127.0.0.1:`) {
		t.Errorf("members -json: %v\n%s", err, out)
	}
	out, _ = exec.Command(filepath.Join(dir, "ingress"), "-version").CombinedOutput()
	if strings.TrimSpace(string(out)) != "ingress e2e-test" {
		t.Errorf("-version printed %q", out)
	}

	// SIGHUP re-reads the config (unchanged here); the node keeps running.
	egress.cmd.Process.Signal(syscall.SIGHUP)
	egress.field(t, `msg="(config reloaded: nothing to apply)"`)

	// The egress drains and leaves: the ingress sees it leave, then both exit 0.
	if err := egress.stop(t); err != nil {
		t.Errorf("egress exit: %v", err)
	}
	wait.For(t, 10*time.Second, func() error {
		resp, err := http.Get(ingressHTTP + "/members")
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), `"state":"left"`) {
			return errors.New("egress not shown as left")
		}
		return nil
	})
	if err := ingress.stop(t); err != nil {
		t.Errorf("ingress exit: %v", err)
	}
	for _, p := range []*process{egress, ingress} {
		if o := p.output(); strings.Contains(o, "binary-test-token") {
			t.Errorf("the tunnel token appears in a log:\n%s", o)
		}
	}
}

// TestBinaryRefusesBadConfig: config errors stop the node before it starts,
// with a message naming the file and the key or variable.
func TestBinaryRefusesBadConfig(t *testing.T) {
	dir, err := binaries()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, role, text string
		want             []string
	}{
		{"open egress", "egress", `
node: {name: e, hint: wnam}
tunnel: {listen: "127.0.0.1:0"}
`, []string{"tunnel", "refusing"}},
		{"unset variable", "ingress", `
tunnel: {token: "${LLMESH_E2E_SURELY_UNSET}"}
`, []string{"LLMESH_E2E_SURELY_UNSET", "node.yaml:2"}},
		{"bad fallback", "ingress", `
routing: {fallback: sometimes}
`, []string{"routing.fallback", "node.yaml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, filepath.Join(dir, tc.role), "-config", writeConfig(t, tc.text))
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("exit %v, want status 1; output:\n%s", err, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("error output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestBinaryCheck: -check prints each problem of a config with its key, one
// a line, and exits 1; a valid config exits 0 with an ok line.
func TestBinaryCheck(t *testing.T) {
	dir, err := binaries()
	if err != nil {
		t.Fatal(err)
	}
	bad := writeConfig(t, `
node: {name: hk-1, loc: HK}
routing: {rules: [{locs: [HK], hint: wnam}, {locs: [CN], hint: wnm}]}
gossip: {key: "c2hvcnQ="}
providers: {openai: {api_key_file: /nonexistent/openai.key}}
auth: {access_keys: [ak-1]}
`)
	out, err := exec.Command(filepath.Join(dir, "ingress"), "-check", "-config", bad).Output()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("-check of a bad config: %v, want exit status 1", err)
	}
	want := []string{
		bad + `: gossip.key: decodes to 5 bytes; an AES key must be 16, 24 or 32 bytes`,
		bad + `: routing.rules[1].hint: must be one of wnam, enam, weur, eeur, apac, oc, afr, sam, me (got "wnm")`,
		bad + `: providers.openai.api_key_file: cannot read "/nonexistent/openai.key": no such file or directory`,
	}
	if got := strings.TrimSpace(string(out)); got != strings.Join(want, "\n") {
		t.Errorf("-check printed\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
	if !strings.Contains(string(exit.Stderr), "3 problems") {
		t.Errorf("stderr %q does not count the problems", exit.Stderr)
	}

	good := writeConfig(t, `
node: {name: e-1, hint: wnam}
tunnel: {token: "${LLMESH_CHECK_TOKEN}"}
`)
	cmd := exec.Command(filepath.Join(dir, "egress"), "-check", "-config", good)
	cmd.Env = append(os.Environ(), "LLMESH_CHECK_TOKEN=t0ken")
	out, err = cmd.CombinedOutput()
	if err != nil || string(out) != good+": ok: egress \"e-1\", 4 providers\n" {
		t.Errorf("-check of a valid egress config: %v\n%s", err, out)
	}
}

// TestBinaryReload: a running ingress reloads its config when the file
// changes (reload.watch) and on SIGHUP: new access keys apply, a change
// that needs a restart is reported and ignored, an invalid file keeps the
// running config.
func TestBinaryReload(t *testing.T) {
	fake := startProcess(t, "fakeprovider", nil, "-listen", "127.0.0.1:0")
	providerURL := fake.field(t, `listening url=(\S+)`)
	cfg := func(listen, keys string) string {
		return fmt.Sprintf(`
node: {name: bin-reload-1, loc: US}
http: {listen: %q}
gossip: {bind: "127.0.0.1:0", profile: local}
reload: {watch: true, interval: 100ms}
auth: {access_keys: %s}
providers:
  openai: {base_url: %q, api_key: sk-real}
`, listen, keys, providerURL)
	}
	path := writeConfig(t, cfg("127.0.0.1:0", "[ak-1]"))
	rewrite := func(text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ingress := startProcess(t, "ingress", nil, "-config", path)
	base := "http://" + ingress.field(t, `node started.* http=(\S+)`)
	status := func(key string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", base+"/openai/v1/models", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := status("ak-1"); s != 200 {
		t.Fatalf("ak-1 at start: %d", s)
	}

	// The file changes: the watch reloads it. http.listen needs a restart.
	rewrite(cfg("127.0.0.1:1", "[ak-2]"))
	ingress.field(t, `msg="config reload: these keys need a restart; keeping their running values" keys=(http\.listen)`)
	ingress.field(t, `msg="config reloaded" file=\S+ changed=(auth\.access_keys)`)
	if a, b := status("ak-1"), status("ak-2"); a != 403 || b != 200 {
		t.Errorf("after the watched reload: ak-1 %d (want 403), ak-2 %d (want 200)", a, b)
	}

	// An invalid file: the running config stays.
	rewrite(cfg("127.0.0.1:1", "[ak-3, ak-3]"))
	ingress.field(t, `msg="config problem" problem=".*(auth\.access_keys\[1\]): the same key as auth\.access_keys\[0\]`)
	if s := status("ak-2"); s != 200 {
		t.Errorf("ak-2 after an invalid reload: %d", s)
	}

	// SIGHUP reloads too (here the file it first found invalid, now fixed).
	if err := os.WriteFile(path, []byte(cfg("127.0.0.1:1", "[ak-3]")), 0o600); err != nil {
		t.Fatal(err)
	}
	ingress.cmd.Process.Signal(syscall.SIGHUP)
	wait.For(t, 10*time.Second, func() error {
		if s := status("ak-3"); s != 200 {
			return fmt.Errorf("ak-3: %d", s)
		}
		return nil
	})
	if err := ingress.stop(t); err != nil {
		t.Errorf("ingress exit: %v", err)
	}
	if o := ingress.output(); strings.Contains(o, "sk-real") || strings.Contains(o, "ak-2") {
		t.Errorf("a key appears in the log:\n%s", o)
	}
}
