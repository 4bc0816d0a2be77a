package cli

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/llmesh/llmesh/pkg/config"
	"github.com/llmesh/llmesh/pkg/meshtls"
	"github.com/llmesh/llmesh/pkg/node"
	"github.com/llmesh/llmesh/pkg/version"
)

// ErrUsage is returned after usage was printed for bad arguments.
var ErrUsage = errors.New("usage")

// Run is the whole program for role: `ROLE [-config FILE]`, `ROLE -version`,
// `ROLE members -addr URL [-json]`. It returns when ctx ends (after a
// graceful drain) or the node fails.
func Run(ctx context.Context, role config.Role, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "members":
			return runMembers(ctx, string(role), args[1:], stdout, stderr)
		case "keygen":
			return keygen(stdout)
		case "certs":
			if err := meshtls.Command(args[1:], stdout, stderr); errors.Is(err, meshtls.ErrUsage) {
				return ErrUsage
			} else if err != nil {
				return err
			}
			return nil
		}
	}
	fs := flag.NewFlagSet(string(role), flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "YAML config `file` (default: built-in defaults)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: %[1]s [-config FILE]\n"+
			"       %[1]s members -addr URL [-json] [-token T]   who is in the mesh, as the node at URL sees it\n"+
			"       %[1]s keygen                      print a new gossip key\n"+
			"       %[1]s certs init|issue ...         create a mesh CA and node certificates\n"+
			"       %[1]s -version\n", role)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return ErrUsage
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return ErrUsage
	}
	if *showVersion {
		fmt.Fprintf(stdout, "%s %s\n", role, version.Version)
		return nil
	}
	cfg, err := config.Load(*cfgPath, role)
	if err != nil {
		return err
	}
	return node.Run(ctx, cfg, NewLogger(stderr, cfg.Log))
}

// NewLogger returns the node's logger, text or JSON at the configured level.
func NewLogger(w io.Writer, lc config.Log) *slog.Logger {
	opts := &slog.HandlerOptions{Level: (&config.Config{Log: lc}).SlogLevel()}
	if lc.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func runMembers(ctx context.Context, role string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(role+" members", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "http://127.0.0.1:8080", "`URL` of any node's HTTP listener")
	asJSON := fs.Bool("json", false, "print the JSON that /members returns")
	token := fs.String("token", os.Getenv("LLMESH_ADMIN_TOKEN"), "admin `token` when the node sets admin.token (default $LLMESH_ADMIN_TOKEN)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return ErrUsage
	}
	base := *addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return fmt.Errorf("members: -addr %q is not a URL", *addr)
	}
	u = u.JoinPath("members")
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	if *token != "" {
		req.Header.Set("Authorization", "Bearer "+*token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("members: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("members: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("members: %s answered %s", u, resp.Status)
	}
	var mr node.MembersResponse
	if err := json.Unmarshal(body, &mr); err != nil {
		return fmt.Errorf("members: %s did not answer with a member list: %w", u, err)
	}
	if *asJSON {
		out, _ := json.MarshalIndent(mr, "", "  ")
		fmt.Fprintf(stdout, "%s\n", out)
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tLOC\tCOLO\tHINT\tSTATE\tADDR\tTUNNEL\tVERSION")
	for _, m := range mr.Members {
		state := m.State
		if m.Draining && state == "alive" {
			state = "draining"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			m.Name, m.Role, dash(m.Loc), dash(m.Colo), dash(m.Hint), state, m.Addr, dash(m.Tunnel), dash(m.Version))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// keygen prints a fresh 32-byte gossip key, base64, for gossip.key or gossip.keys.
func keygen(stdout io.Writer) error {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	_, err := fmt.Fprintln(stdout, base64.StdEncoding.EncodeToString(key))
	return err
}
