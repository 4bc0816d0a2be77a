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
