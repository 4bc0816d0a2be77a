package config

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/llmesh/llmesh/pkg/role"
)

// TestValidateReadsNoFile: Validate checks values only. The files a config
// names are read by Runtime, which leaves the config as the file stated it.
func TestValidateReadsNoFile(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "anthropic.key")
	if err := os.WriteFile(keyFile, []byte(" sk-ant-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	c := Default(role.Ingress)
	c.Auth.AccessKeys = []AccessKey{{Key: "ak-1"}}
	c.Providers["openai"] = Provider{APIKeyFile: missing}
	c.Providers["anthropic"] = Provider{APIKeyFile: keyFile}
	c.Tunnel.TLS = TLS{Cert: missing, Key: missing, CA: missing}

	if err := c.Validate(); err != nil {
		t.Fatalf("Validate read the disk: %v", err)
	}
	if p := c.Providers["anthropic"]; p.APIKeyFile != keyFile || p.APIKey != "" || !p.Managed() {
		t.Errorf("Validate rewrote the provider: file %q, key set %v, managed %v", p.APIKeyFile, p.APIKey != "", p.Managed())
	}

	_, err := c.Runtime()
	for _, want := range []string{
		`defaults: providers.openai.api_key_file: cannot read "` + missing + `": no such file or directory`,
		`defaults: tunnel.tls.cert: file "` + missing + `" does not exist`,
		`defaults: tunnel.tls.ca: file "` + missing + `" does not exist`,
	} {
		if !slices.Contains(errorLines(err), want) {
			t.Errorf("Runtime error =\n%v\nwant the line\n%s", err, want)
		}
	}

	c.Providers["openai"] = Provider{}
	c.Tunnel.TLS = TLS{}
	rt, err := c.Runtime()
	if err != nil {
		t.Fatal(err)
	}
	if got := rt.Endpoints["anthropic"].APIKey.Reveal(); got != "sk-ant-from-file" {
		t.Errorf("endpoint key = %q", got)
	}
	if p := rt.Providers["anthropic"]; p.APIKeyFile != keyFile || p.APIKey != "" {
		t.Errorf("Runtime rewrote the file's provider: %+v", p)
	}
}

func TestKeyFileErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tests := []struct{ name, path, want string }{
		{"empty", write("empty", " \n"), `%q is empty`},
		{"inner space", write("spaced", "sk two words\n"), `the key in %q must be printable ASCII without spaces`},
		{"directory", dir, `cannot read %q: is a directory`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parse(t, "auth: {access_keys: [ak-1]}\nproviders: {openai: {api_key_file: "+tt.path+"}}", role.Ingress)
			want := "cfg.yaml: providers.openai.api_key_file: " + strings.ReplaceAll(tt.want, "%q", `"`+tt.path+`"`)
			if !slices.Contains(errorLines(err), want) {
				t.Errorf("error =\n%v\nwant the line\n%s", err, want)
			}
			if strings.Contains(err.Error(), "two words") {
				t.Errorf("error shows the key: %v", err)
			}
		})
	}
}

// TestRuntime: what a node runs with, decoded once.
func TestRuntime(t *testing.T) {
	k1, k2 := make([]byte, 16), make([]byte, 32)
	k1[0], k2[0] = 1, 2
	b64 := base64.StdEncoding.EncodeToString
	rt, err := Parse([]byte(`
auth: {access_keys: [ak-1]}
gossip: {key: `+b64(k1)+`, keys: [`+b64(k2)+`]}
providers:
  openai: {api_key: sk-1, organization: org-1}
  gemini: {disabled: true}
  local: {base_url: "http://127.0.0.1:11434/v1/a%2Fb/"}
`), "cfg.yaml", role.Ingress, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rt.Keyring, Keyring{k1, k2}) {
		t.Errorf("Keyring = %v", [][]byte(rt.Keyring))
	}
	var names []string
	for name, e := range rt.Endpoints {
		names = append(names, name)
		if e.Name != name {
			t.Errorf("Endpoints[%s].Name = %q", name, e.Name)
		}
	}
	slices.Sort(names)
	if want := []string{"anthropic", "local", "openai", "openrouter"}; !slices.Equal(names, want) {
		t.Errorf("endpoints %v, want %v (the disabled one left out)", names, want)
	}
	if e := rt.Endpoints["openai"]; e.APIKey.Reveal() != "sk-1" || !e.Managed() || e.Organization != "org-1" ||
		e.Base.String() != "https://api.openai.com" || e.MaxBodyBytes != 32<<20 {
		t.Errorf("openai = %+v", e)
	}
	if b := rt.Endpoints["local"].Base; b.Scheme != "http" || b.Host != "127.0.0.1:11434" || b.Path != "/v1/a/b" || b.EscapedPath() != "/v1/a%2Fb" {
		t.Errorf("local base = %#v", *b)
	}

	// Only the keys: the first is the primary.
	rt, err = Parse([]byte("gossip: {keys: ["+b64(k2)+", "+b64(k1)+"]}"), "cfg.yaml", role.Ingress, nil)
	if err != nil || !reflect.DeepEqual(rt.Keyring, Keyring{k2, k1}) {
		t.Errorf("keys only: %v, %v", rt, err)
	}
	if rt, err := Load("", role.Ingress); err != nil || len(rt.Keyring) != 0 {
		t.Errorf("no gossip key: keyring %d keys, %v", len(rt.Keyring), err)
	}
}

