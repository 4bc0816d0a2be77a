package config

import (
	"errors"
	"io/fs"
	"os"
	"strings"
)

// readFiles checks the files the config names and reads those it needs,
// adding a problem for each that cannot be used: the tunnel's TLS files
// (meshtls loads them when the node starts) and each provider's
// api_key_file, whose keys it returns by provider name. It is the only
// place that reads the disk once the config file itself is read.
func (c *Config) readFiles(p *problems) map[string]Secret {
	c.checkTLSFiles(p)
	return c.readKeyFiles(p)
}

func (c *Config) checkTLSFiles(p *problems) {
	for _, f := range []struct{ key, path string }{
		{"cert", c.Tunnel.TLS.Cert},
		{"key", c.Tunnel.TLS.Key},
		{"ca", c.Tunnel.TLS.CA},
	} {
		if f.path == "" {
			continue
		}
		switch st, err := os.Stat(f.path); {
		case errors.Is(err, fs.ErrNotExist):
			p.add("tunnel.tls."+f.key, "file %q does not exist", f.path)
		case err != nil:
			p.add("tunnel.tls."+f.key, "%v", err)
		case !st.Mode().IsRegular():
			p.add("tunnel.tls."+f.key, "%q is not a regular file", f.path)
		}
	}
}

// readKeyFiles reads each api_key_file once, trimming surrounding space.
// Its errors name the file, never the key.
func (c *Config) readKeyFiles(p *problems) map[string]Secret {
	keys := map[string]Secret{}
	for _, name := range sortedProviderNames(c.Providers) {
		pr := c.Providers[name]
		if pr.APIKeyFile == "" || pr.APIKey != "" {
			continue // none, or both: Validate's error
		}
		key := "providers." + name + ".api_key_file"
		b, err := os.ReadFile(pr.APIKeyFile)
		k := strings.TrimSpace(string(b))
		switch {
		case err != nil:
			p.add(key, "cannot read %q: %v", pr.APIKeyFile, errors.Unwrap(err))
		case k == "":
			p.add(key, "%q is empty", pr.APIKeyFile)
		case !printableToken(k):
			p.add(key, "the key in %q must be printable ASCII without spaces", pr.APIKeyFile)
		default:
			keys[name] = Secret(k)
		}
	}
	return keys
}
