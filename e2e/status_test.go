package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/llmesh/llmesh/internal/wait"
	"github.com/llmesh/llmesh/pkg/config"
	"github.com/llmesh/llmesh/pkg/membership"
	"github.com/llmesh/llmesh/pkg/meshtls"
	"github.com/llmesh/llmesh/pkg/role"
)

// chromium finds Debian's headless browser, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	t.Skip("chromium not installed: the status page test needs it (apt-get install chromium; .ci/run installs it in CI)")
	return ""
}

// browse runs headless Chromium on url with args (--dump-dom, --screenshot)
// and returns what it printed. --virtual-time-budget lets the page's script
// fetch /members and render before the DOM is taken.
func browse(t *testing.T, bin, url string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args = append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--user-data-dir=" + t.TempDir(), "--virtual-time-budget=2000"}, args...)
	out, err := exec.CommandContext(ctx, bin, append(args, url)...).Output()
	if err != nil {
		t.Fatalf("chromium %v: %v", args, err)
	}
	return string(out)
}

// attrValues blanks attribute values, so that what is left of the DOM is
// its elements and text.
var attrValues = regexp.MustCompile(`="[^"]*"`)

// statusCA gives nodes certificates that expire in days.
func statusCA(t *testing.T) func(r role.Role, hint, name string, days int) func(*config.Config) {
	caCert, caKey, err := meshtls.NewCA("llmesh status test CA", 400*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caPath := filepath.Join(dir, "ca.pem")
	os.WriteFile(caPath, caCert, 0o600)
	return func(r role.Role, hint, name string, days int) func(*config.Config) {
		cert, key, err := meshtls.Issue(caCert, caKey, meshtls.Identity{Role: r, Hint: hint, Name: name}, []string{"127.0.0.1"}, time.Duration(days)*24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		certPath, keyPath := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
		os.WriteFile(certPath, cert, 0o600)
		os.WriteFile(keyPath, key, 0o600)
		return func(c *config.Config) {
			c.Tunnel.TLS = config.TLS{Cert: certPath, Key: keyPath, CA: caPath}
			c.Tunnel.Insecure = false
		}
	}
}

// TestStatusPage opens the status page of an ingress in headless Chromium,
// on its admin listener with its admin token: every node appears, grouped by
// hint; a node whose gossip carries markup shows it as text; a node that
// leaves disappears. LLMESH_STATUS_SCREENSHOT=docs/status.png also saves a
// screenshot of the page (as in the README).
func TestStatusPage(t *testing.T) {
	bin := chromium(t)
	t.Parallel()
	m := newMesh(t)
	cert := statusCA(t)
	rules := []config.Rule{{Locs: []string{"HK", "CN"}, Hint: "wnam"}, {Locs: []string{"RU"}, Hint: "weur"}}
	egress := func(name, loc, colo, hint string, days int) {
		edit := cert(role.Egress, hint, name, days)
		m.start(nodeSpec{role: role.Egress, name: name, loc: loc, hint: hint, profileGossip: true, edit: func(c *config.Config) {
			edit(c)
			c.Node.Colo = colo
		}})
	}
	egress("wnam-sjc-1", "US", "SJC", "wnam", 90)
	egress("wnam-lax-1", "US", "LAX", "wnam", 10)
	egress("weur-fra-1", "DE", "FRA", "weur", 300)
	hkCert := cert(role.Ingress, "", "hk-1", 60)
	hk := m.start(nodeSpec{role: role.Ingress, name: "hk-1", loc: "HK", hint: "apac", rules: rules, profileGossip: true, edit: func(c *config.Config) {
		hkCert(c)
		c.Node.Colo = "HKG"
		c.Admin = config.Admin{Listen: "127.0.0.1:0", Token: "status-admin-token"}
	}})
	m.start(nodeSpec{role: role.Ingress, name: "us-1", loc: "US", hint: "enam", profileGossip: true, edit: func(c *config.Config) { c.Node.Colo = "IAD" }})
	all := []string{"hk-1", "us-1", "wnam-sjc-1", "wnam-lax-1", "weur-fra-1"}
	m.waitMembers(hk, all...)

	// Without the token, the page asks for it and shows nothing.
	noToken := browse(t, bin, "http://"+hk.AdminAddr()+"/", "--dump-dom")
	if !strings.Contains(noToken, `<div id="auth">`) || strings.Contains(noToken, "data-node=") {
		t.Errorf("without the token the page does not ask for it:\n%s", noToken)
	}

	// The token rides in the fragment, which never leaves the browser; the
	// page moves it to sessionStorage and drops it from the address.
	page := "http://" + hk.AdminAddr() + "/#token=status-admin-token"
	show := func(what string, ok func(dom string) error) string {
		t.Helper()
		var dom string
		wait.For(t, 60*time.Second, func() error {
			dom = browse(t, bin, page, "--dump-dom")
			if err := ok(dom); err != nil {
				return fmt.Errorf("%s: %w\n%s", what, err, dom)
			}
			return nil
		})
		return dom
	}
	shows := func(names ...string) func(string) error {
		return func(dom string) error {
			for _, n := range names {
				if !strings.Contains(dom, `data-node="`+n+`"`) {
					return fmt.Errorf("no row for %s", n)
				}
			}
			return nil
		}
	}
	dom := show("every node", shows(all...))
	for _, want := range []string{`data-hint="wnam"`, `data-hint="weur"`, `data-hint="apac"`, `data-hint="enam"`,
		"HK, CN", "applies to this node (HK)", "hk-1 (this node)", "HK / HKG"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the page lacks %q:\n%s", want, dom)
		}
	}
	if strings.Contains(dom, "Admin token <input") && !strings.Contains(dom, `id="auth" hidden`) {
		t.Errorf("the page asks for the token it was given:\n%s", dom)
	}
	if path := os.Getenv("LLMESH_STATUS_SCREENSHOT"); path != "" {
		if !filepath.IsAbs(path) {
			path = filepath.Join("..", path) // relative to the repository, not e2e/
		}
		browse(t, bin, page, "--screenshot="+path, "--window-size=1200,800", "--hide-scrollbars")
		t.Logf("screenshot saved to %s", path)
	}

	// A member whose gossip carries markup: any key holder can write it.
	hostile := `<img src=x onerror=alert(1)>`
	ml, err := membership.Start(membership.Config{
		Name: hostile, Bind: "127.0.0.1:0", Profile: "local", Join: []string{hk.GossipAddr()},
		Meta: membership.Meta{Role: role.Egress, Hint: "wnam", Loc: "<script>alert(2)</script>", Version: `"><b>v9</b>`},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ml.Leave(time.Second); ml.Shutdown() })
	dom = show("the hostile member, as text", func(dom string) error {
		if !strings.Contains(dom, "&lt;img src=x onerror=alert(1)&gt;") {
			return fmt.Errorf("no escaped hostile name")
		}
		return nil
	})
	if elems := attrValues.ReplaceAllString(dom, `=""`); strings.Contains(elems, "<img") || strings.Contains(elems, "<b>") ||
		strings.Count(elems, "<script") != 1 {
		t.Errorf("gossiped markup became elements:\n%s", dom)
	}
	for _, want := range []string{"&lt;script&gt;alert(2)&lt;/script&gt;", "\"&gt;&lt;b&gt;v9&lt;/b&gt;"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the page lacks %q as text:\n%s", want, dom)
		}
	}

	// A node that leaves disappears. (The local profile's timers, not the
	// harness's fast ones, so that a starved CPU does not turn the leave
	// into a death; if it still does, the page must show the death.)
	m.stop("wnam-lax-1")
	wait.Until(t, 30*time.Second, "hk-1 to see wnam-lax-1 gone", func() bool {
		lax, ok := hk.Members().Get("wnam-lax-1")
		return !ok || lax.State != membership.StateAlive
	})
	if lax, ok := hk.Members().Get("wnam-lax-1"); ok && lax.State == membership.StateDead {
		t.Logf("gossip lost wnam-lax-1's leave (an overloaded machine): hk-1 sees it dead; the page must say so")
		show("wnam-lax-1 dead", func(dom string) error {
			if !regexp.MustCompile(`data-node="wnam-lax-1">(<td[^>]*>[^<]*</td>){3}<td class="dead">dead</td>`).MatchString(dom) {
				return fmt.Errorf("wnam-lax-1 not shown dead")
			}
			return nil
		})
		return
	}
	show("wnam-lax-1 gone", func(dom string) error {
		if strings.Contains(dom, `data-node="wnam-lax-1"`) {
			return fmt.Errorf("wnam-lax-1 still listed")
		}
		return shows("hk-1", "us-1", "wnam-sjc-1", "weur-fra-1")(dom)
	})
}
