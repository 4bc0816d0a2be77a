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
func (s Secret) Format(f fmt.State, verb rune) { formatMasked(f, verb, s.masked()) }

func formatMasked(f fmt.State, verb rune, masked string) {
	if verb == 'q' {
		io.WriteString(f, strconv.Quote(masked))
		return
	}
	io.WriteString(f, masked)
}

func (s Secret) LogValue() slog.Value { return slog.StringValue(s.masked()) }

func (s Secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.masked())), nil }

// MarshalText also redacts YAML output: the YAML encoder uses it.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.masked()), nil }

// Keyring holds decoded gossip keys, primary first. Like a Secret, it prints
// and encodes as "[redacted]", or "" when empty.
type Keyring [][]byte

func (k Keyring) masked() string {
	if len(k) == 0 {
		return ""
	}
	return redacted
}

func (k Keyring) String() string                { return k.masked() }
func (k Keyring) GoString() string              { return k.masked() }
func (k Keyring) Format(f fmt.State, verb rune) { formatMasked(f, verb, k.masked()) }
func (k Keyring) LogValue() slog.Value          { return slog.StringValue(k.masked()) }
func (k Keyring) MarshalJSON() ([]byte, error)  { return []byte(strconv.Quote(k.masked())), nil }
func (k Keyring) MarshalText() ([]byte, error)  { return []byte(k.masked()), nil }
