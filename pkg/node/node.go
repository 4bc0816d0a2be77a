package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"

	"github.com/llmesh/llmesh/pkg/config"
	"github.com/llmesh/llmesh/pkg/membership"
	"github.com/llmesh/llmesh/pkg/metrics"
	"github.com/llmesh/llmesh/pkg/provider"
	"github.com/llmesh/llmesh/pkg/proxy"
	"github.com/llmesh/llmesh/pkg/routing"
	"github.com/llmesh/llmesh/pkg/tunnel"
	"github.com/llmesh/llmesh/pkg/version"
)

// Node is one running llmesh node.
type Node struct {
	cfg     *config.Config
	log     *slog.Logger
	metrics *metrics.Metrics
	members *membership.Membership
	meta    membership.Meta
	started time.Time

	httpSrv *http.Server
	httpLn  net.Listener

	// ingress
	pool *tunnel.Pool

	// egress
	tunnelSrv *tunnel.Server
	grpcSrv   *grpc.Server
	tunnelLn  net.Listener

	draining atomic.Bool
	serveErr chan error
	stopOnce sync.Once
}

// Options are test and embedding hooks; the zero value is right for production.
type Options struct {
	// TuneGossip makes last-moment changes to memberlist's config.
	TuneGossip func(*membership.Config)
}

// Start builds and starts a node. It returns once every listener is bound
// and the node has tried to join the mesh.
func Start(cfg *config.Config, log *slog.Logger, opts Options) (_ *Node, err error) {
	n := &Node{
		cfg:      cfg,
		log:      log,
		metrics:  metrics.New(string(cfg.Role), version.Version),
		started:  time.Now(),
		serveErr: make(chan error, 2),
	}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	providers, err := buildProviders(cfg)
	if err != nil {
		return nil, err
	}
	transport := proxy.NewTransport(cfg.Upstream.DialTimeout, cfg.Upstream.HeaderTimeout)

	n.meta = membership.Meta{
		Role: string(cfg.Role), Loc: cfg.Node.Loc, Colo: cfg.Node.Colo, Hint: cfg.Node.Hint, Version: version.Version,
	}
	var routes http.Handler
	switch cfg.Role {
	case config.RoleEgress:
		if err := n.startTunnelServer(providers, transport); err != nil {
			return nil, err
		}
		routes = notFoundOnEgress()
	default:
		dial, err := dialConfig(cfg, log)
		if err != nil {
			return nil, err
		}
		n.pool = tunnel.NewPool(dial)
		routes = proxy.New(proxy.Config{
			Providers: providers,
			Router:    &router{node: n, policy: policyFrom(cfg)},
			Transport: transport,
			Metrics:   n.metrics,
			Logger:    log,
		})
	}

	n.httpLn, err = net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return nil, fmt.Errorf("http.listen %s: %w", cfg.HTTP.Listen, err)
	}
	if err := n.startMembership(opts); err != nil {
		return nil, err
	}
	n.httpSrv = &http.Server{
		Handler:           cors(n.mux(routes)),
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
		IdleTimeout:       cfg.HTTP.IdleTimeout,
		MaxHeaderBytes:    cfg.HTTP.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		// No WriteTimeout: it would cut long generations.
	}
	n.httpSrv.Protocols = new(http.Protocols)
	n.httpSrv.Protocols.SetHTTP1(true)
	n.httpSrv.Protocols.SetUnencryptedHTTP2(true)
	go func() {
		if err := n.httpSrv.Serve(n.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.serveErr <- fmt.Errorf("http server: %w", err)
		}
	}()
	log.Info("node started", "name", cfg.Node.Name, "role", cfg.Role, "loc", cfg.Node.Loc, "hint", cfg.Node.Hint,
		"http", n.HTTPAddr(), "tunnel", n.TunnelAddr(), "gossip", n.members.LocalAddr(), "version", version.Version)
	return n, nil
}

func (n *Node) startTunnelServer(providers *provider.Registry, transport http.RoundTripper) error {
	cfg := n.cfg
	var creds credentials.TransportCredentials
	if cfg.Tunnel.TLS.Enabled() {
		tc, err := tlsConfig(cfg.Tunnel.TLS)
		if err != nil {
			return err
		}
		tc.ClientAuth = tls.RequireAndVerifyClientCert
		tc.ClientCAs = tc.RootCAs
		creds = credentials.NewTLS(tc)
	}
	handler := proxy.New(proxy.Config{
		Providers:    providers,
		Transport:    transport,
		Metrics:      n.metrics,
		Logger:       n.log,
		MetricsRoute: "relay",
	})
	n.tunnelSrv = tunnel.NewServer(tunnel.ServerConfig{
		Handler:    handler,
		Token:      cfg.Tunnel.Token.Reveal(),
		MaxStreams: cfg.Tunnel.MaxStreams,
		TLS:        creds,
		Logger:     n.log,
		OnStream:   func(c codes.Code) { n.metrics.TunnelStream(c.String()) },
	})
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
	key, err := n.cfg.Gossip.KeyBytes()
	if err != nil {
		return fmt.Errorf("gossip.key: %w", err)
	}
	mc := membership.Config{
		Name:           n.cfg.Node.Name,
		Bind:           n.cfg.Gossip.Bind,
		Advertise:      n.cfg.Gossip.Advertise,
		Join:           n.cfg.Gossip.Join,
		Profile:        n.cfg.Gossip.Profile,
		Key:            key,
		Label:          n.cfg.Gossip.Label,
		RejoinInterval: n.cfg.Gossip.RejoinInterval,
		Meta:           n.meta,
		Logger:         n.log,
		OnChange:       n.onMembers,
	}
	if opts.TuneGossip != nil {
		opts.TuneGossip(&mc)
	}
	m, err := membership.Start(mc)
	if err != nil {
		return fmt.Errorf("gossip: %w", err)
	}
	n.members = m
	n.onMembers(m.Snapshot())
	return nil
}

