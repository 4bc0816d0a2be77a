package node

import (
	"reflect"
	"testing"

	"github.com/llmesh/llmesh/pkg/config"
	"github.com/llmesh/llmesh/pkg/provider"
	"github.com/llmesh/llmesh/pkg/role"
)

// TestBuildProviders: the registry built from the checked config is the one
// provider.New built from the file's values (as the node did before it took
// a config.Runtime), base URLs included.
func TestBuildProviders(t *testing.T) {
	cfg := config.Default(role.Egress)
	cfg.Node.Hint = "wnam"
	cfg.Tunnel.Insecure = true
	yes := true
	for name, p := range map[string]config.Provider{
		"openai":  {APIKey: "sk-1", Organization: "org-1", Project: "proj-1"},
		"gemini":  {Disabled: true},
		"slash":   {BaseURL: "https://h.example/v1///"},
		"escaped": {BaseURL: "http://127.0.0.1:8/a%2Fb/c/", Style: "ANTHROPIC", MaxBodyBytes: 9},
		"port":    {BaseURL: "HTTPS://H.example:8443", ManagedKey: &yes},
		"rooted":  {BaseURL: "https://h.example/"},
		"ipv6":    {BaseURL: "http://[::1]:80/x//"},
		"enc-end": {BaseURL: "https://h.example/a%2F"},
	} {
		cfg.Providers[name] = p
	}
	rt, err := cfg.Runtime()
	if err != nil {
		t.Fatal(err)
	}
	reg := buildProviders(rt)

	var want []*provider.Provider
	for name, pc := range cfg.Providers {
		if pc.Disabled {
			continue
		}
		p, err := provider.New(name, pc.BaseURL, provider.Style(pc.Style), pc.MaxBodyBytes)
		if err != nil {
			t.Fatal(err)
		}
		p.APIKey = pc.APIKey.Reveal()
		p.Managed = pc.Managed()
		p.Organization, p.Project = pc.Organization, pc.Project
		want = append(want, p)
	}
	wantReg := provider.NewRegistry(want...)
	if !reflect.DeepEqual(reg.Names(), wantReg.Names()) {
		t.Fatalf("providers %v, want %v", reg.Names(), wantReg.Names())
	}
	for _, name := range wantReg.Names() {
		got, _ := reg.Get(name)
		w, _ := wantReg.Get(name)
		if !reflect.DeepEqual(got, w) {
			t.Errorf("%s = %+v (base %#v)\nwant %+v (base %#v)", name, got, *got.Base, w, *w.Base)
		}
	}
}
