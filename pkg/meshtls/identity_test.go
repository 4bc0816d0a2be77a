package meshtls

import (
	"crypto/x509"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/llmesh/llmesh/pkg/role"
)

func TestIdentityURI(t *testing.T) {
	tests := []struct {
		id   Identity
		want string
	}{
		{egressID, "llmesh://egress/wnam/wnam-1"},
		{ingressID, "llmesh://ingress/apac/hk-1"},
		{Identity{Role: role.Ingress, Name: "edge_2.local"}, "llmesh://ingress/-/edge_2.local"},
	}
	for _, tt := range tests {
		if got := tt.id.URI().String(); got != tt.want {
			t.Errorf("%+v.URI() = %q, want %q", tt.id, got, tt.want)
		}
		u, err := url.Parse(tt.want)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseIdentity(u)
		if err != nil || back != tt.id {
			t.Errorf("ParseIdentity(%q) = %+v, %v; want %+v", tt.want, back, err, tt.id)
		}
	}
}

func TestParseIdentity(t *testing.T) {
	long := strings.Repeat("a", 255)
	tests := []struct {
		uri  string
		want Identity
		err  string // substring; "" means valid
	}{
		{uri: "llmesh://egress/wnam/wnam-1", want: egressID},
		{uri: "LLMESH://egress/wnam/wnam-1", want: egressID}, // url.Parse lower-cases schemes
		{uri: "llmesh://ingress/-/hk-1", want: Identity{Role: role.Ingress, Name: "hk-1"}},
		{uri: "llmesh://egress/wnam/" + long, want: Identity{Role: role.Egress, Hint: "wnam", Name: long}},
		{uri: "llmesh://egress/wnam/A.b_c-9", want: Identity{Role: role.Egress, Hint: "wnam", Name: "A.b_c-9"}},

		{uri: "https://egress/wnam/wnam-1", err: "scheme"},
		{uri: "llmesh://relay/wnam/x", err: "role"},
		{uri: "llmesh://EGRESS/wnam/x", err: "role"},
		{uri: "llmesh://egress:443/wnam/x", err: "role"},
		{uri: "llmesh://user@egress/wnam/x", err: "other than"},
		{uri: "llmesh://egress/wnam/x?a=b", err: "other than"},
		{uri: "llmesh://egress/wnam/x?", err: "other than"},
		{uri: "llmesh://egress/wnam/x#f", err: "other than"},
		{uri: "llmesh://egress/wn%61m/x", err: "other than"},
		{uri: "llmesh://egress/wnam/a%2Fb", err: "other than"},
		{uri: "llmesh:egress/wnam/x", err: "other than"},
		{uri: "llmesh:///wnam/x", err: "role"},
		{uri: "llmesh://egress/wnam", err: "role/hint/name"},
		{uri: "llmesh://egress", err: "role/hint/name"},
		{uri: "llmesh://egress/wnam/x/y", err: "role/hint/name"},
		{uri: "llmesh://egress/wnam/", err: "empty name"},
		{uri: "llmesh://egress//x", err: "empty hint"},
		{uri: "llmesh://egress/wnam/..", err: "dot segment"},
		{uri: "llmesh://egress/./x", err: "dot segment"},
		{uri: "llmesh://egress/wnam/a~b", err: "only letters"},
		{uri: "llmesh://egress/wnam/hk:1", err: "only letters"},
		{uri: "llmesh://egress/wnam/" + long + "a", err: "longer than 255"},
	}
	for _, tt := range tests {
		t.Run(tt.uri[:min(len(tt.uri), 40)], func(t *testing.T) {
			u, err := url.Parse(tt.uri)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ParseIdentity(u)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrIdentity) {
					t.Fatalf("ParseIdentity(%q) = %+v, %v; want ErrIdentity containing %q", tt.uri, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseIdentity(%q) = %+v, %v; want %+v", tt.uri, got, err, tt.want)
			}
		})
	}
	if _, err := ParseIdentity(nil); err == nil {
		t.Error("ParseIdentity(nil) succeeded")
	}
}

func TestIdentityOf(t *testing.T) {
	mustURL := func(s string) *url.URL {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	tests := []struct {
		name string
		uris []string
		want Identity
		err  string
	}{
		{name: "one", uris: []string{"llmesh://egress/wnam/wnam-1"}, want: egressID},
		{name: "others ignored", uris: []string{"spiffe://example.org/x", "llmesh://ingress/apac/hk-1"}, want: ingressID},
		{name: "none", err: "no llmesh:// URI SAN"},
		{name: "only others", uris: []string{"spiffe://example.org/x"}, err: "no llmesh:// URI SAN"},
		{name: "two", uris: []string{"llmesh://egress/wnam/a", "llmesh://egress/wnam/b"}, err: "has 2 llmesh:// URI SANs"},
		{name: "malformed", uris: []string{"llmesh://egress/wnam/a/b"}, err: "role/hint/name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &x509.Certificate{}
			for _, s := range tt.uris {
				c.URIs = append(c.URIs, mustURL(s))
			}
			got, err := IdentityOf(c)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("IdentityOf = %+v, %v; want error containing %q", got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("IdentityOf = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
	if _, err := IdentityOf(nil); err == nil {
		t.Error("IdentityOf(nil) succeeded")
	}
}

// TestIdentityOfIssued checks the identity survives DER encoding.
func TestIdentityOfIssued(t *testing.T) {
	ca := newTestCA(t, "test CA")
	certPEM, _ := ca.issueValid(t, Identity{Role: role.Ingress, Name: "no-hint"})
	c, err := ParseCertificate(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	got, err := IdentityOf(c)
	if want := (Identity{Role: role.Ingress, Name: "no-hint"}); err != nil || got != want {
		t.Fatalf("IdentityOf(issued) = %+v, %v; want %+v", got, err, want)
	}
	if c.Subject.CommonName != "no-hint" {
		t.Errorf("CN = %q, want the node name", c.Subject.CommonName)
	}
}

func FuzzParseIdentity(f *testing.F) {
	for _, s := range []string{
		"llmesh://egress/wnam/wnam-1",
		"llmesh://ingress/-/hk-1",
		"llmesh://ingress/apac/hk-1",
		"LLMESH://egress/wnam/x",
		"llmesh://egress/wnam/x?q#f",
		"llmesh://u:p@egress:1/wnam/x",
		"llmesh://egress/wn%61m/x",
		"llmesh://egress/../x",
		"llmesh:egress/wnam/x",
		"llmesh://egress//",
		"https://egress/wnam/x",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := url.Parse(s)
		if err != nil {
			return
		}
		id, err := ParseIdentity(u)
		if err != nil {
			return
		}
		if err := id.Validate(); err != nil {
			t.Fatalf("ParseIdentity(%q) returned invalid %+v: %v", s, id, err)
		}
		again, err := url.Parse(id.URI().String())
		if err != nil {
			t.Fatalf("URI of %+v does not parse: %v", id, err)
		}
		back, err := ParseIdentity(again)
		if err != nil || back != id {
			t.Fatalf("round trip of %q: %+v -> %q -> %+v, %v", s, id, again, back, err)
		}
	})
}
