package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/llmesh/llmesh/pkg/config"
	"github.com/llmesh/llmesh/pkg/node"
	"github.com/llmesh/llmesh/pkg/role"
)

// run calls Run in process and returns what it printed.
func run(t *testing.T, role role.Role, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = Run(context.Background(), role, args, &out, &errOut, nil)
	return out.String(), errOut.String(), err
}

func TestHelpSaysWhatIsRequired(t *testing.T) {
	_, stderr, err := run(t, role.Egress, "-h")
	if err != nil {
		t.Fatalf("-h: %v", err)
	}
	if !strings.Contains(stderr, "usage: egress -config FILE\n") || !strings.Contains(stderr, "required: an egress needs node.hint") ||
		strings.Contains(stderr, "built-in defaults") || strings.Contains(stderr, "[-config FILE]") {
		t.Errorf("egress -h does not say -config is required:\n%s", stderr)
	}
	_, stderr, _ = run(t, role.Ingress, "-h")
	if !strings.Contains(stderr, "usage: ingress [-config FILE]\n") || !strings.Contains(stderr, "default: built-in defaults") {
		t.Errorf("ingress -h:\n%s", stderr)
	}

	// And the egress does what its help says.
	_, stderr, err = run(t, role.Egress)
	if !errors.Is(err, ErrUsage) || !strings.Contains(stderr, "egress: -config is required") {
		t.Errorf("egress without -config: %v\n%s", err, stderr)
	}
}

func TestKeygen(t *testing.T) {
	for _, args := range [][]string{{"keygen", "-h"}, {"keygen", "-help"}, {"keygen", "--help"}} {
		stdout, stderr, err := run(t, role.Ingress, args...)
		if err != nil || stdout != "" || !strings.Contains(stderr, "usage: ingress keygen") {
			t.Errorf("%v: err %v, stdout %q (must be empty), stderr %q", args, err, stdout, stderr)
		}
	}
	stdout, stderr, err := run(t, role.Ingress, "keygen", "extra")
	if !errors.Is(err, ErrUsage) || stdout != "" || !strings.Contains(stderr, `unexpected argument "extra"`) {
		t.Errorf("keygen extra: err %v, stdout %q, stderr %q", err, stdout, stderr)
	}
	stdout, _, err = run(t, role.Egress, "keygen")
	if err != nil {
		t.Fatal(err)
	}
	key := config.Secret(strings.TrimSpace(stdout))
	if b, err := (config.Gossip{Key: key}).KeyBytes(); err != nil || len(b) != 32 {
		t.Errorf("keygen printed %q: %d bytes, %v", stdout, len(b), err)
	}
}

func TestUnknownCommand(t *testing.T) {
	for _, args := range [][]string{{"bogus"}, {"-config", "x.yaml", "bogus"}, {"\x1b[2Jevil"}} {
		_, stderr, err := run(t, role.Ingress, args...)
		if !errors.Is(err, ErrUsage) {
			t.Errorf("%q: err %v, want ErrUsage", args, err)
		}
		want := `ingress: unknown command "` + strings.ReplaceAll(args[len(args)-1], "\x1b", `\x1b`) + `"`
		if !strings.Contains(stderr, want) || !strings.Contains(stderr, "usage: ingress") || strings.Contains(stderr, "\x1b") {
			t.Errorf("%q: stderr lacks %q and the usage:\n%s", args, want, stderr)
		}
	}
}

// serveMembers answers /members with status and body.
func serveMembers(t *testing.T, status int, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/members" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestMembersErrorsSayWhatToDo(t *testing.T) {
	tests := []struct {
		name   string
		status int
		args   []string
		want   string
	}{
		{"no token", 401, nil, "401 Unauthorized: the node sets admin.token; pass it with -token (or $LLMESH_ADMIN_TOKEN)"},
		{"wrong token", 401, []string{"-token", "nope"}, "401 Unauthorized: the node refused the token; pass its admin.token with -token"},
		{"not served here", 404, nil, "404 Not Found: this listener does not serve /members; if the node sets admin.listen, point -addr at that address"},
		{"other", 500, nil, "answered 500 Internal Server Error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("LLMESH_ADMIN_TOKEN", "")
			url := serveMembers(t, tt.status, `{}`)
			_, _, err := run(t, role.Ingress, append([]string{"members", "-addr", url}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to say %q", err, tt.want)
			}
		})
	}
}

