package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/llmesh/llmesh/internal/fakeprovider"
	"github.com/llmesh/llmesh/internal/wait"
	"github.com/llmesh/llmesh/pkg/config"
	"github.com/llmesh/llmesh/pkg/node"
	"github.com/llmesh/llmesh/pkg/role"
)

// reloadConfig is an HK ingress's config: rules and access keys as given,
// its managed openai at the fake provider.
func reloadConfig(name, seed, providerURL, rules, keys string) string {
	return fmt.Sprintf(`
node: {name: %s, loc: HK}
http: {listen: "127.0.0.1:0"}
gossip: {bind: "127.0.0.1:0", profile: local, join: [%q]}
tunnel: {token: %s, insecure: true}
routing: {rules: %s}
auth: {access_keys: %s}
providers:
  openai: {base_url: %q, api_key: sk-real-ingress}
`, name, seed, testToken, rules, keys, providerURL)
}

// TestReloadAppliesToNewRequests: an ingress reloads its config file (what
// SIGHUP does): new requests follow the new rules (direct → egress) and
// access keys, while an SSE stream started before the reload finishes
// whole on its old route. An invalid file keeps the running config and
// counts a failure; a change that needs a restart is reported and ignored.
func TestReloadAppliesToNewRequests(t *testing.T) {
	m := newMesh(t)
	egress := m.start(nodeSpec{role: role.Egress, name: "rl-wnam-1", loc: "US", hint: "wnam", edit: func(c *config.Config) {
		p := c.Providers["openai"]
		p.APIKey = "sk-real-egress"
		c.Providers["openai"] = p
	}})
	path := filepath.Join(t.TempDir(), "ingress.yaml")
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(reloadConfig("rl-hk-1", egress.GossipAddr(), m.provider.URL, "[]", "[ak-old]"))
	rt, err := config.Load(path, role.Ingress)
	if err != nil {
		t.Fatal(err)
	}
	level := new(slog.LevelVar)
	level.Set(slog.LevelInfo)
	log := slog.New(slog.NewTextHandler(m.logs, &slog.HandlerOptions{Level: level})).With("node", "rl-hk-1")
	hk, err := node.Start(rt, log, node.Options{TuneGossip: fastGossip, Level: level})
	if err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	m.nodes["rl-hk-1"] = hk
	m.mu.Unlock()
	m.waitMembers(hk, "rl-wnam-1")

	get := func(key string) *http.Response {
		t.Helper()
		req := newRequest(t, "GET", baseURL(hk)+"/openai/v1/models", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, _ := do(t, req)
		return resp
	}
	if resp := get("ak-old"); resp.StatusCode != 200 || resp.Header.Get("X-Mesh-Route") != "direct" {
		t.Fatalf("before the reload: %d %s", resp.StatusCode, resp.Header.Get("X-Mesh-Route"))
	}

	// A stream of 40 chunks, 100 ms apart, started before the reload.
	var streamRoute string
	oc := openai.NewClient(option.WithBaseURL(baseURL(hk)+"/openai/v1"), option.WithAPIKey("ak-old"), option.WithMaxRetries(0),
		option.WithMiddleware(func(req *http.Request, next option.MiddlewareNext) (*http.Response, error) {
			resp, err := next(req)
			if resp != nil {
				streamRoute = resp.Header.Get("X-Mesh-Route")
			}
			return resp, err
		}))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const chunks = 40
	stream := oc.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
		Model: "fake-gpt", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("a long answer")},
	}, option.WithHeader(fakeprovider.HeaderChunks, fmt.Sprint(chunks)), option.WithHeader(fakeprovider.HeaderDelay, "100ms"))
	defer stream.Close()
	acc := openai.ChatCompletionAccumulator{}
	if !stream.Next() {
		t.Fatalf("no first chunk: %v", stream.Err())
	}
	acc.AddChunk(stream.Current())
	before := m.provider.Stats()

	// The reload: HK now leaves through wnam, ak-old is replaced by
	// ak-new, the log level is debug, and the node's name (restart only)
	// changes in the file.
	write(reloadConfig("rl-hk-renamed", egress.GossipAddr(), m.provider.URL, "[{locs: [HK], hint: wnam}]", "[ak-new]") + "log: {level: debug}\n")
	if err := hk.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if s := m.provider.Stats(); s.Active < 1 || s.Requests != before.Requests {
		t.Fatalf("the stream is no longer in flight at the reload (%+v): make it longer", s)
	}
	wait.For(t, 10*time.Second, func() error {
		if resp := get("ak-new"); resp.StatusCode != 200 || resp.Header.Get("X-Mesh-Egress") != "rl-wnam-1" {
			return fmt.Errorf("ak-new after the reload: %d route %q egress %q", resp.StatusCode, resp.Header.Get("X-Mesh-Route"), resp.Header.Get("X-Mesh-Egress"))
		}
		return nil
	})
	if resp := get("ak-old"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("ak-old after the reload: %d, want 403", resp.StatusCode)
	}
	logs := m.logs.String()
	if !strings.Contains(logs, `msg="config reload: these keys need a restart; keeping their running values" node=rl-hk-1 keys=node.name`) ||
		!strings.Contains(logs, `msg="config reloaded" node=rl-hk-1 file=`+path+` changed=auth.access_keys,log.level,routing.rules`) {
		t.Errorf("the reload did not log what changed:\n%s", logs)
	}
	if _, body := do(t, newRequest(t, "GET", baseURL(hk)+"/members", nil)); !strings.Contains(body, `"rules":[{"locs":["HK"],"hint":"wnam"}]`) {
		t.Errorf("/members does not show the reloaded rules: %s", body)
	}
	if level.Level() != slog.LevelDebug {
		t.Errorf("log level %v after the reload, want debug", level.Level())
	}
	if hk.Name() != "rl-hk-1" {
		t.Errorf("node name %q: a restart-only key changed", hk.Name())
	}

	// The stream started before the reload ends whole, on its old route.
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("the stream broke: %v", err)
	}
	if got := acc.Choices[0].Message.Content; got != fakeprovider.Text(chunks) || streamRoute != "direct" {
		t.Errorf("stream route %q, content %q", streamRoute, got)
	}

	// An invalid file: the running config stays, and a failure is counted.
	write(reloadConfig("rl-hk-1", egress.GossipAddr(), m.provider.URL, "[{locs: [HK], hint: wnm}]", "[ak-other]"))
	if err := hk.Reload(); err == nil || !strings.Contains(err.Error(), "routing.rules[0].hint") {
		t.Fatalf("invalid reload: %v", err)
	}
	if resp := get("ak-new"); resp.StatusCode != 200 || resp.Header.Get("X-Mesh-Egress") != "rl-wnam-1" {
		t.Errorf("after an invalid reload: %d %q", resp.StatusCode, resp.Header.Get("X-Mesh-Egress"))
	}
	if !strings.Contains(m.logs.String(), `msg="config problem" node=rl-hk-1 problem="`+path+`: routing.rules[0].hint: must be one of`) {
		t.Errorf("the problem is not logged:\n%s", m.logs.String())
	}
	resp, body := do(t, newRequest(t, "GET", baseURL(hk)+"/metrics", nil))
	for _, want := range []string{`llmesh_config_reloads_total{result="failure"} 1`, `llmesh_config_reloads_total{result="success"} 1`,
		"llmesh_config_last_reload_success_timestamp_seconds "} {
		if resp.StatusCode != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// An empty file (one caught half written, say) is refused too: the
	// defaults would drop the access keys.
	write("")
	if err := hk.Reload(); err == nil || !strings.Contains(err.Error(), "the config file is empty") {
		t.Errorf("reload of an empty file: %v", err)
	}
	if resp := get("ak-new"); resp.StatusCode != 200 {
		t.Errorf("after an empty file: %d", resp.StatusCode)
	}
	if strings.Contains(m.logs.String(), "sk-real-ingress") || strings.Contains(m.logs.String(), "ak-new") {
		t.Error("a key appears in the logs")
	}
}

