package cli

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/llmesh/llmesh/pkg/config"
	"github.com/llmesh/llmesh/pkg/meshtls"
	"github.com/llmesh/llmesh/pkg/node"
	"github.com/llmesh/llmesh/pkg/role"
)

// expiryWarning is how early -check warns of a certificate that expires.
const expiryWarning = 30 * 24 * time.Hour

// check is -check: it validates the config at path ("" = the defaults) as
// a node of role r would load it, and the files it names: api_key_files
// are read, and the tunnel's certificate, key and CA are parsed and checked
// together (the key matches, the chain verifies now, the certificate names
// this node). Each problem is a line on stdout, "file[:line]: key: message",
// then an error saying how many; a valid config prints one "ok" line
// (and a warning for a certificate that expires within 30 days).
func check(r role.Role, path string, stdout io.Writer) error {
	problems, c, tls := checkConfig(r, path)
	name := path
	if name == "" {
		name = "defaults"
	}
	for _, p := range problems {
		fmt.Fprintln(stdout, p)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s: %d %s", name, len(problems), plural(len(problems), "problem"))
	}
	summary, warnings := describeConfig(c, tls, time.Now())
	for _, w := range warnings {
		fmt.Fprintf(stdout, "%s: warning: %s\n", name, w)
	}
	fmt.Fprintf(stdout, "%s: ok: %s\n", name, summary)
	return nil
}

// checkConfig returns every problem of the config at path, one a line;
// without any, the config and its loaded certificates (nil without
// tunnel.tls). The certificates are checked where the values that name
// them (tunnel.tls, node) are right.
func checkConfig(r role.Role, path string) ([]string, *config.Config, *meshtls.Store) {
	c, err := config.Read(path, r)
	if err != nil {
		return lines(err), nil, nil // the shape is wrong: values cannot be checked
	}
	_, err = c.Runtime()
	problems := lines(err)
	var store *meshtls.Store
	if c.Tunnel.TLS.Enabled() && !mentions(problems, "tunnel.tls") && !mentions(problems, "node.") {
		if store, err = node.LoadTLS(c, nil); err != nil {
			problems = append(problems, sourceName(c)+": "+err.Error())
		}
	}
	if len(problems) > 0 {
		return problems, nil, nil
	}
	return nil, c, store
}

// describeConfig is the ok line's summary of a valid config, and warnings.
func describeConfig(c *config.Config, tls *meshtls.Store, now time.Time) (string, []string) {
	var parts, warnings []string
	parts = append(parts, fmt.Sprintf("%s %q", c.Role, c.Node.Name))
	if c.Role == role.Ingress {
		parts = append(parts, fmt.Sprintf("%d routing %s", len(c.Routing.Rules), plural(len(c.Routing.Rules), "rule")),
			fmt.Sprintf("%d access %s", len(c.Auth.AccessKeys), plural(len(c.Auth.AccessKeys), "key")))
	}
	enabled := 0
	for _, p := range c.Providers {
		if !p.Disabled {
			enabled++
		}
	}
	parts = append(parts, fmt.Sprintf("%d %s", enabled, plural(enabled, "provider")))
	if tls != nil {
		until := tls.Certificate().Leaf.NotAfter
		parts = append(parts, "tunnel certificate "+tls.Identity().String()+" valid until "+until.UTC().Format(time.DateOnly))
		if left := until.Sub(now); left < expiryWarning {
			days := int(math.Ceil(left.Hours() / 24))
			warnings = append(warnings, fmt.Sprintf("tunnel.tls.cert: expires in %d %s (%s)", days, plural(days, "day"), until.UTC().Format(time.RFC3339)))
		}
	}
	return strings.Join(parts, ", "), warnings
}

// lines splits a config error (errors joined, one per line) into lines.
func lines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

// mentions reports whether a problem names key (a key or the start of one).
func mentions(problems []string, key string) bool {
	for _, p := range problems {
		if strings.Contains(p, ": "+key) {
			return true
		}
	}
	return false
}

func sourceName(c *config.Config) string {
	if c.File == "" {
		return "defaults"
	}
	return c.File
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
