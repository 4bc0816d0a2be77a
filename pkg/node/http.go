package node

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/llmesh/llmesh/pkg/membership"
	"github.com/llmesh/llmesh/pkg/provider"
	"github.com/llmesh/llmesh/pkg/statuspage"
	"github.com/llmesh/llmesh/pkg/version"
)

// handlers returns what the HTTP listener serves and, when admin.listen is
// set, what the admin listener serves. /health is public on both; /members
// and /metrics move to the admin listener when there is one, and need the
// admin token when one is set. No http.ServeMux: it would clean and redirect
// malformed paths that the proxy must refuse with a 400.
func (n *Node) handlers(routes http.Handler) (main, admin http.Handler) {
	health := http.HandlerFunc(n.serveHealth)
	private := map[string]http.Handler{
		"/members": n.adminAuth(http.HandlerFunc(n.serveMembers)),
		"/metrics": n.adminAuth(n.metrics.Handler()),
		// The page holds no data: it fetches /members, with the token.
		"/": statuspage.Handler(),
	}
	adminRoutes := map[string]http.Handler{"/health": health}
	mainRoutes := map[string]http.Handler{"/health": health}
	target := mainRoutes
	if n.cfg.Admin.Listen != "" {
		target = adminRoutes
	}
	for path, h := range private {
		target[path] = h
	}
	var notFound http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(&provider.Error{Status: http.StatusNotFound, Code: "not_found", Message: "the admin listener serves /, /health, /members and /metrics (and /debug/pprof/ when admin.token is set)"}).Write(w, provider.StyleOpenAI)
	})
	if n.cfg.Admin.Token != "" {
		notFound = withProfiles(n.adminAuth, notFound)
	}
	return cors(dispatch(mainRoutes, routes)), dispatch(adminRoutes, notFound)
}

// withProfiles serves Go's profiles under /debug/pprof/ behind auth, and
// hands every other path to rest. Only the admin listener, and only with the
// admin token, serves them: a profile shows the heap, with its secrets.
func withProfiles(auth func(http.Handler) http.Handler, rest http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	profiles := auth(mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/debug/pprof/") {
			profiles.ServeHTTP(w, r)
			return
		}
		rest.ServeHTTP(w, r)
	})
}

