package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/llmesh/llmesh/pkg/config"
	"github.com/llmesh/llmesh/pkg/membership"
	"github.com/llmesh/llmesh/pkg/meshtls"
	"github.com/llmesh/llmesh/pkg/metrics"
	"github.com/llmesh/llmesh/pkg/provider"
	"github.com/llmesh/llmesh/pkg/proxy"
	"github.com/llmesh/llmesh/pkg/role"
	"github.com/llmesh/llmesh/pkg/routing"
	"github.com/llmesh/llmesh/pkg/tracing"
	"github.com/llmesh/llmesh/pkg/tunnel"
	"github.com/llmesh/llmesh/pkg/version"
)

// Node is one running llmesh node.
type Node struct {
	// cfg is the config the node started with: the keys that need a
	// restart are read from it. live is the config in force, which a
	// reload replaces (see Apply).
	cfg     *config.Runtime
	live    atomic.Pointer[config.Runtime]
	level   *slog.LevelVar // nil: log.level does not reload
	log     *slog.Logger
	metrics *metrics.Metrics
	members *membership.Membership
	// applied is the last snapshot onMembers gave the tunnel pool: what
	// Members() and /members show, so that a member listed alive is one
	// requests can be routed to.
	applied atomic.Pointer[membership.Snapshot]
	meta    membership.Meta
	started time.Time

	httpSrv  *http.Server
	httpLn   net.Listener
	adminSrv *http.Server // nil unless admin.listen is set
	adminLn  net.Listener

	tls     *meshtls.Store   // nil without tunnel.tls
	tracing *tracing.Tracing // nil unless the OTEL_* environment asks for traces
	ctx     context.Context
	cancel  context.CancelFunc

	// handler is the proxy: the ingress's, or the egress's behind its
	// tunnel server. A reload reconfigures it.
	handler *proxy.Handler
	// transport calls providers; a reload that changes upstream's
	// timeouts replaces it. Guarded by reloadMu after Start.
	transport *http.Transport
	reloadMu  sync.Mutex // one reload at a time

	// ingress
	pool *tunnel.Pool
	// router is the ingress's router under the live config.
	router atomic.Pointer[router]
	// blocked: the providers refusing this region, kept across reloads (see router).
	blocked sync.Map
	// eager names the hints whose egress nodes the ingress connects to as
	// soon as gossip shows them; the others connect on first use.
	eager func(hint string) bool

	// egress
	tunnelSrv *tunnel.Server
	grpcSrv   *grpc.Server
	tunnelLn  net.Listener

	draining atomic.Bool
	proxied  atomic.Int64 // ingress: requests in flight, for /members
	serveErr chan error
	stopOnce sync.Once
}

// Options are test and embedding hooks; the zero value is right for production.
type Options struct {
	// TuneGossip makes last-moment changes to memberlist's config.
	TuneGossip func(*membership.Config)
	// Level, when set, is the level of the node's logger: a reload sets
	// it from log.level.
	Level *slog.LevelVar
}

