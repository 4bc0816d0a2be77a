package provider

import (
	"errors"
	"net/url"
	"strings"
)

// ErrBadPath is wrapped by every path rejection.
var ErrBadPath = errors.New("malformed path")

// PathError says why a request path was refused.
type PathError struct{ Reason string }

func (e *PathError) Error() string { return "malformed path: " + e.Reason }
func (e *PathError) Unwrap() error { return ErrBadPath }

func badPath(reason string) error { return &PathError{Reason: reason} }

// Path is a request path below the provider prefix, in decoded and escaped
// form. Both are empty or start with "/".
type Path struct {
	Path    string // decoded
	RawPath string // as the client escaped it
}

// SplitPath splits an escaped request path "/{provider}/{rest}" into the
// provider name and the rest, refusing anything that could make the upstream
// URL point elsewhere than below the provider's base path, for us or for a
// server behind the provider that reads paths more loosely: dot segments
// (also percent-encoded, or followed by ';' parameters as in "..;"), empty
// segments, encoded '/' or '\', backslashes, control characters, malformed
// escapes and a '%' left after decoding (double encoding, "%252e"). A
// trailing slash is kept.
func SplitPath(escaped string) (name string, rest Path, err error) {
	if escaped == "" || escaped[0] != '/' {
		return "", Path{}, badPath("path must start with /")
	}
	for i := 0; i < len(escaped); i++ {
		if c := escaped[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return "", Path{}, badPath("control character or backslash in path")
		}
	}
	escaped = escaped[1:]
	name, raw, hasRest := strings.Cut(escaped, "/")
	if name == "" {
		return "", Path{}, badPath("empty path segment")
	}
	if dec, err := url.PathUnescape(name); err != nil {
		return "", Path{}, badPath("invalid percent-encoding")
	} else if err := checkSegment(dec); err != nil {
		return "", Path{}, err
	}
	if !hasRest {
		return name, Path{}, nil
	}
	var decoded strings.Builder
	decoded.Grow(len(raw) + 1)
	for seg := range strings.SplitSeq(raw, "/") {
		dec, err := url.PathUnescape(seg)
		if err != nil {
			return "", Path{}, badPath("invalid percent-encoding")
		}
		if err := checkSegment(dec); err != nil {
			return "", Path{}, err
		}
		decoded.WriteByte('/')
		decoded.WriteString(dec)
	}
	// Empty segments: "//" anywhere, but a single trailing "/" is fine.
	if strings.Contains(raw, "//") || strings.HasPrefix(raw, "/") {
		return "", Path{}, badPath("empty path segment")
	}
	return name, Path{Path: decoded.String(), RawPath: "/" + raw}, nil
}

// checkSegment checks one decoded path segment.
func checkSegment(dec string) error {
	// Servers that honour path parameters (Tomcat, Jetty, Spring) drop
	// everything from ';' to the end of the segment: "..;x" is "..".
	switch base, _, _ := strings.Cut(dec, ";"); base {
	case ".", "..":
		return badPath("dot segment")
	case "":
		if dec != "" {
			return badPath("empty path segment before ';'")
		}
	}
	for i := 0; i < len(dec); i++ {
		switch c := dec[i]; {
		case c == '/' || c == '\\':
			return badPath("encoded slash or backslash")
		case c < 0x20 || c == 0x7f:
			return badPath("control character in path")
		case c == '%':
			// A server that decodes twice would read "%2e", "%2f", "%5c",
			// "%25" (or IIS's "%u002e") here as the character itself. No
			// provider path needs a literal '%' (model names, file and batch
			// ids, Gemini's "models/x:generateContent" never hold one), so
			// any '%' is refused rather than a list of escapes.
			return badPath("percent sign after decoding (double encoding)")
		}
	}
	return nil
}
