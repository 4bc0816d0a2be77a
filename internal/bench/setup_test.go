package bench

import (
	"fmt"
	"strings"
	"testing"

	"github.com/llmesh/llmesh/pkg/config"
	"github.com/llmesh/llmesh/pkg/role"
)

// TestNodeConfigs: the configs the harness writes are valid, so a renamed
// key fails here rather than after a minute of make bench.
func TestNodeConfigs(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		role       role.Role
	}{
		{"direct", fmt.Sprintf(directConfig, "127.0.0.1:8080", "http://127.0.0.1:9999"), role.Ingress},
		{"egress", fmt.Sprintf(egressConfig, "127.0.0.2:7947", "http://127.0.0.1:9999"), role.Egress},
		{"ingress", fmt.Sprintf(ingressConfig, "127.0.0.1:8080", "127.0.0.2:7947"), role.Ingress},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if strings.Contains(tc.text, "%!") {
				t.Fatalf("a verb without its argument:\n%s", tc.text)
			}
			c, err := config.Parse([]byte(tc.text), tc.name+".yaml", tc.role, nil)
			if err != nil {
				t.Fatal(err)
			}
			if c.Log.Level != "info" {
				t.Errorf("log.level %q: the rows should log as production does", c.Log.Level)
			}
			// What -log appends.
			if c, err := config.Parse([]byte(tc.text+"log: {level: error}\n"), tc.name+".yaml", tc.role, nil); err != nil || c.Log.Level != "error" {
				t.Errorf("with -log error: %v", err)
			}
		})
	}
}

// TestSetups: the llmesh rows run once per provider kind, named by it when
// there are several, each build's with its own environment; DIRECT and the
// floors call the first kind.
func TestSetups(t *testing.T) {
	names := func(list []setup) (out []string) {
		for _, s := range list {
			out = append(out, s.name+" → "+s.provider)
		}
		return out
	}
	got := names(setups(false, "", nil, []string{providerH2}))
	want := []string{"DIRECT (no proxy) → h2", "Go floor → h2", "two-hop floor → h2", "llmesh direct → h2", "llmesh tunnel → h2"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("one kind:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	got = names(setups(true, "base", []string{"GOGC=50"}, []string{providerH2, providerH1}))
	want = []string{"DIRECT (no proxy) → h2", "Go floor → h2", "two-hop floor → h2",
		"llmesh direct h2 (GOGC=50) → h2", "llmesh tunnel h2 (GOGC=50) → h2",
		"llmesh direct h1 (GOGC=50) → h1", "llmesh tunnel h1 (GOGC=50) → h1",
		"llmesh direct h2 (base) → h2", "llmesh tunnel h2 (base) → h2",
		"llmesh direct h1 (base) → h1", "llmesh tunnel h1 (base) → h1",
		"Go floor (again) → h2", "two-hop floor (again) → h2"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("two kinds, -against, -env:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