// Start builds and starts a node from a checked config (config.Load, or
// Config.Runtime after editing one). It returns once every listener is
// bound and the node has tried to join the mesh.
func Start(cfg *config.Runtime, log *slog.Logger, opts Options) (_ *Node, err error) {
	n := &Node{
		cfg:      cfg,
		level:    opts.Level,
		log:      log,
		metrics:  metrics.New(string(cfg.Role), version.Version),
		started:  time.Now(),
		serveErr: make(chan error, 3),
	}
	n.live.Store(cfg)
	n.ctx, n.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	providers := buildProviders(cfg)
	n.transport = proxy.NewTransport(cfg.Upstream.DialTimeout, cfg.Upstream.HeaderTimeout)
	if cfg.Tunnel.TLS.Enabled() {
		if n.tls, err = LoadTLS(&cfg.Config, log); err != nil {
			return nil, err
		}
		go n.tls.Watch(n.ctx, 10*time.Second)
		n.metrics.CertificateExpiry(n.certExpiries)
	}
	if n.tracing, err = tracing.Setup(n.ctx, os.Getenv, tracing.Service{
		Name: "llmesh-" + string(cfg.Role), Node: cfg.Node.Name, Version: version.Version,
	}); err != nil {
		return nil, err
	}
	if n.tracing != nil {
		log.Info("tracing on", "exporter", n.tracing.Exporter)
	}

	n.meta = membership.Meta{
		Role: cfg.Role, Loc: cfg.Node.Loc, Colo: cfg.Node.Colo, Hint: cfg.Node.Hint, Version: version.Version,
		CertExpiry: n.certExpiry(),
		Start:      strconv.FormatUint(rand.Uint64(), 36),
	}
	var routes http.Handler
	switch cfg.Role {
	case role.Egress:
		if err := n.startTunnelServer(providers); err != nil {
			return nil, err
		}
		routes = notFoundOnEgress()
	default:
		routes = n.countProxied(n.startIngress(providers))
	}

	n.httpLn, err = net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return nil, fmt.Errorf("http.listen %s: %w", cfg.HTTP.Listen, err)
	}
	if err := n.startMembership(opts); err != nil {
		return nil, err
	}
	if n.tls != nil {
		go n.gossipCertExpiry(n.ctx)
	}
	main, admin := n.handlers(routes)
	n.httpSrv = n.serveHTTP("http", n.httpLn, main)
	if cfg.Admin.Listen != "" {
		if n.adminLn, err = net.Listen("tcp", cfg.Admin.Listen); err != nil {
			return nil, fmt.Errorf("admin.listen %s: %w", cfg.Admin.Listen, err)
		}
		n.adminSrv = n.serveHTTP("admin", n.adminLn, admin)
	}
	if cfg.Reload.Watch && cfg.File != "" {
		go n.watchConfig(n.ctx, cfg.Reload.Interval, n.fingerprint())
	}
	log.Info("node started", "name", cfg.Node.Name, "role", cfg.Role, "loc", cfg.Node.Loc, "hint", cfg.Node.Hint,
		"http", n.HTTPAddr(), "tunnel", n.TunnelAddr(), "gossip", n.members.LocalAddr(), "version", version.Version)
	return n, nil
}

// serverHeaderBytes is the http.Server's own header limit: twice the
// configured one, so heads just over http.max_header_bytes reach the proxy,
// which answers 431 in the provider's JSON shape; only heads beyond this get
// Go's plain-text 431, read no further.
func serverHeaderBytes(limit int) int {
	if limit <= 0 {
		return 0 // Go's default, 1 MiB
	}
	return 2 * limit
}

// serveHTTP serves h on ln. No WriteTimeout: it would cut long generations.
func (n *Node) serveHTTP(name string, ln net.Listener, h http.Handler) *http.Server {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: n.cfg.HTTP.ReadHeaderTimeout,
		IdleTimeout:       n.cfg.HTTP.IdleTimeout,
		MaxHeaderBytes:    serverHeaderBytes(n.cfg.HTTP.MaxHeaderBytes),
		// "OPTIONS *" reaches the proxy, which refuses it (400) as documented,
		// instead of Go's built-in 200.
		DisableGeneralOptionsHandler: true,
		ErrorLog:                     slog.NewLogLogger(n.log.Handler(), slog.LevelDebug),
	}
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	// One connection may not open more streams than this at once: beyond
	// it the client waits (or, ignoring the setting, has streams refused).
	srv.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: n.cfg.HTTP.MaxStreamsPerConn}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.serveErr <- fmt.Errorf("%s server: %w", name, err)
		}
	}()
	return srv
}

// startIngress builds the ingress's proxy: its router over the tunnel pool,
// the access keys and the limits.
func (n *Node) startIngress(providers *provider.Registry) http.Handler {
	n.pool = tunnel.NewPool(n.dialConfig())
	n.metrics.GaugeFunc("llmesh_tunnel_streams_in_flight", "Tunnel streams open: to egress nodes (ingress), or served (egress).",
		func() float64 { return float64(n.pool.InFlight()) })
	// Connections follow the live rules. A reload changes which hints are
	// eager from the next membership change on; until then a newly eager
	// pool connects on its first request.
	n.eager = func(hint string) bool { return n.router.Load().eager(hint) }
	n.handler = proxy.New(n.ingressProxy(n.cfg, providers))
	return n.handler
}

