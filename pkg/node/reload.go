package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/llmesh/llmesh/pkg/config"
	"github.com/llmesh/llmesh/pkg/proxy"
	"github.com/llmesh/llmesh/pkg/role"
)

// Reload re-reads the tunnel certificates and the config file (SIGHUP),
// logging the outcome and counting it (llmesh_config_reloads_total: a
// failure when either part failed). Each part that fails keeps what the
// node runs with and is returned; the rest is applied (see Apply).
// Requests and streams in flight finish as they began.
func (n *Node) Reload() error {
	var errs []error
	if n.tls != nil {
		if err := n.tls.Reload(); err != nil {
			n.log.Error("reload: keeping the previous certificates", "err", err)
			errs = append(errs, fmt.Errorf("tunnel.tls: %w", err))
		} else {
			n.log.Info("reloaded tunnel certificates")
		}
	}
	if err := n.reloadConfig(); err != nil {
		errs = append(errs, err)
	}
	err := errors.Join(errs...)
	n.metrics.ConfigReload(err == nil)
	return err
}

// reloadConfig reads the config file again and applies it. An invalid file
// changes nothing: its problems are logged, one per line.
func (n *Node) reloadConfig() error {
	if n.cfg.File == "" {
		n.log.Info("config reload: the node started without a config file; nothing to re-read")
		return nil
	}
	n.reloadMu.Lock()
	defer n.reloadMu.Unlock()
	next, err := load(n.cfg.File, n.cfg.Role)
	if err != nil {
		problems := strings.Split(err.Error(), "\n")
		n.log.Error("config reload failed: keeping the running config", "file", n.cfg.File, "problems", len(problems))
		for _, p := range problems {
			// Config errors name the file and key, never a secret's value.
			n.log.Error("config problem", "problem", p)
		}
		return err
	}
	n.apply(next)
	return nil
}

// errEmpty refuses an empty config file on reload: at start it means the
// defaults, but a running node finding its file empty has more likely
// caught it half written, and the defaults would drop its access keys.
var errEmpty = errors.New("the config file is empty; keeping the running config (a node started on an empty file runs on the defaults)")

// load is config.Load for a reload.
func load(path string, r role.Role) (*config.Runtime, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%s: %w", path, errEmpty)
	}
	return config.Parse(data, path, r, os.LookupEnv)
}

// Apply makes the node run on next (a config of its role) where it can:
// routing rules, providers and their keys, access keys, limits, upstream
// timeouts and the log level apply to the requests that start after it,
// while those in flight finish with the config they started with. Keys
// that need a restart (config.RestartOnly) keep their running values and
// are logged as such. It returns what changed.
func (n *Node) Apply(next *config.Runtime) config.Changes {
	n.reloadMu.Lock()
	defer n.reloadMu.Unlock()
	return n.apply(next)
}

func (n *Node) apply(next *config.Runtime) config.Changes {
	old := n.live.Load()
	merged, ch := old.Update(next)
	if len(ch.Restart) > 0 {
		n.log.Warn("config reload: these keys need a restart; keeping their running values",
			"keys", strings.Join(ch.Restart, ","))
	}
	if len(ch.Applied) == 0 {
		n.log.Info("config reloaded: nothing to apply", "file", n.cfg.File)
		return ch
	}
	n.live.Store(merged)
	if n.level != nil {
		n.level.Set(merged.SlogLevel())
	}
	if merged.Upstream != old.Upstream {
		// Requests in flight keep the old transport; its idle connections go now.
		prev := n.transport
		n.transport = proxy.NewTransport(merged.Upstream.DialTimeout, merged.Upstream.HeaderTimeout)
		prev.CloseIdleConnections()
	}
	providers := buildProviders(merged)
	if n.cfg.Role == role.Egress {
		n.handler.Reconfigure(n.relayProxy(merged, providers))
	} else {
		n.handler.Reconfigure(n.ingressProxy(merged, providers))
	}
	n.log.Info("config reloaded", "file", n.cfg.File, "changed", strings.Join(ch.Applied, ","))
	return ch
}

// watchConfig reloads the config when the file, or an api_key_file it
// names, changes. It compares contents rather than mtime and size (as
// meshtls.Store.Watch does for the certificates): a rewrite within the
// clock's granularity, or of the same size, would go unnoticed, and a
// touch alone should not reload. The files are small. A change is applied
// once two polls in a row see the same contents, so that a file caught
// half written (valid YAML, but missing its end) is not. last is their
// fingerprint when the node started, taken before this runs so that no
// change after the start is missed.
func (n *Node) watchConfig(ctx context.Context, interval time.Duration, last [sha256.Size]byte) {
	t := time.NewTicker(interval)
	defer t.Stop()
	s := settling{last: last, pending: last}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// A failed reload is not retried until the files change again.
		if s.settled(n.fingerprint()) {
			n.log.Info("config file changed: reloading", "file", n.cfg.File)
			n.metrics.ConfigReload(n.reloadConfig() == nil)
		}
	}
}

// settling follows the fingerprints of successive polls.
type settling struct {
	last    [sha256.Size]byte // what was loaded (or tried) last
	pending [sha256.Size]byte // a change seen once
}

// settled reports whether fp is a change that two polls in a row have seen,
// and takes it as the last one.
func (s *settling) settled(fp [sha256.Size]byte) bool {
	switch {
	case fp == s.last:
		s.pending = fp
	case fp != s.pending:
		s.pending = fp
	default:
		s.last = fp
		return true
	}
	return false
}

// fingerprint hashes the config file and the live config's key files (a
// file that cannot be read hashes as its error).
func (n *Node) fingerprint() [sha256.Size]byte {
	paths := []string{n.cfg.File}
	live := n.live.Load()
	for _, p := range live.Providers {
		if p.APIKeyFile != "" {
			paths = append(paths, p.APIKeyFile)
		}
	}
	slices.Sort(paths[1:])
	h := sha256.New()
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			b = []byte(err.Error())
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
		h.Write(b)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}