// dispatch serves exact admin paths (GET and HEAD only) and hands every
// other request to rest.
func dispatch(admin map[string]http.Handler, rest http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, ok := admin[r.URL.Path]
		if !ok {
			rest.ServeHTTP(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			(&provider.Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed", Message: "use GET"}).Write(w, provider.StyleOpenAI)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// adminAuth requires the admin token, when one is set, as a bearer token.
func (n *Node) adminAuth(h http.Handler) http.Handler {
	token := n.cfg.Admin.Token.Reveal()
	if token == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="llmesh admin"`)
			(&provider.Error{Status: http.StatusUnauthorized, Code: "admin_unauthorized", Message: "this route needs the admin token as Authorization: Bearer <token>"}).Write(w, provider.StyleOpenAI)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func notFoundOnEgress() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		(&provider.Error{Status: http.StatusNotFound, Code: "not_found",
			Message: "this is an egress node: it serves /health, /members and /metrics; send provider requests to an ingress"}).Write(w, provider.StyleOpenAI)
	})
}

// Health is the /health answer.
type Health struct {
	Status    string `json:"status"` // ok | draining
	Timestamp string `json:"timestamp"`
	Node      string `json:"node"`
	Role      string `json:"role"`
	Loc       string `json:"loc"`
	Colo      string `json:"colo"`
	Hint      string `json:"hint"`
	Version   string `json:"version"`
	Uptime    string `json:"uptime"`
	Members   int    `json:"members"` // alive members, this node included
	Tunnel    string `json:"tunnel,omitempty"`
}

func (n *Node) serveHealth(w http.ResponseWriter, r *http.Request) {
	h := Health{
		Status:    "ok",
		Timestamp: time.Now().UTC().Format(time.RFC3339),
		Node:      n.cfg.Node.Name,
		Role:      string(n.cfg.Role),
		Loc:       n.cfg.Node.Loc,
		Colo:      n.cfg.Node.Colo,
		Hint:      n.cfg.Node.Hint,
		Version:   version.Version,
		Uptime:    time.Since(n.started).Round(time.Second).String(),
		Members:   len(n.Members().Alive()),
		Tunnel:    n.meta.Tunnel,
	}
	status := http.StatusOK
	if n.draining.Load() {
		// Load balancers stop sending new requests here.
		h.Status, status = "draining", http.StatusServiceUnavailable
	}
	writeJSON(w, status, h)
}

// MemberInfo is one entry of /members.
type MemberInfo struct {
	Name     string `json:"name"`
	Role     string `json:"role"`
	Loc      string `json:"loc"`
	Colo     string `json:"colo"`
	Hint     string `json:"hint"`
	Addr     string `json:"addr"`
	Tunnel   string `json:"tunnel"`
	State    string `json:"state"`
	Version  string `json:"version"`
	Draining bool   `json:"draining"`
	// CertExpiry is when the node's tunnel certificate expires (RFC 3339),
	// absent without tunnel.tls.
	CertExpiry string `json:"cert_expiry,omitempty"`
}

// MembersResponse is the /members answer.
type MembersResponse struct {
	Node    *LocalInfo   `json:"node,omitempty"`
	Members []MemberInfo `json:"members"`
}

// LocalInfo is what the node answering /members says of itself beyond its
// gossip: its load (not gossiped: it changes too often) and its routing.
type LocalInfo struct {
	Name     string       `json:"name"`
	InFlight int64        `json:"in_flight"` // ingress: proxied requests; egress: tunnel streams
	Routing  *RoutingInfo `json:"routing,omitempty"`
}

// RoutingInfo is an ingress's routing section, as it applies now.
type RoutingInfo struct {
	Rules           []RuleInfo `json:"rules"`
	Fallback        string     `json:"fallback"`
	AllowClientHint bool       `json:"allow_client_hint"`
	OnRegionBlock   string     `json:"on_region_block,omitempty"`
}

// RuleInfo is one routing rule: requests at an ingress in Locs leave
// through the egress pool of Hint.
type RuleInfo struct {
	Locs []string `json:"locs"`
	Hint string   `json:"hint"`
}

func (n *Node) serveMembers(w http.ResponseWriter, r *http.Request) {
	filter, err := parseMemberFilter(r.URL.Query())
	if err != nil {
		(&provider.Error{Status: http.StatusBadRequest, Code: "bad_filter", Message: err.Error()}).Write(w, provider.StyleOpenAI)
		return
	}
	resp := MembersResponse{Node: n.localInfo(), Members: memberInfos(n.Members(), filter)}
	writeCompactJSON(w, http.StatusOK, resp)
}

// memberInfos lists the members of snap that filter selects.
func memberInfos(snap *membership.Snapshot, filter memberFilter) []MemberInfo {
	out := make([]MemberInfo, 0, len(snap.Members))
	for _, m := range snap.Members {
		if filter.match(m) {
			out = append(out, memberInfo(m))
		}
	}
	return out
}

func memberInfo(m membership.Member) MemberInfo {
	mi := MemberInfo{
		Name: m.Name, Role: string(m.Role), Loc: m.Loc, Colo: m.Colo, Hint: m.Hint, Addr: m.Addr,
		Tunnel: m.Tunnel, State: string(m.State), Version: m.Version, Draining: m.Draining,
	}
	if m.CertExpiry > 0 {
		mi.CertExpiry = time.Unix(m.CertExpiry, 0).UTC().Format(time.RFC3339)
	}
	return mi
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.MarshalIndent(v, "", "  ")
	writeBody(w, status, b)
}

// writeCompactJSON writes v without indentation: /members at a thousand
// nodes is a quarter to a third smaller (pipe it to jq to read it).
func writeCompactJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	writeBody(w, status, b)
}

func writeBody(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// corsAllowHeaders are the request headers the official SDKs send from a
// browser. Listed by name: "*" does not cover Authorization.
var corsAllowHeaders = []string{
	"authorization", "content-type", "accept", "x-api-key", "anthropic-version", "anthropic-beta",
	"anthropic-dangerous-direct-browser-access", "openai-organization", "openai-project", "openai-beta",
	"x-goog-api-key", "x-goog-api-client", "idempotency-key", "x-mesh-hint",
	"x-stainless-arch", "x-stainless-lang", "x-stainless-os", "x-stainless-package-version",
	"x-stainless-runtime", "x-stainless-runtime-version", "x-stainless-retry-count",
	"x-stainless-timeout", "x-stainless-helper-method", "x-stainless-async",
}

const corsExposeHeaders = "*, X-Mesh-Route, X-Mesh-Egress, X-Mesh-Hint, X-Mesh-Request-Id, X-Mesh-Error, " +
	"x-request-id, request-id, retry-after, openai-processing-ms, openai-version"

// cors answers preflights and lets browsers read every response.
func cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS")
			h.Set("Access-Control-Allow-Headers", allowHeaders(r.Header.Values("Access-Control-Request-Headers")))
			h.Set("Access-Control-Max-Age", "86400")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// allowHeaders lists the SDK headers plus whatever else the browser asks
// for (new x-stainless-* headers appear with SDK releases), keeping only
// valid header names.
func allowHeaders(requested []string) string {
	seen := make(map[string]bool, len(corsAllowHeaders))
	out := append([]string(nil), corsAllowHeaders...)
	for _, h := range out {
		seen[h] = true
	}
	for _, v := range requested {
		for name := range strings.SplitSeq(v, ",") {
			name = strings.ToLower(strings.TrimSpace(name))
			if name != "" && !seen[name] && httpguts.ValidHeaderFieldName(name) {
				seen[name] = true
				out = append(out, name)
			}
		}
	}
	return strings.Join(out, ", ")
}