// ingressProxy is the ingress's proxy config under cfg, with a new router.
func (n *Node) ingressProxy(cfg *config.Runtime, providers *provider.Registry) proxy.Config {
	accessKeys := make([]proxy.AccessKey, len(cfg.Auth.AccessKeys))
	for i, k := range cfg.Auth.AccessKeys {
		accessKeys[i] = proxy.AccessKey{Key: k.Key.Reveal(), Providers: k.Providers}
	}
	rt := newRouter(n, cfg)
	n.router.Store(rt)
	if rt.plaintext && rt.routes() {
		n.log.Warn("this ingress routes requests to egress nodes but has neither tunnel.tls nor tunnel.insecure: true; it will refuse to tunnel them in plaintext")
	}
	return proxy.Config{
		Providers:      providers,
		Router:         rt,
		Transport:      n.transport,
		Metrics:        n.metrics,
		Logger:         n.log,
		Tracer:         n.tracing.TracerOf(),
		AccessKeys:     accessKeys,
		MaxInFlight:    cfg.HTTP.MaxInFlight,
		MaxHeaderBytes: cfg.HTTP.MaxHeaderBytes,
		RetryBodyBytes: cfg.Routing.RetryBodyBytes,
		RegionReroute:  cfg.Routing.OnRegionBlock != "",
		SSEKeepalive:   cfg.HTTP.SSEKeepalive,

		MaxInFlightPerClient: cfg.HTTP.MaxInFlightPerClient,
		BodyIdleTimeout:      cfg.HTTP.BodyIdleTimeout,
		MinBodyRate:          cfg.HTTP.MinBodyRate,
		RetryBodyBudget:      cfg.Routing.RetryBodyBudget,
	}
}

// relayProxy is the egress's proxy config under cfg.
func (n *Node) relayProxy(cfg *config.Runtime, providers *provider.Registry) proxy.Config {
	return proxy.Config{
		Providers:    providers,
		Transport:    n.transport,
		Metrics:      n.metrics,
		Logger:       n.log,
		Tracer:       n.tracing.TracerOf(),
		MetricsRoute: proxy.RouteRelay,
		Relay:        true,
		// The ingress checked the client's head against its own limit; this
		// one bounds what a tunnel head may carry to the provider.
		MaxHeaderBytes: cfg.HTTP.MaxHeaderBytes,
		// A body that stalls in the tunnel frees its stream (and its slot
		// of tunnel.max_streams) as one from a client would.
		BodyIdleTimeout: cfg.HTTP.BodyIdleTimeout,
		MinBodyRate:     cfg.HTTP.MinBodyRate,
	}
}

func (n *Node) startTunnelServer(providers *provider.Registry) error {
	cfg := n.cfg
	var creds credentials.TransportCredentials
	if n.tls != nil {
		creds = credentials.NewTLS(n.tls.ServerConfig(role.Ingress))
	}
	n.handler = proxy.New(n.relayProxy(cfg, providers))
	n.tunnelSrv = tunnel.NewServer(tunnel.ServerConfig{
		Handler:    n.handler,
		Token:      cfg.Tunnel.Token.Reveal(),
		MaxStreams: cfg.Tunnel.MaxStreams,
		TLS:        creds,
		Keepalive:  tunnelKeepalive(cfg.Tunnel),
		Logger:     n.log,
		OnStream:   n.metrics.TunnelStream,
		Trace:      n.tracing != nil,
		// Silent connections are closed after the timeout, and past the
		// cap at once, instead of each held for grpc-go's 120 s.
		HandshakeTimeout: cfg.Tunnel.HandshakeTimeout,
		MaxHandshakes:    cfg.Tunnel.MaxHandshakes,
	})
	n.metrics.GaugeFunc("llmesh_tunnel_streams_in_flight", "Tunnel streams open: to egress nodes (ingress), or served (egress).",
		func() float64 { return float64(n.tunnelSrv.InFlight()) })
	n.grpcSrv = n.tunnelSrv.GRPCServer()
	ln, err := net.Listen("tcp", cfg.Tunnel.Listen)
	if err != nil {
		return fmt.Errorf("tunnel.listen %s: %w", cfg.Tunnel.Listen, err)
	}
	n.tunnelLn = ln
	n.meta.Tunnel = advertised(cfg.Tunnel.Advertise, cfg.Tunnel.Listen, ln.Addr())
	go func() {
		if err := n.grpcSrv.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			n.serveErr <- fmt.Errorf("tunnel server: %w", err)
		}
	}()
	return nil
}

