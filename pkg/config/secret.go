package config

import (
	"fmt"
	"io"
	"log/slog"
	"strconv"
)

const redacted = "[redacted]"

// Secret holds a credential. Every way of printing or encoding it (fmt verbs,
// slog, JSON, text) gives "[redacted]", or "" when it is empty, so a config
// can be logged whole. Reveal returns the value.
type Secret string

// Reveal returns the credential itself.
func (s Secret) Reveal() string { return string(s) }

func (s Secret) masked() string {
	if s == "" {
		return ""
	}
	return redacted
}

func (s Secret) String() string   { return s.masked() }
func (s Secret) GoString() string { return s.masked() }

// Format covers every fmt verb, %x and %d included, which String alone does not.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		io.WriteString(f, strconv.Quote(s.masked()))
		return
	}
	io.WriteString(f, s.masked())
}

func (s Secret) LogValue() slog.Value { return slog.StringValue(s.masked()) }

func (s Secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.masked())), nil }

// MarshalText also redacts YAML output: the YAML encoder uses it.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.masked()), nil }
