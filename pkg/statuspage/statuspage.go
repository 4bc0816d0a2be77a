package statuspage

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"net/http"
	"strings"
)

//go:embed page.html page.css page.js
var files embed.FS

// page is the assembled HTML; csp allows its inline style and script by
// hash, fetches from its own origin (/members), and nothing else.
var page, csp = assemble()

func assemble() ([]byte, string) {
	read := func(name string) string {
		b, err := files.ReadFile(name)
		if err != nil {
			panic(err) // embedded: cannot happen
		}
		return string(b)
	}
	css, js := read("page.css"), read("page.js")
	html := strings.Replace(read("page.html"), "/*CSS*/", css, 1)
	html = strings.Replace(html, "/*JS*/", js, 1)
	policy := "default-src 'none'; script-src '" + hash(js) + "'; style-src '" + hash(css) + "'; " +
		"connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
	return []byte(html), policy
}

// hash is a CSP source expression for an inline element's exact text.
func hash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

// Handler serves the page. It holds no data, so it needs no token itself:
// the page asks for the admin token when /members does.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		w.Write(page)
	})
}