// advertised is the address others dial: the configured advertise address,
// else the listen address with the port the kernel chose for port 0.
func advertised(advertise, listen string, bound net.Addr) string {
	if advertise != "" && advertise != listen {
		return advertise
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return bound.String()
	}
	_, port, _ := net.SplitHostPort(bound.String())
	return net.JoinHostPort(host, port)
}

func (n *Node) startMembership(opts Options) error {
	var key []byte
	ring := n.cfg.Keyring
	if len(ring) > 0 {
		key, ring = ring[0], ring[1:]
	}
	mc := membership.Config{
		Name:           n.cfg.Node.Name,
		Bind:           n.cfg.Gossip.Bind,
		Advertise:      n.cfg.Gossip.Advertise,
		Join:           n.cfg.Gossip.Join,
		Profile:        n.cfg.Gossip.Profile,
		Key:            key,
		Keys:           ring,
		Label:          n.cfg.Gossip.Label,
		RejoinInterval: n.cfg.Gossip.RejoinInterval,
		Meta:           n.meta,
		Logger:         n.log,
		OnChange:       n.onMembers,
		MetricLabels:   n.metrics.GossipLabels(),
	}
	if opts.TuneGossip != nil {
		opts.TuneGossip(&mc)
	}
	m, err := membership.Start(mc)
	if err != nil {
		return fmt.Errorf("gossip: %w", err)
	}
	// membership makes the first OnChange call itself, from the goroutine
	// that makes every later one: a call from here would race those.
	n.members = m
	return nil
}

// onMembers runs on every membership change, outside memberlist's locks.
func (n *Node) onMembers(s *membership.Snapshot) {
	seen := make([]metrics.Member, 0, len(s.Members))
	var eps []tunnel.Endpoint
	for _, m := range s.Members {
		state := string(m.State)
		if m.State == membership.StateAlive && m.Draining {
			state = "draining"
		}
		seen = append(seen, metrics.Member{Name: m.Name, Role: string(m.Role), Hint: m.Hint, State: state})
		// Keep connections to draining egress nodes: their live streams finish.
		if m.State == membership.StateAlive && m.Role == role.Egress && m.Tunnel != "" {
			eps = append(eps, tunnel.Endpoint{Name: m.Name, Addr: m.Tunnel, Hint: m.Hint, Start: m.Start, Draining: m.Draining,
				Lazy: n.eager != nil && !n.eager(m.Hint)})
		}
	}
	if n.pool != nil {
		n.pool.Sync(eps)
	}
	n.applied.Store(s)
	n.metrics.SetMembers(seen)
}

// HTTPAddr is the bound HTTP address.
func (n *Node) HTTPAddr() string { return n.httpLn.Addr().String() }

// TunnelAddr is the advertised tunnel address ("" on an ingress).
func (n *Node) TunnelAddr() string { return n.meta.Tunnel }

// GossipAddr is the bound gossip address.
func (n *Node) GossipAddr() string { return n.members.LocalAddr() }

// Name is the node's name in the mesh.
func (n *Node) Name() string { return n.cfg.Node.Name }

// Config is the config in force: the start's, as the last reload changed
// it (see Apply). It is shared: change a copy.
func (n *Node) Config() *config.Runtime { return n.live.Load() }

// Members is the node's current view of the mesh: the last snapshot its
// tunnel pool applied, so an egress it lists alive is one a request can be
// routed to (memberlist's newest snapshot can be a moment ahead of it).
func (n *Node) Members() *membership.Snapshot {
	if s := n.applied.Load(); s != nil {
		return s
	}
	return n.members.Snapshot()
}

