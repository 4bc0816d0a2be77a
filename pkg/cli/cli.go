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
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/llmesh/llmesh/pkg/config"
	"github.com/llmesh/llmesh/pkg/node"
	"github.com/llmesh/llmesh/pkg/role"
	"github.com/llmesh/llmesh/pkg/version"
)

// ErrUsage is returned after usage was printed for bad arguments.
var ErrUsage = errors.New("usage")

// Run is the whole program for role: `ROLE [-config FILE]`, `ROLE -version`,
// `ROLE members -addr URL [-json]`. It returns when ctx ends (after a
// graceful drain) or the node fails. A running node re-reads its tunnel
// certificates on each value from reload (nil: never).
func Run(ctx context.Context, r role.Role, args []string, stdout, stderr io.Writer, reload <-chan struct{}) error {
	if len(args) > 0 {
		switch args[0] {
		case "members":
			return runMembers(ctx, string(r), args[1:], stdout, stderr)
		case "keygen":
			return keygen(string(r), args[1:], stdout, stderr)
		case "certs":
			return certs(args[1:], stdout, stderr)
		}
	}
	fs := flag.NewFlagSet(string(r), flag.ContinueOnError)
	fs.SetOutput(stderr)
	// The defaults make a working ingress; an egress has no default hint
	// nor a secured tunnel, so it cannot run without a file.
	configHelp, configUsage := "YAML config `file` (default: built-in defaults)", "[-config FILE]"
	if r == role.Egress {
		configHelp, configUsage = "YAML config `file` (required: an egress needs node.hint and tunnel.tls, tunnel.token or tunnel.insecure)", "-config FILE"
	}
	cfgPath := fs.String("config", "", configHelp)
	checkOnly := fs.Bool("check", false, "check the config and the files it names (keys, certificates), print every problem, and exit: 0 when valid, 1 when not")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: %[1]s %[2]s\n"+
			"       %[1]s -check %[2]s            check a config and the files it names, print every problem\n"+
			"       %[1]s members -addr URL [-json] [-token T] [-role R] [-hint H] [-state S]   who is in the mesh, as the node at URL sees it\n"+
			"       %[1]s keygen                      print a new gossip key\n"+
			"       %[1]s certs init|issue ...         create a mesh CA and node certificates\n"+
			"       %[1]s -version\n", r, configUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return ErrUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unknown command %s\n", r, strconv.Quote(fs.Arg(0)))
		fs.Usage()
		return ErrUsage
	}
	if *showVersion {
		fmt.Fprintf(stdout, "%s %s\n", r, version.Version)
		return nil
	}
	if *checkOnly {
		return check(r, *cfgPath, stdout)
	}
	if *cfgPath == "" && r == role.Egress {
		fmt.Fprintf(stderr, "%s: -config is required: an egress needs node.hint and a secured tunnel, which have no defaults\n", r)
		fs.Usage()
		return ErrUsage
	}
	cfg, err := config.Load(*cfgPath, r)
	if err != nil {
		return err
	}
	level := new(slog.LevelVar)
	level.Set(cfg.SlogLevel())
	logs := newLogWriter(stderr)
	defer logs.Close()
	return node.Run(ctx, cfg, NewLogger(logs, cfg.Log.Format, level), node.Options{Level: level}, reload)
}