// TestReloadEgressProviders: an egress applies a new provider key and
// billing organization to the tunnelled requests that come after it.
func TestReloadEgressProviders(t *testing.T) {
	m := newMesh(t)
	setKey := func(c *config.Config, key, org string) {
		p := c.Providers["openai"]
		p.APIKey, p.Organization = config.Secret(key), org
		c.Providers["openai"] = p
	}
	egress := m.start(nodeSpec{role: role.Egress, name: "rle-wnam-1", loc: "US", hint: "wnam",
		edit: func(c *config.Config) { setKey(c, "sk-egress-1", "org-1") }})
	hk := m.start(nodeSpec{role: role.Ingress, name: "rle-hk-1", loc: "HK", rules: []config.Rule{{Locs: []string{"HK"}, Hint: "wnam"}},
		providerURL: closedURL(t), edit: func(c *config.Config) {
			managed := true
			p := c.Providers["openai"]
			p.ManagedKey = &managed
			c.Providers["openai"] = p
			c.Auth.AccessKeys = []config.AccessKey{{Key: "ak-1"}}
		}})
	m.waitMembers(hk, "rle-wnam-1")
	sent := func() http.Header {
		t.Helper()
		resp, body := get(t, baseURL(hk)+"/openai/v1/echo/headers", "Authorization", "Bearer ak-1")
		if resp.StatusCode != 200 || resp.Header.Get("X-Mesh-Egress") != "rle-wnam-1" {
			t.Fatalf("status %d egress %q: %s", resp.StatusCode, resp.Header.Get("X-Mesh-Egress"), body)
		}
		reqs := m.provider.Requests()
		return reqs[len(reqs)-1].Header
	}
	if h := sent(); h.Get("Authorization") != "Bearer sk-egress-1" || h.Get("Openai-Organization") != "org-1" {
		t.Fatalf("before the reload the provider got %v", h)
	}

	c := egress.Config().Config
	c.Providers = maps.Clone(c.Providers)
	setKey(&c, "sk-egress-2", "org-2")
	next, err := c.Runtime()
	if err != nil {
		t.Fatal(err)
	}
	ch := egress.Apply(next)
	if want := []string{"providers.openai.api_key", "providers.openai.organization"}; !slices.Equal(ch.Applied, want) || len(ch.Restart) > 0 {
		t.Errorf("changes %+v, want applied %q", ch, want)
	}
	if h := sent(); h.Get("Authorization") != "Bearer sk-egress-2" || h.Get("Openai-Organization") != "org-2" {
		t.Errorf("after the reload the provider got %v", h)
	}
}