// Err reports a listener that failed after Start.
func (n *Node) Err() <-chan error { return n.serveErr }

// leaveTimeout bounds the gossip of a departure (draining, then leave),
// within the drain deadline.
const leaveTimeout = 5 * time.Second

// leaveLinger is how long a leaving node keeps gossiping after Leave.
const leaveLinger = time.Second

// Shutdown drains the node: it stops taking new requests and streams at
// once, tells the mesh it is draining and leaves the gossip cluster, and
// lets live exchanges finish until ctx ends, when it closes what is left.
func (n *Node) Shutdown(ctx context.Context) error {
	n.draining.Store(true)
	n.log.Info("draining", "name", n.cfg.Node.Name)
	if n.tunnelSrv != nil {
		n.tunnelSrv.SetDraining(true)
	}
	var wg sync.WaitGroup
	var httpErr error
	wg.Go(func() { httpErr = n.httpSrv.Shutdown(ctx) })
	if n.adminSrv != nil {
		wg.Go(func() { n.adminSrv.Shutdown(ctx) })
	}
	if n.grpcSrv != nil {
		wg.Go(func() {
			done := make(chan struct{})
			go func() { n.grpcSrv.GracefulStop(); close(done) }()
			select {
			case <-done:
			case <-ctx.Done():
				n.grpcSrv.Stop()
			}
		})
	}
	// Gossip while the listeners drain: ingress nodes stop picking this
	// egress before its tunnel refuses them.
	if n.members != nil {
		wg.Go(func() {
			// Within the drain deadline: when a whole pool stops at once,
			// no peer acknowledges, and each wait runs to its timeout.
			budget := leaveTimeout
			if deadline, ok := ctx.Deadline(); ok {
				budget = min(budget, time.Until(deadline))
			}
			leaveBy := time.Now().Add(budget)
			draining := func(m *membership.Meta) { m.Draining = true }
			if err := n.members.UpdateMeta(draining, max(budget/4, time.Millisecond)); err != nil {
				n.log.Warn("cannot gossip draining state", "err", err)
			}
			if err := n.members.Leave(max(time.Until(leaveBy), time.Millisecond)); err != nil {
				n.log.Warn("gossip leave", "err", err)
			}
			// Leave returns once one peer has the news. Keep answering
			// gossip a moment longer so it spreads from there, rather than
			// going silent and being probed into "dead" first.
			linger := time.NewTimer(leaveLinger)
			defer linger.Stop()
			select {
			case <-linger.C:
			case <-ctx.Done():
			}
		})
	}
	wg.Wait()
	n.Close()
	if httpErr != nil && !errors.Is(httpErr, context.DeadlineExceeded) {
		return httpErr
	}
	return nil
}

// Close stops everything at once, cutting live exchanges.
func (n *Node) Close() error {
	n.stopOnce.Do(func() {
		n.cancel()
		if n.adminSrv != nil {
			n.adminSrv.Close()
		} else if n.adminLn != nil {
			n.adminLn.Close()
		}
		if n.httpSrv != nil {
			n.httpSrv.Close()
		} else if n.httpLn != nil {
			n.httpLn.Close()
		}
		if n.grpcSrv != nil {
			n.grpcSrv.Stop()
		} else if n.tunnelLn != nil {
			n.tunnelLn.Close()
		}
		if n.members != nil {
			n.members.Shutdown()
		}
		if n.pool != nil {
			n.pool.Close()
		}
		n.metrics.Close()
		// Spans still buffered go out now, or are lost after a while.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := n.tracing.Shutdown(ctx); err != nil {
			n.log.Warn("tracing: flushing spans", "err", err)
		}
	})
	return nil
}

// certExpiries is when the mesh TLS certificates in use expire, for metrics.
func (n *Node) certExpiries() []metrics.Expiry {
	cert, ca := n.tls.Expiry()
	return []metrics.Expiry{{Cert: "node", NotAfter: cert}, {Cert: "ca", NotAfter: ca}}
}

