package membership

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"time"

	gometrics "github.com/hashicorp/go-metrics"
	"github.com/hashicorp/memberlist"
)

// Config configures a node's membership.
type Config struct {
	Name string // unique and stable node name
	// Bind is host:port with an IP host ("" = all addresses); port 0 picks a
	// free port. UDP and TCP share the port.
	Bind string
	// Advertise is the host:port peers dial; "" = the bind address. With a
	// Bind port of 0, the bound port is advertised whatever this says.
	Advertise string
	// Join lists seeds, host:port (or name/host:port). Seeds given by IP are
	// re-joined only when they are not alive members; seeds given by host
	// name are re-joined at every interval (a cheap state exchange).
	Join    []string
	Profile string // "lan" | "wan" | "local", see profile; "" = wan
	Key     []byte // optional AES key (16, 24 or 32 bytes): gossip encryption
	// Keys are further keys accepted for decryption (a keyring): rotate by
	// adding the new key here on every node, then making it Key, then
	// removing the old one.
	Keys  [][]byte
	Label string // optional memberlist label: nodes with different labels never merge
	// RejoinInterval is how often seeds that are not alive members are
	// joined again, ±25% jitter; 0 = 30s.
	RejoinInterval time.Duration
	Meta           Meta
	// Logger receives memberlist's log lines at their own level
	// ([DEBUG], [INFO], [WARN], [ERR]); nil discards them.
	Logger *slog.Logger
	// OnChange is called after each new snapshot, from this package's own
	// goroutine (never under memberlist's lock), one call at a time, and
	// once at start with the local node alone, so the caller needs no
	// start-up call of its own (one would race these). It must not call
	// Shutdown. May be nil.
	OnChange func(*Snapshot)
	// MetricLabels label memberlist's go-metrics emissions (probes,
	// suspicions, queue depth, packets): metrics.GossipLabels routes them
	// to the node's registry.
	MetricLabels []gometrics.Label
	// Tune makes last-moment changes to memberlist's config (tests).
	Tune func(*memberlist.Config)

	forget time.Duration // how long dead nodes are listed (left ones: at most forgetLeftAfter); 0 = forgetAfter (tests shorten it)
}

const (
	defaultRejoinInterval = 30 * time.Second
	forgetAfter           = 10 * time.Minute
	forgetLeftAfter       = time.Minute
	// deadNodeReclaimTime lets a node that crashed and came back on a new
	// address take its name back this long after peers declared it dead.
	deadNodeReclaimTime = 10 * time.Second
)

func (c *Config) memberlist(events memberlist.EventDelegate, delegate memberlist.Delegate, logger *slog.Logger) (*memberlist.Config, error) {
	var mc *memberlist.Config
	switch c.Profile {
	case "", "wan":
		// memberlist's WAN defaults take ~37 s to declare a crashed node
		// dead; these take 12-14 s and still tolerate 1.5 s of jitter.
		mc = memberlist.DefaultWANConfig()
		mc.ProbeInterval = 2 * time.Second
		mc.ProbeTimeout = 1500 * time.Millisecond
		mc.SuspicionMult = 4
	case "lan":
		mc = memberlist.DefaultLANConfig()
	case "local":
		mc = memberlist.DefaultLocalConfig()
	default:
		return nil, fmt.Errorf("membership: unknown profile %q (want lan, wan or local)", c.Profile)
	}
	if c.Name == "" {
		return nil, fmt.Errorf("membership: node name is required")
	}
	if c.RejoinInterval < 0 {
		return nil, fmt.Errorf("membership: negative rejoin interval %v", c.RejoinInterval)
	}
	if len(c.Label) > memberlist.LabelMaxSize {
		// Checked here: memberlist checks it after binding and leaks the sockets.
		return nil, fmt.Errorf("membership: label longer than %d bytes", memberlist.LabelMaxSize)
	}
	for _, k := range append([][]byte{c.Key}, c.Keys...) {
		switch len(k) {
		case 0, 16, 24, 32:
		default:
			return nil, fmt.Errorf("membership: gossip key is %d bytes, want 16, 24 or 32", len(k))
		}
	}
	if len(c.Key) == 0 && len(c.Keys) > 0 {
		return nil, fmt.Errorf("membership: a keyring needs a primary Key")
	}

	bindHost, bindPort, err := splitHostPort(c.Bind)
	if err != nil {
		return nil, fmt.Errorf("membership: bind address: %w", err)
	}
	if bindHost == "" {
		bindHost = "0.0.0.0"
	}
	if net.ParseIP(bindHost) == nil {
		return nil, fmt.Errorf("membership: bind address %q: host must be an IP address", c.Bind)
	}

	mc.Name = c.Name
	mc.BindAddr = bindHost
	mc.BindPort = bindPort
	mc.AdvertiseAddr = ""
	mc.AdvertisePort = bindPort // memberlist replaces it with the bound port when bindPort is 0
	if c.Advertise != "" {
		host, port, err := splitHostPort(c.Advertise)
		if err != nil {
			return nil, fmt.Errorf("membership: advertise address: %w", err)
		}
		ip, err := resolveIP(host)
		if err != nil {
			return nil, fmt.Errorf("membership: advertise address %q: %w", c.Advertise, err)
		}
		mc.AdvertiseAddr = ip.String()
		if port != 0 {
			mc.AdvertisePort = port
		}
	}

	if len(c.Key) > 0 {
		ring, err := memberlist.NewKeyring(c.Keys, slices.Clone(c.Key))
		if err != nil {
			return nil, fmt.Errorf("membership: keyring: %w", err)
		}
		mc.Keyring = ring
	}
	mc.Label = c.Label
	mc.DeadNodeReclaimTime = deadNodeReclaimTime
	mc.Events = events
	mc.Delegate = delegate
	mc.LogOutput = nil
	mc.Logger = log.New(logWriter{logger}, "", 0)
	mc.MetricLabels = c.MetricLabels
	if c.Tune != nil {
		c.Tune(mc)
	}
	return mc, nil
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("bad port in %q", addr)
	}
	return host, int(port), nil
}

// resolveIP returns host as an IP, looking it up if it is a name
// (memberlist wants an IP to advertise). IPv4 is preferred.
func resolveIP(host string) (net.IP, error) {
	if ip := net.ParseIP(host); ip != nil {
		return ip, nil
	}
	if host == "" {
		return nil, fmt.Errorf("empty host")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, err
	}
	for _, a := range addrs {
		if a.IP.To4() != nil {
			return a.IP, nil
		}
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("no address for %q", host)
	}
	return addrs[0].IP, nil
}