// onMembers runs on every membership change, outside memberlist's locks.
func (n *Node) onMembers(s *membership.Snapshot) {
	counts := map[[2]string]int{}
	var eps []tunnel.Endpoint
	for _, m := range s.Members {
		counts[[2]string{m.Role, string(m.State)}]++
		// Keep connections to draining egress nodes: their live streams finish.
		if m.State == membership.StateAlive && m.Role == string(config.RoleEgress) && m.Tunnel != "" {
			eps = append(eps, tunnel.Endpoint{Name: m.Name, Addr: m.Tunnel})
		}
	}
	n.metrics.SetMembers(counts)
	if n.pool != nil {
		n.pool.Sync(eps)
	}
}

// HTTPAddr is the bound HTTP address.
func (n *Node) HTTPAddr() string { return n.httpLn.Addr().String() }

// TunnelAddr is the advertised tunnel address ("" on an ingress).
func (n *Node) TunnelAddr() string { return n.meta.Tunnel }

// GossipAddr is the bound gossip address.
func (n *Node) GossipAddr() string { return n.members.LocalAddr() }

// Name is the node's name in the mesh.
func (n *Node) Name() string { return n.cfg.Node.Name }

// Members is the node's current view of the mesh.
func (n *Node) Members() *membership.Snapshot { return n.members.Snapshot() }

// Err reports a listener that failed after Start.
func (n *Node) Err() <-chan error { return n.serveErr }

// Shutdown drains the node: it tells the mesh it is draining, stops taking
// new requests and streams, leaves the gossip cluster, and lets live
// exchanges finish until ctx ends, when it closes what is left.
func (n *Node) Shutdown(ctx context.Context) error {
	n.draining.Store(true)
	n.log.Info("draining", "name", n.cfg.Node.Name)
	if n.members != nil {
		meta := n.meta
		meta.Draining = true
		if err := n.members.SetMeta(meta); err != nil {
			n.log.Warn("cannot gossip draining state", "err", err)
		}
	}
	if n.tunnelSrv != nil {
		n.tunnelSrv.SetDraining(true)
	}
	if n.members != nil {
		if err := n.members.Leave(5 * time.Second); err != nil {
			n.log.Warn("gossip leave", "err", err)
		}
	}
	var wg sync.WaitGroup
	var httpErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		httpErr = n.httpSrv.Shutdown(ctx)
	}()
	if n.grpcSrv != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := make(chan struct{})
			go func() { n.grpcSrv.GracefulStop(); close(done) }()
			select {
			case <-done:
			case <-ctx.Done():
				n.grpcSrv.Stop()
			}
		}()
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
	})
	return nil
}

// Run starts a node and serves until ctx ends, then drains for up to
// drain_timeout.
func Run(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	n, err := Start(cfg, log, Options{})
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case err := <-n.Err():
		n.Close()
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout)
	defer cancel()
	err = n.Shutdown(sctx)
	log.Info("stopped", "name", cfg.Node.Name)
	return err
}

func buildProviders(cfg *config.Config) (*provider.Registry, error) {
	var ps []*provider.Provider
	for name, pc := range cfg.Providers {
		limit := pc.MaxBodyBytes
		if limit == 0 {
			limit = cfg.HTTP.MaxBodyBytes
		}
		p, err := provider.New(name, pc.BaseURL, provider.Style(pc.Style), limit)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p)
	}
	return provider.NewRegistry(ps...), nil
}

func policyFrom(cfg *config.Config) routing.Policy {
	p := routing.Policy{
		Loc:             cfg.Node.Loc,
		Fallback:        routing.Fallback(cfg.Routing.Fallback),
		AllowClientHint: cfg.Routing.AllowClientHint,
	}
	for _, r := range cfg.Routing.Rules {
		p.Rules = append(p.Rules, routing.Rule{Locs: r.Locs, Hint: r.Hint})
	}
	return p
}

func dialConfig(cfg *config.Config, log *slog.Logger) (tunnel.DialConfig, error) {
	dc := tunnel.DialConfig{Token: cfg.Tunnel.Token.Reveal(), Logger: log}
	if cfg.Tunnel.TLS.Enabled() {
		tc, err := tlsConfig(cfg.Tunnel.TLS)
		if err != nil {
			return dc, err
		}
		dc.TLS = tc
	}
	return dc, nil
}

// tlsConfig loads the node's certificate and the mesh CA. TLS 1.3 only.
func tlsConfig(t config.TLS) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
	if err != nil {
		return nil, fmt.Errorf("tunnel.tls: %w", err)
	}
	pem, err := os.ReadFile(t.CA)
	if err != nil {
		return nil, fmt.Errorf("tunnel.tls.ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tunnel.tls.ca: %s holds no PEM certificate", t.CA)
	}
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, RootCAs: pool}, nil
}
