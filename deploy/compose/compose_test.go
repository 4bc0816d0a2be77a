package compose

import (
	"fmt"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/llmesh/llmesh/pkg/config"
	"github.com/llmesh/llmesh/pkg/role"
)

// file is the part of the Compose specification compose.yaml uses; the
// strict decoding refuses anything else, so a typo is a test failure.
type file struct {
	XNode    map[string]any     `json:"x-node"`
	XEnv     map[string]string  `json:"x-env"`
	Services map[string]service `json:"services"`
}

type service struct {
	Image           string            `json:"image"`
	Command         []string          `json:"command"`
	NetworkMode     string            `json:"network_mode"`
	User            string            `json:"user"`
	ReadOnly        bool              `json:"read_only"`
	CapDrop         []string          `json:"cap_drop"`
	SecurityOpt     []string          `json:"security_opt"`
	StopSignal      string            `json:"stop_signal"`
	StopGracePeriod string            `json:"stop_grace_period"`
	Volumes         []string          `json:"volumes"`
	Environment     map[string]string `json:"environment"`
	DependsOn       []string          `json:"depends_on"`
}

// node is a service that runs an llmesh node, with its config parsed.
type node struct {
	name string
	svc  service
	cfg  *config.Runtime
}

// load reads compose.yaml, interpolated the way compose does with an
// empty environment (${VAR:-default} takes the default).
func load(t *testing.T) *file {
	t.Helper()
	data, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	data = interpolate(t, data)
	var f file
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return &f
}

var composeVar = regexp.MustCompile(`\$\{([A-Z_][A-Z0-9_]*)(:-([^}]*))?\}`)

// interpolate replaces compose's ${VAR:-default} by its default; a bare
// ${VAR} would need the user's environment, so it is an error.
func interpolate(t *testing.T, data []byte) []byte {
	return composeVar.ReplaceAllFunc(data, func(m []byte) []byte {
		sub := composeVar.FindSubmatch(m)
		if sub[2] == nil {
			t.Errorf("compose.yaml: %s has no default: the file must work without a .env", m)
		}
		return sub[3]
	})
}

// nodes parses the llmesh config of every node service with the
// environment compose gives it.
func nodes(t *testing.T, f *file) []node {
	t.Helper()
	var out []node
	for name, svc := range f.Services {
		if len(svc.Command) < 3 || svc.Command[1] != "-config" {
			continue
		}
		r := role.Role(svc.Command[0])
		if !r.Valid() {
			t.Fatalf("service %s: command %q is not an llmesh role", name, svc.Command)
		}
		data, err := os.ReadFile(hostPath(t, svc, svc.Command[2]))
		if err != nil {
			t.Fatalf("service %s: %v", name, err)
		}
		env := func(k string) (string, bool) { v, ok := svc.Environment[k]; return v, ok }
		cfg, err := config.Parse(data, svc.Command[2], r, env)
		if err != nil {
			t.Fatalf("service %s: its config does not parse: %v", name, err)
		}
		out = append(out, node{name: name, svc: svc, cfg: cfg})
	}
	slices.SortFunc(out, func(a, b node) int { return strings.Compare(a.name, b.name) })
	return out
}

// hostPath maps a path inside the container to the file beside
// compose.yaml through the service's bind mounts.
func hostPath(t *testing.T, svc service, p string) string {
	t.Helper()
	for _, v := range svc.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 {
			continue
		}
		if rel, ok := strings.CutPrefix(p, parts[1]+"/"); ok {
			return filepath.Join(parts[0], filepath.FromSlash(rel))
		}
	}
	t.Fatalf("%s is not under a bind mount of %v", p, svc.Volumes)
	return ""
}