// TestRuntimeReportsAllAtOnce: problems with values and with files come
// together, as they did when Validate read the files.
func TestRuntimeReportsAllAtOnce(t *testing.T) {
	_, err := parse(t, "node: {loc: xyz}\ntunnel: {tls: {cert: /nonexistent/c.pem, key: /nonexistent/k.pem}}\n", role.Ingress)
	want := []string{
		`cfg.yaml: node.loc: must be an ISO 3166 alpha-2 code such as HK or US (got "XYZ")`,
		`cfg.yaml: tunnel.tls: set cert, key and ca together or none of them (missing ca)`,
		`cfg.yaml: tunnel.tls.cert: file "/nonexistent/c.pem" does not exist`,
		`cfg.yaml: tunnel.tls.key: file "/nonexistent/k.pem" does not exist`,
	}
	if got := errorLines(err); !slices.Equal(got, want) {
		t.Errorf("error =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestProviderOverlayEveryField: for every field of Provider, a value in the
// file overrides the built-in one, zero values included, and every other
// field keeps the built-in. A new field is covered here without a change,
// unless its type needs a new sample below.
func TestProviderOverlayEveryField(t *testing.T) {
	typ := reflect.TypeFor[Provider]()
	// samples gives a built-in value and a different file value, as Go
	// values and as the file's YAML.
	samples := func(f reflect.StructField) (builtin, file reflect.Value, yml string) {
		v := func(x any) reflect.Value { return reflect.ValueOf(x).Convert(f.Type) }
		switch {
		case f.Type.Kind() == reflect.String:
			return v("builtin-" + f.Name), v("file-" + f.Name), "file-" + f.Name
		case f.Type.Kind() == reflect.Int64:
			return v(int64(7)), v(int64(0)), "0"
		case f.Type.Kind() == reflect.Bool:
			return v(true), v(false), "false"
		case f.Type == reflect.TypeFor[*bool]():
			yes, no := true, false
			return v(&yes), v(&no), "false"
		}
		t.Fatalf("Provider.%s: no sample for %s; add one", f.Name, f.Type)
		return
	}
	var builtin, all Provider
	var allYAML []string
	for f := range typ.Fields() {
		b, fv, yml := samples(f)
		reflect.ValueOf(&builtin).Elem().FieldByIndex(f.Index).Set(b)
		reflect.ValueOf(&all).Elem().FieldByIndex(f.Index).Set(fv)
		allYAML = append(allYAML, yamlName(f)+": "+yml)
	}
	overlay := func(yml string) Provider {
		t.Helper()
		root, err := parseYAML([]byte(yml), "cfg.yaml")
		if err != nil {
			t.Fatal(err)
		}
		ps, err := overlayProviders(root, map[string]Provider{"p": builtin})
		if err != nil {
			t.Fatal(err)
		}
		return ps["p"]
	}
	for f := range typ.Fields() {
		_, fv, yml := samples(f)
		want := builtin
		reflect.ValueOf(&want).Elem().FieldByIndex(f.Index).Set(fv)
		if got := overlay("providers: {p: {" + yamlName(f) + ": " + yml + "}}"); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %s from the file gave\n%+v\nwant\n%+v", f.Name, yml, got, want)
		}
	}
	if got := overlay("providers: {p: {" + strings.Join(allYAML, ", ") + "}}"); !reflect.DeepEqual(got, all) {
		t.Errorf("every field from the file gave\n%+v\nwant\n%+v", got, all)
	}
	if got := overlay("providers: {p: ~}"); !reflect.DeepEqual(got, builtin) {
		t.Errorf("an empty entry changed the built-in: %+v", got)
	}
}

// A built-in provider whose base_url is set to "" (an empty variable, say)
// keeps its URL, as when the field is left out.
func TestEmptyBuiltinBaseURL(t *testing.T) {
	c, err := Parse([]byte("providers: {openai: {base_url: \"${EMPTY}\"}}"), "cfg.yaml", role.Ingress, env(map[string]string{"EMPTY": ""}))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Providers["openai"].BaseURL; got != "https://api.openai.com" {
		t.Errorf("base_url = %q", got)
	}
}
