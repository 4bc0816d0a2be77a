package cli

import (
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/llmesh/llmesh/pkg/meshtls"
	"github.com/llmesh/llmesh/pkg/role"
	"github.com/llmesh/llmesh/pkg/routing"
)

const (
	caCertFile = "ca.pem"
	caKeyFile  = "ca-key.pem"
	day        = 24 * time.Hour
)

const usage = `usage: certs init  -dir DIR [-days 3650] [-cn NAME]
       certs issue -dir DIR -name NAME -role ingress|egress [-hint HINT] [-host h1,h2] [-days 365] [-force]
`

// certs runs the `certs` subcommands; args are what follows "certs".
//
//	certs init  -dir DIR [-days 3650]
//	    writes DIR/ca.pem and DIR/ca-key.pem (0600); refuses to overwrite a CA.
//	certs issue -dir DIR -name NAME -role ingress|egress [-hint HINT] [-host h1,h2] [-days 365] [-force]
//	    writes DIR/NAME.pem and DIR/NAME-key.pem (0600), signed by DIR's CA,
//	    replacing an older pair for the same identity atomically (a running
//	    node reloads it); another identity's files only with -force, the
//	    CA's never.
//
// It prints what it wrote and, for issue, the tunnel.tls config snippet.
// -h prints usage and returns nil.
func certs(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return ErrUsage
	}
	switch args[0] {
	case "init":
		return certsInit(args[1:], stdout, stderr)
	case "issue":
		return certsIssue(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprintf(stderr, "certs: unknown subcommand %q\n%s", args[0], usage)
		return ErrUsage
	}
}

func certsInit(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("certs init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "`directory` for ca.pem and ca-key.pem (created if missing)")
	days := fs.Int("days", 3650, "validity in `days`")
	cn := fs.String("cn", "llmesh development CA", "the CA's common `name`")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	if *dir == "" || *days <= 0 {
		fmt.Fprintln(stderr, "certs init: -dir is required and -days must be positive")
		fs.Usage()
		return ErrUsage
	}
	certPath, keyPath, err := absPaths(*dir, caCertFile, caKeyFile)
	if err != nil {
		return err
	}
	for _, p := range []string{certPath, keyPath} {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("certs init: %s exists; refusing to overwrite a CA (remove it to start over)", p)
		}
	}
	certPEM, keyPEM, err := meshtls.NewCA(*cn, time.Duration(*days)*day)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return fmt.Errorf("certs init: %w", err)
	}
	// The key first: a CA certificate without its key would block a retry.
	if err := writeNew(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	if err := writeNew(certPath, certPEM, 0o644); err != nil {
		os.Remove(keyPath)
		return err
	}
	ca, _ := meshtls.ParseCertificate(certPEM)
	fmt.Fprintf(stdout, "wrote %s (CA %q, valid until %s)\n", certPath, ca.Subject.CommonName, day0(ca.NotAfter))
	fmt.Fprintf(stdout, "wrote %s (CA private key, mode 0600: keep it off the nodes)\n", keyPath)
	fmt.Fprintf(stdout, "\nnext, for each node:\n  certs issue -dir %s -name NAME -role ingress|egress -hint HINT\n", *dir)
	return nil
}