// Run starts a node and serves until ctx ends, then drains for up to
// drain_timeout. Each value on reload (the command's SIGHUP) re-reads the
// config file and the tunnel certificates (see Reload).
func Run(ctx context.Context, cfg *config.Runtime, log *slog.Logger, opts Options, reload <-chan struct{}) error {
	n, err := Start(cfg, log, opts)
	if err != nil {
		return err
	}
	for waiting := true; waiting; {
		select {
		case <-ctx.Done():
			waiting = false
		case <-reload:
			n.Reload() // logs and counts its outcome
		case err := <-n.Err():
			n.Close()
			return err
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), n.live.Load().DrainTimeout)
	defer cancel()
	err = n.Shutdown(sctx)
	log.Info("stopped", "name", cfg.Node.Name)
	return err
}

// buildProviders makes the registry of the providers this node serves
// (disabled ones are not among cfg.Endpoints) from their checked values.
func buildProviders(cfg *config.Runtime) *provider.Registry {
	var ps []*provider.Provider
	for name, e := range cfg.Endpoints {
		ps = append(ps, &provider.Provider{
			Name:         name,
			Base:         e.Base,
			Style:        provider.Style(e.Style),
			MaxBodyBytes: e.MaxBodyBytes, // Validate filled it from http.max_body_bytes where unset
			APIKey:       e.APIKey.Reveal(),
			Managed:      e.Managed(),
			Organization: e.Organization,
			Project:      e.Project,
		})
	}
	return provider.NewRegistry(ps...)
}

func policyFrom(cfg *config.Runtime) routing.Policy {
	p := routing.Policy{
		Loc:             cfg.Node.Loc,
		Fallback:        routing.Fallback(cfg.Routing.Fallback),
		AllowClientHint: cfg.Routing.AllowClientHint,
	}
	for _, r := range cfg.Routing.Rules {
		// The policy's own copy: the config's slices may be shared, and
		// its readers run on every request and membership change.
		p.Rules = append(p.Rules, routing.Rule{Locs: slices.Clone(r.Locs), Hint: r.Hint})
	}
	return p
}

func (n *Node) dialConfig() tunnel.DialConfig {
	dc := tunnel.DialConfig{Token: n.cfg.Tunnel.Token.Reveal(), Keepalive: tunnelKeepalive(n.cfg.Tunnel), Logger: n.log,
		AcceptTimeout: n.cfg.Tunnel.AcceptTimeout, OnEject: n.metrics.Ejection}
	if n.tls != nil {
		dc.TLSFor = func(ep tunnel.Endpoint) *tls.Config {
			return n.tls.ClientConfig(meshtls.Identity{Role: role.Egress, Hint: ep.Hint, Name: ep.Name})
		}
	}
	return dc
}

// LoadTLS loads the node's certificate, key and CA (tunnel.tls of a
// validated cfg) and checks that the certificate names this node: a
// certificate is the node's identity in the mesh. A nil log discards.
func LoadTLS(cfg *config.Config, log *slog.Logger) (*meshtls.Store, error) {
	t := cfg.Tunnel.TLS
	store, err := meshtls.Load(meshtls.Files{Cert: t.Cert, Key: t.Key, CA: t.CA}, log)
	if err != nil {
		return nil, fmt.Errorf("tunnel.tls: %w", err)
	}
	want := meshtls.Identity{Role: cfg.Role, Name: cfg.Node.Name, Hint: cfg.Node.Hint}
	check := func(id meshtls.Identity) error {
		if id.Role != want.Role || id.Name != want.Name || (cfg.Role == role.Egress && id.Hint != want.Hint) {
			return fmt.Errorf("the certificate names %s but this node is %s", id, want)
		}
		return nil
	}
	if err := check(store.Identity()); err != nil {
		return nil, fmt.Errorf("tunnel.tls.cert: %w", err)
	}
	store.Require(check)
	return store, nil
}

func tunnelKeepalive(t config.Tunnel) tunnel.Keepalive {
	return tunnel.Keepalive{Interval: t.Keepalive, Timeout: t.KeepaliveTimeout}
}