// TestMembersFilters: -role, -hint and -state become the query of
// /members, and a value the node refuses is reported with its message.
func TestMembersFilters(t *testing.T) {
	var got url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.Query()
		if got.Get("hint") == "mars" {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":{"message":"hint \"mars\" is not one of wnam, enam","type":"invalid_request_error","code":"bad_filter"}}`))
			return
		}
		w.Write([]byte(`{"members":[]}`))
	}))
	t.Cleanup(srv.Close)
	if _, _, err := run(t, role.Ingress, "members", "-addr", srv.URL, "-role", "egress", "-hint", "wnam,enam", "-state", "alive"); err != nil {
		t.Fatal(err)
	}
	want := url.Values{"role": {"egress"}, "hint": {"wnam,enam"}, "state": {"alive"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("query = %v, want %v", got, want)
	}
	if _, _, err := run(t, role.Ingress, "members", "-addr", srv.URL); err != nil || len(got) != 0 {
		t.Errorf("no flags: err %v, query %v; want no filter", err, got)
	}
	_, _, err := run(t, role.Ingress, "members", "-addr", srv.URL, "-hint", "mars")
	if want := `400 Bad Request: hint "mars" is not one of wnam, enam`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want it to say %q", err, want)
	}
}

// TestMembersEscapesWhatGossipSays: every field of /members comes from
// gossip, where any key holder may write anything.
func TestMembersEscapesWhatGossipSays(t *testing.T) {
	hostile := []string{
		"\x1b[2J", "\x1b]0;owned\x07", "a\nb", "tab\there", "cr\rx", "\x7f", "\u009b31m", "\u202egnp.exe",
		"zero\u200bwidth", "back\\x1bslash", "sp ace", "\x00nul",
	}
	var members []node.MemberInfo
	for i, h := range hostile {
		members = append(members, node.MemberInfo{
			Name: "n" + string(rune('a'+i)) + h, Role: "egress" + h, Loc: h, Colo: h, Hint: h,
			Addr: "127.0.0.1:1" + h, Tunnel: h, State: "alive" + h, Version: "v1" + h,
		})
	}
	body, _ := json.Marshal(node.MembersResponse{Members: members})
	url := serveMembers(t, 200, string(body))

	table, _, err := run(t, role.Ingress, "members", "-addr", url)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(table, "\n"), "\n")
	if len(lines) != 1+len(members) {
		t.Errorf("%d lines for %d members: a field broke a line:\n%s", len(lines), len(members), table)
	}
	for _, r := range table {
		if r != '\n' && !unicode.IsPrint(r) {
			t.Fatalf("the table holds %U:\n%q", r, table)
		}
	}
	for _, want := range []string{`na\x1b[2J`, `\x1b]0;owned\x07`, `a\x0ab`, `\u009b31m`, `\u202egnp.exe`, `back\\x1bslash`, `sp\x20ace`, `\x00nul`} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %s:\n%s", want, table)
		}
	}
	for _, l := range lines[1:] {
		if got := len(strings.Fields(l)); got != 9 {
			t.Errorf("%d columns, want 9: %q", got, l)
		}
	}

	js, _, err := run(t, role.Ingress, "members", "-addr", url, "-json")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range js {
		if r != '\n' && !unicode.IsPrint(r) {
			t.Fatalf("the JSON holds %U:\n%q", r, js)
		}
	}
	var back node.MembersResponse
	if err := json.Unmarshal([]byte(js), &back); err != nil {
		t.Fatalf("-json is not JSON: %v\n%s", err, js)
	}
	for i := range members {
		if back.Members[i] != members[i] {
			t.Errorf("-json changed member %d: %q, want %q", i, back.Members[i].Name, members[i].Name)
		}
	}
}

// FuzzPrintable: whatever gossip carries, a printed field holds only
// printable runes, a table cell no space, and the escaping loses nothing
// (it reads back as the original with Go's string syntax).
func FuzzPrintable(f *testing.F) {
	for _, s := range []string{"", "plain", "\x1b[2J", "a\nb", "\xff\xfe", "\u009b", "\u202e", "\\x1b", "sp ace", "\U000e0001", "\"q\""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, c := printable(s), cell(s)
		for _, r := range c {
			if !unicode.IsPrint(r) || r == ' ' {
				t.Fatalf("cell(%q) = %q holds %U", s, c, r)
			}
		}
		back, err := strconv.Unquote(`"` + strings.ReplaceAll(p, `"`, `\"`) + `"`)
		if err != nil || back != s {
			t.Fatalf("printable(%q) = %q reads back as %q, %v", s, p, back, err)
		}
	})
}