// TestReloadWatchesKeyFiles: with reload.watch, a new key in an
// api_key_file is injected into the requests that come after it.
func TestReloadWatchesKeyFiles(t *testing.T) {
	m := newMesh(t)
	dir := t.TempDir()
	keyFile, path := filepath.Join(dir, "openai.key"), filepath.Join(dir, "ingress.yaml")
	writeFile := func(p, text string) {
		t.Helper()
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(keyFile, "sk-file-1\n")
	writeFile(path, fmt.Sprintf(`
node: {name: rlw-us-1, loc: US}
http: {listen: "127.0.0.1:0"}
gossip: {bind: "127.0.0.1:0", profile: local}
reload: {watch: true, interval: 50ms}
auth: {access_keys: [ak-1]}
providers:
  openai: {base_url: %q, api_key_file: %q}
`, m.provider.URL, keyFile))
	rt, err := config.Load(path, role.Ingress)
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(rt, slog.New(slog.NewTextHandler(m.logs, nil)).With("node", "rlw-us-1"), node.Options{TuneGossip: fastGossip})
	if err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	m.nodes["rlw-us-1"] = n
	m.mu.Unlock()
	sentKey := func() string {
		t.Helper()
		resp, body := get(t, baseURL(n)+"/openai/v1/echo/headers", "Authorization", "Bearer ak-1")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		reqs := m.provider.Requests()
		return reqs[len(reqs)-1].Header.Get("Authorization")
	}
	if k := sentKey(); k != "Bearer sk-file-1" {
		t.Fatalf("before: the provider got %q", k)
	}
	writeFile(keyFile, "sk-file-2\n")
	wait.For(t, 10*time.Second, func() error {
		if k := sentKey(); k != "Bearer sk-file-2" {
			return fmt.Errorf("the provider got %q", k)
		}
		return nil
	})
	if !strings.Contains(m.logs.String(), "changed=providers.openai.api_key") {
		t.Errorf("the reload did not log the changed key:\n%s", m.logs.String())
	}
}

// TestReloadUpstreamTimeout: a reloaded upstream.header_timeout bounds the
// requests that start after it.
func TestReloadUpstreamTimeout(t *testing.T) {
	m := newMesh(t)
	us := m.start(nodeSpec{role: role.Ingress, name: "rlt-us-1", loc: "US"})
	c := us.Config().Config
	c.Upstream.HeaderTimeout = 300 * time.Millisecond
	next, err := c.Runtime()
	if err != nil {
		t.Fatal(err)
	}
	if ch := us.Apply(next); !slices.Equal(ch.Applied, []string{"upstream.header_timeout"}) {
		t.Fatalf("changes %+v", ch)
	}
	req := newRequest(t, "POST", baseURL(us)+"/openai/v1/chat/completions", strings.NewReader(`{"model":"fake-gpt"}`))
	req.Header.Set(fakeprovider.HeaderHeaderDelay, "1m")
	resp, body := do(t, req)
	if resp.StatusCode != http.StatusGatewayTimeout || resp.Header.Get("X-Mesh-Error") != "upstream_timeout" {
		t.Errorf("a provider slower than the new timeout: %d %s", resp.StatusCode, body)
	}
}
