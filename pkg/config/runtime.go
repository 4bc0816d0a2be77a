package config

import (
	"errors"
	"net/url"
)

// Runtime is a configuration checked once and ready to run: the file's
// values, normalised and validated, beside what they name read and
// decoded: the gossip keyring, the providers' base URLs, the keys of
// api_key_file. A node starts from a Runtime and parses nothing again; a
// reload builds a new one and, when that fails, keeps running on the old.
//
// Read providers from Endpoints: the embedded Config's Providers is the
// file's view (api_key_file not read, disabled providers included).
type Runtime struct {
	Config
	// Keyring is the gossip keys, decoded, primary first (gossip.key, then
	// gossip.keys); empty when gossip is not encrypted.
	Keyring Keyring
	// Endpoints are the providers this node serves, by name.
	Endpoints map[string]Endpoint
}

// Endpoint is a provider as this node serves it: enabled, with its key
// wherever it came from (Provider.APIKey holds the key of api_key_file too)
// and its base URL parsed.
type Endpoint struct {
	Provider
	Name string
	Base *url.URL // Provider.BaseURL parsed: scheme, host and path without a trailing slash, nothing else
}

// Runtime validates c (see Validate), reads the files it names and returns
// what a node runs with. Problems with values and with files are reported
// together. The Runtime shares c's maps and lists: leave c unchanged after.
func (c *Config) Runtime() (*Runtime, error) {
	v, p := c.validate()
	keys := c.readFiles(p)
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	rt := &Runtime{Config: *c, Keyring: v.keyring, Endpoints: make(map[string]Endpoint, len(c.Providers))}
	for name, pr := range c.Providers {
		if pr.Disabled {
			continue // an unknown provider on this node, like any other name
		}
		if k, ok := keys[name]; ok {
			pr.APIKey = k
		}
		rt.Endpoints[name] = Endpoint{Provider: pr, Name: name, Base: v.bases[name]}
	}
	return rt, nil
}