// TestComposeFile checks the mesh that compose.yaml describes without
// running it: every node's config parses, the regions and pools are
// there, every address is the node's own loopback address, seeds and
// provider URLs point at services of the file, and stopping leaves the
// drain its time.
func TestComposeFile(t *testing.T) {
	f := load(t)
	ns := nodes(t, f)
	hints := map[string]string{}     // egress hint -> node name
	locs := map[string]string{}      // ingress loc -> wanted hint
	owner := map[string]string{}     // listen address -> service
	gossip := map[string]bool{}      // gossip addresses
	listens := map[string][]string{} // service -> its listen addresses
	for _, n := range ns {
		c := n.cfg
		addrs := []string{c.HTTP.Listen, c.Admin.Listen, c.Gossip.Bind}
		if c.Role == role.Egress {
			addrs = append(addrs, c.Tunnel.Listen)
			hints[c.Node.Hint] = c.Node.Name
		} else {
			for _, r := range c.Routing.Rules {
				if slices.Contains(r.Locs, c.Node.Loc) {
					locs[c.Node.Loc] = r.Hint
				}
			}
		}
		gossip[c.Gossip.Bind] = true
		for _, a := range addrs {
			if a == "" {
				continue
			}
			if host, _, _ := net.SplitHostPort(a); !net.ParseIP(host).IsLoopback() {
				t.Errorf("%s listens on %s: host networking must stay on loopback", n.name, a)
			}
			if o, dup := owner[a]; dup {
				t.Errorf("%s and %s both listen on %s", o, n.name, a)
			}
			owner[a] = n.name
			listens[n.name] = append(listens[n.name], a)
		}
		checkService(t, n)
	}
	if len(hints) < 2 || len(locs) < 2 {
		t.Errorf("want two egress pools and two ingress regions that tunnel, got pools %v, ingress locs %v", hints, locs)
	}
	for loc, hint := range locs {
		if hints[hint] == "" {
			t.Errorf("ingress loc %s routes to %s, which no egress of the file serves", loc, hint)
		}
	}

	provider := f.Services["fakeprovider"]
	if len(provider.Command) < 3 || provider.Command[1] != "-listen" {
		t.Fatalf("fakeprovider: command %q: want fakeprovider -listen ADDR", provider.Command)
	}
	for _, n := range ns {
		for _, seed := range n.cfg.Gossip.Join {
			if !gossip[seed] || owner[seed] == n.name {
				t.Errorf("%s: seed %s is not another node's gossip address", n.name, seed)
			}
		}
		for name, ep := range n.cfg.Endpoints {
			if ep.Base.Host != provider.Command[2] {
				t.Errorf("%s: provider %s at %s, not the fake provider %s: the mesh must work offline", n.name, name, ep.Base, provider.Command[2])
			}
		}
	}
}

// checkService checks a node's container settings: non-root, read-only,
// no capabilities, and a stop grace period that covers drain_timeout.
func checkService(t *testing.T, n node) {
	s := n.svc
	if s.NetworkMode != "host" {
		t.Errorf("%s: network_mode %q: the nodes share the host's loopback", n.name, s.NetworkMode)
	}
	if s.User == "" || strings.HasPrefix(s.User, "0") || s.User == "root" {
		t.Errorf("%s: user %q: run as non-root", n.name, s.User)
	}
	if !s.ReadOnly || !slices.Equal(s.CapDrop, []string{"ALL"}) || !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
		t.Errorf("%s: want read_only, cap_drop [ALL] and no-new-privileges", n.name)
	}
	grace, err := time.ParseDuration(s.StopGracePeriod)
	if err != nil || s.StopSignal != "SIGTERM" || grace < n.cfg.DrainTimeout+5*time.Second {
		t.Errorf("%s: stop_signal %s, stop_grace_period %q: want SIGTERM and at least drain_timeout %v + 5s (%v)",
			n.name, s.StopSignal, s.StopGracePeriod, n.cfg.DrainTimeout, err)
	}
	if s.Image != "llmesh:local" {
		t.Errorf("%s: image %q, want ${LLMESH_IMAGE:-llmesh:local}", n.name, s.Image)
	}
}

// TestComposeConfigsUsed checks that every config file beside compose.yaml
// belongs to a service, so none drifts unchecked.
func TestComposeConfigsUsed(t *testing.T) {
	f := load(t)
	used := map[string]bool{}
	for _, n := range nodes(t, f) {
		used[path.Base(n.svc.Command[2])] = true
	}
	files, err := filepath.Glob("config/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range files {
		if !used[filepath.Base(p)] {
			t.Errorf("%s is used by no service", p)
		}
	}
	if len(used) != 4 {
		t.Errorf("%d node services, want 4: %v", len(used), fmt.Sprint(used))
	}
}
