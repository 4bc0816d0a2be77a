package meshtls

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/llmesh/llmesh/pkg/role"
)

// Scheme is the URI scheme of a node identity.
const Scheme = "llmesh"

// NoHint stands for an empty hint in a URI, which has no empty path
// segments; `certs issue -hint -` takes it too.
const NoHint = "-"

const maxNameLen = 255

// ErrIdentity is wrapped by every error about a malformed or missing identity.
var ErrIdentity = errors.New("invalid llmesh identity")

// Identity is who a certificate says a node is.
type Identity struct {
	Role role.Role
	Hint string // location hint such as "wnam"; "" when the node has none
	Name string // node name, unique in the mesh
}

// URI returns llmesh://role/hint/name, with "-" for an empty hint.
func (id Identity) URI() *url.URL {
	hint := id.Hint
	if hint == "" {
		hint = NoHint
	}
	return &url.URL{Scheme: Scheme, Host: string(id.Role), Path: "/" + hint + "/" + id.Name}
}

// String returns the URI form, for logs and error messages.
func (id Identity) String() string { return id.URI().String() }

// Validate reports whether id can be put in a certificate and parsed back.
func (id Identity) Validate() error {
	if !id.Role.Valid() {
		return fmt.Errorf("%w: role %q is not %s or %s", ErrIdentity, id.Role, role.Ingress, role.Egress)
	}
	if id.Hint != "" {
		if err := checkName("hint", id.Hint); err != nil {
			return err
		}
	}
	return checkName("name", id.Name)
}

// checkName enforces [A-Za-z0-9._-]{1,255}, without the dot segments "." and
// "..", which URL tooling would resolve away.
func checkName(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty %s", ErrIdentity, what)
	case len(s) > maxNameLen:
		return fmt.Errorf("%w: %s longer than %d bytes", ErrIdentity, what, maxNameLen)
	case s == "." || s == "..":
		return fmt.Errorf("%w: %s %q is a dot segment", ErrIdentity, what, s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %s %q: only letters, digits, '.', '_' and '-' are allowed", ErrIdentity, what, s)
		}
	}
	return nil
}

// ParseIdentity reads an llmesh://role/hint/name URI. Anything else in the
// URI (user, port, query, fragment, escapes, extra segments) is an error, so
// an identity has one canonical form.
func ParseIdentity(u *url.URL) (Identity, error) {
	if u == nil {
		return Identity{}, fmt.Errorf("%w: nil URI", ErrIdentity)
	}
	if u.Scheme != Scheme {
		return Identity{}, fmt.Errorf("%w: scheme %q is not %q", ErrIdentity, u.Scheme, Scheme)
	}
	if u.Opaque != "" || u.User != nil || u.RawPath != "" || u.RawQuery != "" || u.ForceQuery ||
		u.Fragment != "" || u.RawFragment != "" || u.OmitHost {
		return Identity{}, fmt.Errorf("%w: %q has parts other than role, hint and name", ErrIdentity, u.Redacted())
	}
	rest, ok := strings.CutPrefix(u.Path, "/")
	hint, name, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 || strings.Contains(name, "/") {
		return Identity{}, fmt.Errorf("%w: %q is not %s://role/hint/name", ErrIdentity, u.Redacted(), Scheme)
	}
	switch hint {
	case "":
		return Identity{}, fmt.Errorf("%w: empty hint in %q (%q stands for none)", ErrIdentity, u.Redacted(), NoHint)
	case NoHint:
		hint = ""
	}
	id := Identity{Role: role.Role(u.Host), Hint: hint, Name: name}
	if err := id.Validate(); err != nil {
		return Identity{}, err
	}
	return id, nil
}

// IdentityOf returns the identity in cert's URI SANs. Exactly one llmesh URI
// is required; other URIs are ignored.
func IdentityOf(cert *x509.Certificate) (Identity, error) {
	if cert == nil {
		return Identity{}, fmt.Errorf("%w: no certificate", ErrIdentity)
	}
	var found []*url.URL
	for _, u := range cert.URIs {
		if u != nil && strings.EqualFold(u.Scheme, Scheme) {
			found = append(found, u)
		}
	}
	switch len(found) {
	case 0:
		return Identity{}, fmt.Errorf("%w: certificate %q has no %s:// URI SAN", ErrIdentity, cert.Subject.CommonName, Scheme)
	case 1:
		return ParseIdentity(found[0])
	default:
		return Identity{}, fmt.Errorf("%w: certificate %q has %d %s:// URI SANs, want one", ErrIdentity, cert.Subject.CommonName, len(found), Scheme)
	}
}
