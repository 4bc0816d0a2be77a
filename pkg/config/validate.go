package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/llmesh/llmesh/pkg/role"
)

var (
	providerName      = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
	reservedProviders = []string{"health", "members", "metrics"}
	profiles          = []string{"lan", "wan", "local"}
	fallbacks         = []string{"fail", "direct", "nearest"}
	styles            = []string{"openai", "anthropic", "gemini"}
	logLevels         = []string{"debug", "info", "warn", "error"}
	logFormats        = []string{"text", "json"}
)

// problems collects validation errors for one config.
type problems struct {
	file string
	errs []error
}

func (p *problems) add(key, format string, args ...any) {
	p.errs = append(p.errs, &FieldError{File: p.file, Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (p *problems) oneOf(key, got string, allowed []string) {
	if !slices.Contains(allowed, got) {
		p.add(key, "must be one of %s (got %q)", strings.Join(allowed, ", "), got)
	}
}

func (p *problems) notNegative(key string, v int64) {
	if v < 0 {
		p.add(key, "must not be negative (got %d)", v)
	}
}

func (p *problems) duration(key string, d time.Duration) {
	if d < 0 {
		p.add(key, "must not be negative (got %s)", d)
	}
}

// Validate normalises the config (upper-case locs and colos, lower-case
// keywords, base URLs without a trailing slash), fills the defaults derived
// from other fields (node name, tunnel.advertise, provider base URLs, styles
// and body limits) and checks every value. It reads no file: Runtime reads
// the files the config names. It returns every problem found, joined, each
// naming the file and the key.
func (c *Config) Validate() error {
	_, p := c.validate()
	return errors.Join(p.errs...)
}

// decoded is what validation parsed on the way, kept for the Runtime so
// that nothing is parsed twice.
type decoded struct {
	keyring Keyring
	bases   map[string]*url.URL // by provider name
}

// validate is Validate, one function per section, returning also what it
// decoded.
func (c *Config) validate() (decoded, *problems) {
	c.normalise()
	p := &problems{file: sourceName(c.File)}
	var v decoded
	c.validateRole(p)
	c.validateNode(p)
	c.validateHTTP(p)
	c.validateTunnel(p)
	v.keyring = c.validateGossip(p)
	c.validateRouting(p)
	v.bases = c.validateProviders(p)
	c.validateAuth(p)
	c.validateAdmin(p)
	c.validateListeners(p)
	c.validateUpstream(p)
	p.duration("drain_timeout", c.DrainTimeout)
	c.validateLog(p)
	if c.Reload.Interval <= 0 {
		p.add("reload.interval", "must be positive (got %s)", c.Reload.Interval)
	}
	return v, p
}

func (c *Config) normalise() {
	if c.Node.Name == "" {
		c.Node.Name = defaultName(c.Role)
	}
	c.Node.Loc = strings.ToUpper(c.Node.Loc)
	c.Node.Colo = strings.ToUpper(c.Node.Colo)
	c.Node.Hint = strings.ToLower(c.Node.Hint)
	if c.Tunnel.Advertise == "" {
		c.Tunnel.Advertise = c.Tunnel.Listen
	}
	c.Gossip.Profile = strings.ToLower(c.Gossip.Profile)
	c.Routing.Fallback = strings.ToLower(c.Routing.Fallback)
	c.Routing.OnRegionBlock = strings.ToLower(c.Routing.OnRegionBlock)
	for i := range c.Routing.Rules {
		r := &c.Routing.Rules[i]
		r.Hint = strings.ToLower(r.Hint)
		for j := range r.Locs {
			r.Locs[j] = strings.ToUpper(r.Locs[j])
		}
	}
	for name, pr := range c.Providers {
		if pr.BaseURL == "" {
			pr.BaseURL = BuiltinProviders()[name].BaseURL // "" for other names: required
		}
		pr.BaseURL = strings.TrimRight(pr.BaseURL, "/")
		pr.Style = strings.ToLower(pr.Style)
		if pr.Style == "" {
			pr.Style = defaultStyle(name)
		}
		if pr.MaxBodyBytes == 0 {
			pr.MaxBodyBytes = c.HTTP.MaxBodyBytes
		}
		if pr.ManagedKey == nil && (pr.APIKey != "" || pr.APIKeyFile != "") {
			managed := true
			pr.ManagedKey = &managed
		}
		c.Providers[name] = pr
	}
	c.Log.Level = strings.ToLower(c.Log.Level)
	c.Log.Format = strings.ToLower(c.Log.Format)
}

func defaultStyle(name string) string {
	switch name {
	case "anthropic", "gemini":
		return name
	}
	return "openai"
}

func (c *Config) validateRole(p *problems) {
	if c.Role != role.Ingress && c.Role != role.Egress {
		p.add("role", "must be %s or %s (got %q)", role.Ingress, role.Egress, c.Role)
	}
}

func (c *Config) validateNode(p *problems) {
	n := c.Node
	switch {
	case len(n.Name) > 255:
		p.add("node.name", "must be at most 255 bytes (got %d)", len(n.Name))
	case strings.IndexFunc(n.Name, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0:
		p.add("node.name", "must not contain spaces or control characters (got %q)", n.Name)
	}
	if n.Loc != "" && !isLoc(n.Loc) {
		p.add("node.loc", "must be an ISO 3166 alpha-2 code such as HK or US (got %q)", n.Loc)
	}
	if n.Colo != "" && (len(n.Colo) > 32 || strings.IndexFunc(n.Colo, func(r rune) bool {
		return !('A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-')
	}) >= 0) {
		p.add("node.colo", "must be up to 32 letters, digits or '-' such as HKG (got %q)", n.Colo)
	}
	switch {
	case n.Hint != "" && !ValidHint(n.Hint):
		p.add("node.hint", "must be one of %s (got %q)", strings.Join(Hints, ", "), n.Hint)
	case n.Hint == "" && c.Role == role.Egress:
		p.add("node.hint", "required on an egress: ingress nodes pick an egress by its hint (one of %s)", strings.Join(Hints, ", "))
	}
}

func isLoc(s string) bool {
	return len(s) == 2 && 'A' <= s[0] && s[0] <= 'Z' && 'A' <= s[1] && s[1] <= 'Z'
}

func (c *Config) validateHTTP(p *problems) {
	h := c.HTTP
	if h.Listen == "" {
		p.add("http.listen", "required (host:port)")
	} else if msg := checkAddr(h.Listen, false); msg != "" {
		p.add("http.listen", "%s", msg)
	}
	p.duration("http.read_header_timeout", h.ReadHeaderTimeout)
	p.duration("http.idle_timeout", h.IdleTimeout)
	p.notNegative("http.max_header_bytes", int64(h.MaxHeaderBytes))
	p.notNegative("http.max_body_bytes", h.MaxBodyBytes)
	p.duration("http.body_idle_timeout", h.BodyIdleTimeout)
	p.notNegative("http.min_body_rate", h.MinBodyRate)
	if h.MinBodyRate > 0 && h.BodyIdleTimeout == 0 {
		p.add("http.min_body_rate", "needs http.body_idle_timeout, its grace period (set both, or min_body_rate: 0)")
	}
	p.notNegative("http.max_in_flight", int64(h.MaxInFlight))
	p.duration("http.sse_keepalive", h.SSEKeepalive)
	p.notNegative("http.max_streams_per_conn", int64(h.MaxStreamsPerConn))
	p.notNegative("http.max_in_flight_per_client", int64(h.MaxInFlightPerClient))
}

func (c *Config) validateTunnel(p *problems) {
	t := c.Tunnel
	egress := c.Role == role.Egress
	switch {
	case t.Listen != "":
		if msg := checkAddr(t.Listen, false); msg != "" {
			p.add("tunnel.listen", "%s", msg)
		}
	case egress:
		p.add("tunnel.listen", "required on an egress (host:port)")
	}
	// Other nodes dial the advertised address, which only matters on an egress.
	if egress && t.Advertise != "" {
		if msg := checkAddr(t.Advertise, true); msg != "" {
			p.add("tunnel.advertise", "%s", msg)
		} else if host, _, _ := net.SplitHostPort(t.Advertise); isUnspecified(host) {
			p.add("tunnel.advertise", "must be an address other nodes can dial, not %q; set it when tunnel.listen binds every interface", t.Advertise)
		}
	}
	if t.Token != "" && strings.IndexFunc(t.Token.Reveal(), func(r rune) bool { return r <= ' ' || r > '~' }) >= 0 {
		// It travels as gRPC metadata, which allows printable ASCII only.
		p.add("tunnel.token", "must be printable ASCII without spaces")
	}
	c.validateTLS(p)
	// grpc-go raises a client's ping interval below 10 s to 10 s (with a
	// warning); say so here rather than run with another value than written.
	if t.Keepalive < 10*time.Second {
		p.add("tunnel.keepalive", "must be at least 10s (got %s)", t.Keepalive)
	}
	if t.KeepaliveTimeout < time.Second {
		p.add("tunnel.keepalive_timeout", "must be at least 1s (got %s)", t.KeepaliveTimeout)
	}
	p.duration("tunnel.accept_timeout", t.AcceptTimeout)
	if egress && t.MaxStreams < 1 {
		p.add("tunnel.max_streams", "must be at least 1 on an egress")
	}
	// A TLS handshake across the world takes a few round trips.
	if egress && t.HandshakeTimeout < time.Second {
		p.add("tunnel.handshake_timeout", "must be at least 1s on an egress (got %s)", t.HandshakeTimeout)
	}
	if egress && t.MaxHandshakes < 1 {
		p.add("tunnel.max_handshakes", "must be at least 1 on an egress (got %d)", t.MaxHandshakes)
	}
	if egress && !t.TLS.Enabled() && t.Token == "" && !t.Insecure {
		p.add("tunnel", "an egress needs tunnel.tls (cert, key, ca), tunnel.token, or tunnel.insecure: true; refusing to run an open tunnel")
	}
}

func (c *Config) validateTLS(p *problems) {
	files := []struct{ key, path string }{
		{"cert", c.Tunnel.TLS.Cert},
		{"key", c.Tunnel.TLS.Key},
		{"ca", c.Tunnel.TLS.CA},
	}
	var missing []string
	for _, f := range files {
		if f.path == "" {
			missing = append(missing, f.key)
		}
	}
	if len(missing) > 0 && len(missing) < len(files) {
		p.add("tunnel.tls", "set cert, key and ca together or none of them (missing %s)", strings.Join(missing, ", "))
	}
}

// validateGossip returns the keyring it decoded, primary first.
func (c *Config) validateGossip(p *problems) Keyring {
	g := c.Gossip
	// memberlist parses bind and advertise hosts with net.ParseIP: a name
	// there would silently bind every interface or fail late.
	if g.Bind == "" {
		p.add("gossip.bind", "required (IP:port)")
	} else if msg := checkIPAddr(g.Bind); msg != "" {
		p.add("gossip.bind", "%s", msg)
	}
	if g.Advertise != "" {
		if msg := checkIPAddr(g.Advertise); msg != "" {
			p.add("gossip.advertise", "%s", msg)
		} else if host, _, _ := net.SplitHostPort(g.Advertise); isUnspecified(host) {
			p.add("gossip.advertise", "must be an address other nodes can reach, not %q", g.Advertise)
		}
	}
	for i, addr := range g.Join {
		if msg := checkAddr(addr, true); msg != "" {
			p.add(fmt.Sprintf("gossip.join[%d]", i), "%s", msg)
		}
	}
	ring := validateKeyring(p, g)
	if len(g.Label) > 255 {
		p.add("gossip.label", "must be at most 255 bytes (got %d)", len(g.Label))
	}
	p.oneOf("gossip.profile", g.Profile, profiles)
	p.duration("gossip.rejoin_interval", g.RejoinInterval)
	return ring
}

// validateKeyring decodes gossip.key, then gossip.keys: without a key,
// keys[0] is the primary.
func validateKeyring(p *problems, g Gossip) Keyring {
	var ring Keyring
	add := func(key string, k Secret) {
		if b, err := decodeKey(k); err != nil {
			p.add(key, "%v", err)
		} else {
			ring = append(ring, b)
		}
	}
	if g.Key != "" {
		add("gossip.key", g.Key)
	}
	for i, k := range g.Keys {
		add(fmt.Sprintf("gossip.keys[%d]", i), k)
	}
	return ring
}

func (c *Config) validateRouting(p *problems) {
	r := c.Routing
	p.oneOf("routing.fallback", r.Fallback, fallbacks)
	c.validateRules(p)
	if h := r.OnRegionBlock; h != "" && !ValidHint(h) {
		p.add("routing.on_region_block", "must be one of %s (got %q)", strings.Join(Hints, ", "), h)
	}
	p.duration("routing.region_block_ttl", r.RegionBlockTTL)
	p.notNegative("routing.retry_body_bytes", r.RetryBodyBytes)
	p.notNegative("routing.retry_body_budget", r.RetryBodyBudget)
}

// validateRules: each loc in one rule at most, each rule a valid hint.
func (c *Config) validateRules(p *problems) {
	r := c.Routing
	routed := map[string]int{}
	for i, rule := range r.Rules {
		key := fmt.Sprintf("routing.rules[%d]", i)
		if len(rule.Locs) == 0 {
			p.add(key+".locs", "must list at least one ISO 3166 alpha-2 code")
		}
		for _, loc := range rule.Locs {
			if !isLoc(loc) {
				p.add(key+".locs", "must be ISO 3166 alpha-2 codes such as HK or US (got %q)", loc)
				continue
			}
			if first, dup := routed[loc]; dup && first != i {
				p.add(key+".locs", "%s is already routed by routing.rules[%d]", loc, first)
				continue
			}
			routed[loc] = i
		}
		switch {
		case rule.Hint == "":
			p.add(key+".hint", "required (one of %s)", strings.Join(Hints, ", "))
		case !ValidHint(rule.Hint):
			p.add(key+".hint", "must be one of %s (got %q)", strings.Join(Hints, ", "), rule.Hint)
		}
	}
}

// validateProviders returns the base URLs it parsed, by provider name.
func (c *Config) validateProviders(p *problems) map[string]*url.URL {
	bases := make(map[string]*url.URL, len(c.Providers))
	for _, name := range sortedProviderNames(c.Providers) { // stable error order
		pr := c.Providers[name]
		key := "providers." + name
		switch {
		case !providerName.MatchString(name):
			p.add(key, "name must match %s", providerName)
		case slices.Contains(reservedProviders, name):
			p.add(key, "name is reserved for the admin routes (%s)", strings.Join(reservedProviders, ", "))
		}
		if base, msg := parseBaseURL(pr.BaseURL); msg != "" {
			p.add(key+".base_url", "%s", msg)
		} else {
			bases[name] = base
		}
		p.oneOf(key+".style", pr.Style, styles)
		p.notNegative(key+".max_body_bytes", pr.MaxBodyBytes)
		if pr.APIKey != "" && pr.APIKeyFile != "" {
			p.add(key, "set api_key or api_key_file, not both")
		}
		if !printableToken(pr.APIKey.Reveal()) {
			p.add(key+".api_key", "must be printable ASCII without spaces")
		}
		c.validateBilling(p, key, pr)
	}
	return bases
}

// validateBilling: organization and project go out with the node's own key,
// so they mean something only where the mesh holds one.
func (c *Config) validateBilling(p *problems, key string, pr Provider) {
	for _, f := range []struct{ name, value string }{{"organization", pr.Organization}, {"project", pr.Project}} {
		switch {
		case f.value == "":
		case !printableToken(f.value):
			p.add(key+"."+f.name, "must be printable ASCII without spaces")
		case !pr.Managed() || (pr.APIKey == "" && pr.APIKeyFile == ""):
			p.add(key+"."+f.name, "is sent with this node's api_key; set it where api_key is set (the mesh does not hold this provider's key here)")
		}
	}
}

// validateAuth: a provider whose real key the mesh holds must not be open
// to anyone who reaches the ingress.
func (c *Config) validateAuth(p *problems) {
	c.validateAccessKeys(p)
	if c.Role == role.Ingress && len(c.Auth.AccessKeys) == 0 {
		for _, name := range sortedProviderNames(c.Providers) {
			if pr := c.Providers[name]; pr.Managed() && !pr.Disabled {
				p.add("providers."+name+".api_key", "the mesh holds this provider's key but auth.access_keys is empty: anyone reaching this ingress could spend it")
			}
		}
	}
}

func (c *Config) validateAdmin(p *problems) {
	if !printableToken(c.Admin.Token.Reveal()) {
		p.add("admin.token", "must be printable ASCII without spaces")
	}
	if c.Admin.Listen != "" {
		if msg := checkAddr(c.Admin.Listen, false); msg != "" {
			p.add("admin.listen", "%s", msg)
		}
	}
}

func (c *Config) validateUpstream(p *problems) {
	p.duration("upstream.dial_timeout", c.Upstream.DialTimeout)
	p.duration("upstream.header_timeout", c.Upstream.HeaderTimeout)
}

func (c *Config) validateLog(p *problems) {
	p.oneOf("log.level", c.Log.Level, logLevels)
	p.oneOf("log.format", c.Log.Format, logFormats)
}

// validateAccessKeys never quotes a key, nor says which two are equal
// beyond their positions.
func (c *Config) validateAccessKeys(p *problems) {
	first := map[Secret]int{}
	for i, k := range c.Auth.AccessKeys {
		key := fmt.Sprintf("auth.access_keys[%d]", i)
		if k.Key == "" || !printableToken(k.Key.Reveal()) {
			p.add(key, "must be non-empty printable ASCII without spaces")
		} else if j, dup := first[k.Key]; dup {
			p.add(key, "the same key as auth.access_keys[%d]; list each key once, with every provider it grants", j)
		} else {
			first[k.Key] = i
		}
		if k.Providers != nil && len(k.Providers) == 0 {
			p.add(key+".providers", "must name at least one provider; leave it out to grant every managed provider")
		}
		for j, name := range k.Providers {
			pkey := fmt.Sprintf("%s.providers[%d]", key, j)
			switch pr, ok := c.Providers[name]; {
			case !ok:
				p.add(pkey, "unknown provider %q (known: %s)", name, strings.Join(sortedProviderNames(c.Providers), ", "))
			case pr.Disabled:
				p.add(pkey, "provider %q is disabled", name)
			case !pr.Managed():
				p.add(pkey, "provider %q is not managed (clients send their own key there, so access keys are not checked); set its api_key or managed_key: true", name)
			}
		}
	}
}

func printableToken(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r > '~' }) < 0
}

func sortedProviderNames(m map[string]Provider) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// validateListeners catches two listeners on one address, which would
// otherwise fail at start-up with a bare "address already in use".
func (c *Config) validateListeners(p *problems) {
	addrs := []struct{ key, addr string }{
		{"http.listen", c.HTTP.Listen},
		{"gossip.bind", c.Gossip.Bind},
		{"admin.listen", c.Admin.Listen},
	}
	if c.Role == role.Egress {
		addrs = append(addrs, struct{ key, addr string }{"tunnel.listen", c.Tunnel.Listen})
	}
	for i, a := range addrs {
		_, port, err := net.SplitHostPort(a.addr)
		if err != nil || port == "0" {
			continue
		}
		for _, b := range addrs[:i] {
			if a.addr == b.addr {
				p.add(a.key, "%q is also %s", a.addr, b.key)
			}
		}
	}
}

// parseBaseURL returns the base URL a provider's requests are built on
// (scheme, host and path, nothing else), or what is wrong with raw. It never
// quotes the URL: user info or a query may hold a key.
func parseBaseURL(raw string) (*url.URL, string) {
	if raw == "" {
		return nil, "required (an absolute http or https URL)"
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, "is not a valid URL"
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, "must be an absolute http or https URL"
	case u.Opaque != "" || u.Host == "":
		return nil, "must have a host"
	case u.User != nil:
		return nil, "must not contain user info (user:password@); send credentials from the client"
	case u.RawQuery != "" || u.ForceQuery:
		return nil, "must not have a query"
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return nil, "must not have a fragment"
	}
	if port := u.Port(); port != "" {
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return nil, "port must be a number from 0 to 65535"
		}
	}
	base := &url.URL{Scheme: u.Scheme, Host: u.Host, Path: strings.TrimRight(u.Path, "/")}
	if u.RawPath != "" {
		base.RawPath = strings.TrimRight(u.RawPath, "/")
	}
	return base, ""
}

// checkAddr checks a host:port and returns what is wrong, or "".
func checkAddr(addr string, needHost bool) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("must be host:port (got %q)", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Sprintf("port must be a number from 0 to 65535 (got %q)", addr)
	}
	if needHost && host == "" {
		return fmt.Sprintf("must name a host (got %q)", addr)
	}
	return ""
}

func checkIPAddr(addr string) string {
	if msg := checkAddr(addr, true); msg != "" {
		return strings.Replace(msg, "host:port", "IP:port", 1)
	}
	host, _, _ := net.SplitHostPort(addr)
	if net.ParseIP(host) == nil {
		return fmt.Sprintf("host must be an IP address, not a name (got %q)", addr)
	}
	return ""
}

func isUnspecified(host string) bool {
	ip := net.ParseIP(host)
	return host == "" || ip != nil && ip.IsUnspecified()
}
