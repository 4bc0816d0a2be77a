package config

import (
	"os"
	"strings"
	"testing"

	"github.com/llmesh/llmesh/pkg/role"
)

// FuzzParse: any input either fails with an error or yields a config that
// validates again unchanged; the secret from the environment never shows
// in an error.
func FuzzParse(f *testing.F) {
	if b, err := os.ReadFile("testdata/design.yaml"); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		"node: {name: a, loc: hk}\n",
		"tunnel: {token: ${SECRET}}\n",
		"providers:\n  x: {base_url: \"http://h/${SECRET}\"}\n",
		"gossip: {key: ${SECRET}}\n",
		"routing: {rules: [{locs: [HK], hint: wnam}], fallback: nearest}\n",
		"auth: {access_keys: [${SECRET}]}\nproviders: {openai: {api_key: ${SECRET}}}\n",
		"a: &a [*a]\n",
		"auth: {access_keys: [{key: \"${SECRET}\", providers: [openai]}, \"${SECRET}x\"]}\nproviders: {openai: {api_key: \"${SECRET}\", organization: org-1}}\n",
		"providers: {gemini: {disabled: true}, openrouter: {disabled: true}}\n",
	} {
		f.Add([]byte(s))
	}
	const secret = "s3cr3t-VALUE-xyz"
	env := func(k string) (string, bool) {
		if k == "SECRET" || k == "LLMESH_TUNNEL_TOKEN" {
			return secret, true
		}
		return "", false
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.yaml", role.Ingress, env)
		if err != nil {
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error shows the secret: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("a parsed config fails validation again: %v", err)
		}
	})
}