// NewLogger returns the node's logger, text or JSON (format), at level,
// which a config reload may change.
func NewLogger(w io.Writer, format string, level slog.Leveler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
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
	filters := map[string]*string{
		"role":  fs.String("role", "", "only members of these `roles` (ingress, egress; comma-separated)"),
		"hint":  fs.String("hint", "", "only members with these `hints` (wnam, enam, ...; comma-separated)"),
		"state": fs.String("state", "", "only members in these `states` (alive, dead, left; comma-separated; default all)"),
	}
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
	q := url.Values{}
	for name, v := range filters {
		if *v != "" {
			q.Set(name, *v) // the node checks the values
		}
	}
	u.RawQuery = q.Encode()
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
		return fmt.Errorf("members: %s answered %s%s", u, printable(resp.Status), membersHint(resp.StatusCode, *token != "", body))
	}
	var mr node.MembersResponse
	if err := json.Unmarshal(body, &mr); err != nil {
		return fmt.Errorf("members: %s did not answer with a member list: %w", u, err)
	}
	if *asJSON {
		out, _ := json.MarshalIndent(mr, "", "  ")
		fmt.Fprintf(stdout, "%s\n", escapeJSON(out))
		return nil
	}
	// Every field comes from gossip, where any key holder may write
	// anything: escape what a terminal would act on.
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tLOC\tCOLO\tHINT\tSTATE\tADDR\tTUNNEL\tVERSION")
	for _, m := range mr.Members {
		state := m.State
		if m.Draining && state == "alive" {
			state = "draining"
		}
		fields := []string{m.Name, m.Role, dash(m.Loc), dash(m.Colo), dash(m.Hint), state, m.Addr, dash(m.Tunnel), dash(m.Version)}
		for i, f := range fields {
			fields[i] = cell(f)
		}
		fmt.Fprintln(tw, strings.Join(fields, "\t"))
	}
	return tw.Flush()
}

// membersHint says what to do about a refusal from /members.
func membersHint(status int, sentToken bool, body []byte) string {
	switch {
	case status == http.StatusBadRequest:
		// A filter the node refused: its message names the valid values.
		var e struct {
			Error struct{ Message string } `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
			return ": " + printable(e.Error.Message)
		}
	case status == http.StatusUnauthorized && sentToken:
		return ": the node refused the token; pass its admin.token with -token (or $LLMESH_ADMIN_TOKEN)"
	case status == http.StatusUnauthorized:
		return ": the node sets admin.token; pass it with -token (or $LLMESH_ADMIN_TOKEN)"
	case status == http.StatusNotFound:
		return ": this listener does not serve /members; if the node sets admin.listen, point -addr at that address"
	}
	return ""
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// cell is s for a table cell: printable, and without spaces, which would
// pass for column breaks.
func cell(s string) string { return strings.ReplaceAll(printable(s), " ", `\x20`) }

// printable escapes, Go-style, what a terminal would act on: control and
// format characters, other non-printable runes, invalid UTF-8, and
// backslashes (so an escape in the output always stands for a byte).
func printable(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case !unicode.IsPrint(r):
			switch {
			case r < 0x80:
				fmt.Fprintf(&b, `\x%02x`, r)
			case r <= 0xffff:
				fmt.Fprintf(&b, `\u%04x`, r)
			default:
				fmt.Fprintf(&b, `\U%08x`, r)
			}
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

// escapeJSON writes every non-printable rune of indented JSON as \uXXXX:
// encoding/json leaves DEL, C1 controls (U+009B starts an escape sequence
// on some terminals) and format characters raw. Outside strings indented
// JSON holds only printable runes, newlines and spaces, so this only
// touches strings and keeps the JSON equal.
func escapeJSON(js []byte) string {
	var b strings.Builder
	for _, r := range string(js) {
		if r == '\n' || unicode.IsPrint(r) {
			b.WriteRune(r)
			continue
		}
		if r1, r2 := utf16.EncodeRune(r); r1 != unicode.ReplacementChar {
			fmt.Fprintf(&b, `\u%04x\u%04x`, r1, r2)
		} else {
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}

// keygen prints a fresh 32-byte gossip key, base64, for gossip.key or gossip.keys.
func keygen(role string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(role+" keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s keygen\n  print a new gossip key (base64 of 32 random bytes) for gossip.key or gossip.keys\n", role)
	}
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	_, err := fmt.Fprintln(stdout, base64.StdEncoding.EncodeToString(key))
	return err
}

// parseFlags parses fs and maps its outcomes: help is not an error; other flag
// errors and stray arguments are usage errors (already printed).
func parseFlags(fs *flag.FlagSet, args []string) (help bool, err error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return true, nil
		}
		return false, ErrUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return false, ErrUsage
	}
	return false, nil
}