func certsIssue(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("certs issue", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "`directory` holding ca.pem and ca-key.pem; NAME.pem and NAME-key.pem are written there")
	name := fs.String("name", "", "node `name` (node.name in its config)")
	roleFlag := fs.String("role", "", "node `role`: ingress or egress")
	hint := fs.String("hint", "", "node `hint` (node.hint in its config); required for an egress")
	hosts := fs.String("host", "", "comma-separated DNS names or IPs to add as SANs (optional: peers check the llmesh identity, not the host)")
	days := fs.Int("days", 365, "validity in `days` (at most the CA's)")
	force := fs.Bool("force", false, "replace NAME.pem and NAME-key.pem even when they hold another identity")
	if help, err := parseFlags(fs, args); help || err != nil {
		return err
	}
	// Nodes lower-case node.hint; the certificate must name the same.
	*hint = strings.ToLower(*hint)
	if *hint == meshtls.NoHint {
		*hint = ""
	}
	nodeRole := role.Role(*roleFlag)
	id := meshtls.Identity{Role: nodeRole, Hint: *hint, Name: *name}
	var problem string
	switch {
	case *dir == "":
		problem = "-dir is required"
	case *days <= 0:
		problem = "-days must be positive"
	case nodeRole == role.Egress && *hint == "":
		problem = "-hint is required for an egress: ingress nodes check it against gossip"
	case *hint != "" && !routing.ValidHint(*hint):
		// No node could use it: node.hint takes only these.
		problem = fmt.Sprintf("-hint %q is not a location hint; use one of %s", *hint, strings.Join(routing.Hints, ", "))
	default:
		if err := id.Validate(); err != nil {
			problem = err.Error()
		}
	}
	if problem != "" {
		fmt.Fprintf(stderr, "certs issue: %s\n", problem)
		fs.Usage()
		return ErrUsage
	}
	caCertPath, caKeyPath, err := absPaths(*dir, caCertFile, caKeyFile)
	if err != nil {
		return err
	}
	certPath, keyPath, err := absPaths(*dir, id.Name+".pem", id.Name+"-key.pem")
	if err != nil {
		return err
	}
	for _, p := range []string{certPath, keyPath} {
		// EqualFold: on a case-insensitive file system CA.pem is ca.pem.
		if strings.EqualFold(p, caCertPath) || strings.EqualFold(p, caKeyPath) {
			fmt.Fprintf(stderr, "certs issue: -name %q would overwrite the CA (%s, %s); choose another name\n", id.Name, caCertFile, caKeyFile)
			fs.Usage()
			return ErrUsage
		}
	}
	if !*force {
		if err := checkReplace(certPath, keyPath, id); err != nil {
			return fmt.Errorf("certs issue: %w; pass -force to replace them", err)
		}
	}
	caCertPEM, err := os.ReadFile(caCertPath)
	if err != nil {
		return fmt.Errorf("certs issue: %w (run certs init first)", err)
	}
	caKeyPEM, err := os.ReadFile(caKeyPath)
	if err != nil {
		return fmt.Errorf("certs issue: %w", err)
	}
	certPEM, keyPEM, err := meshtls.Issue(caCertPEM, caKeyPEM, id, strings.Split(*hosts, ","), time.Duration(*days)*day)
	if err != nil {
		return err
	}
	// Key first: a node watching the files sees a mismatch for a moment,
	// keeps its old pair, and loads the new one once the cert follows.
	if err := replace(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	if err := replace(certPath, certPEM, 0o644); err != nil {
		return err
	}
	leaf, _ := meshtls.ParseCertificate(certPEM)
	fmt.Fprintf(stdout, "wrote %s (%s, serial %x, valid until %s)\n", certPath, id, leaf.SerialNumber, day0(leaf.NotAfter))
	fmt.Fprintf(stdout, "wrote %s (private key, mode 0600)\n", keyPath)
	fmt.Fprintf(stdout, "\nconfig for node %s:\ntunnel:\n  tls:\n    cert: %s\n    key: %s\n    ca: %s\n", id.Name, certPath, keyPath, caCertPath)
	return nil
}

// checkReplace allows replacing an existing pair only when it is a renewal:
// the certificate names the same identity, and the key file holds a key
// (node "a"'s key file a-key.pem is node "a-key"'s certificate file).
func checkReplace(certPath, keyPath string, id meshtls.Identity) error {
	if b, err := os.ReadFile(certPath); err == nil {
		cert, err := meshtls.ParseCertificate(b)
		if err != nil {
			return fmt.Errorf("%s exists and holds no certificate", certPath)
		}
		if got, err := meshtls.IdentityOf(cert); err != nil || got != id {
			return fmt.Errorf("%s holds a certificate for %s, not %s", certPath, describeIdentity(got, err), id)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if b, err := os.ReadFile(keyPath); err == nil {
		if block, _ := pem.Decode(b); block == nil || !strings.HasSuffix(block.Type, "PRIVATE KEY") {
			return fmt.Errorf("%s exists and holds no private key", keyPath)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

func describeIdentity(id meshtls.Identity, err error) string {
	if err != nil {
		return "no llmesh identity"
	}
	return id.String()
}

func absPaths(dir, cert, key string) (string, string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", "", fmt.Errorf("certs: %w", err)
	}
	return filepath.Join(abs, cert), filepath.Join(abs, key), nil
}

// writeNew creates path with perm, failing if it exists.
func writeNew(path string, data []byte, perm fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("certs: %w", err)
	}
	return nil
}

// replace writes path atomically (temporary file and rename), so a reader
// never sees half a file.
func replace(path string, data []byte, perm fs.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	tmp := f.Name()
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("certs: %w", err)
	}
	return nil
}

func day0(t time.Time) string { return t.UTC().Format(time.DateOnly) }
