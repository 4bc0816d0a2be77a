package membership

import (
	"github.com/llmesh/llmesh/pkg/role"

	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestMetaRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		meta Meta
	}{
		{"zero", Meta{}},
		{"ingress", Meta{Role: "ingress", Loc: "HK", Colo: "HKG", Hint: "apac", Version: "v1.2.3"}},
		{"egress draining", Meta{Role: "egress", Loc: "US", Colo: "SJC", Hint: "wnam", Tunnel: "10.0.0.7:9443", Version: "dev", Draining: true}},
		{"unicode", Meta{Role: "egress", Loc: "JP", Colo: "東京", Hint: "apac"}},
		{"long field", Meta{Role: "egress", Version: strings.Repeat("v", 300)}},
		{"certificate expiry", Meta{Role: "egress", Hint: "wnam", Tunnel: "10.0.0.7:9443", CertExpiry: 1830297600}},
		{"start", Meta{Role: "egress", Hint: "wnam", Tunnel: "10.0.0.7:9443", Start: "3k0q1zv8x2m4"}},
		{"start without certificate", Meta{Role: "egress", Start: "s"}},
		{"both", Meta{Role: "egress", CertExpiry: 1830297600, Start: "s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.meta.Encode()
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if b[0] != metaVersion {
				t.Errorf("version byte = %d, want %d", b[0], metaVersion)
			}
			got, _, err := decodeMeta(b)
			if err != nil {
				t.Fatalf("decodeMeta: %v", err)
			}
			if got != tt.meta {
				t.Errorf("round trip = %+v, want %+v", got, tt.meta)
			}
		})
	}
}

func TestMetaLeavingFlag(t *testing.T) {
	m := Meta{Role: "egress", Hint: "weur"}
	b, err := m.encode(true)
	if err != nil {
		t.Fatal(err)
	}
	got, leaving, err := decodeMeta(b)
	if err != nil || !leaving || got != m {
		t.Errorf("decodeMeta = %+v, %v, %v; want %+v, true, nil", got, leaving, err, m)
	}
}

// TestMetaCertExpiry: the expiry is an optional seventh field, so a node
// without it (or an older node) encodes exactly as before, and a garbled
// one is refused like any other garbled field.
func TestMetaCertExpiry(t *testing.T) {
	six, err := Meta{Role: "egress", Hint: "wnam"}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if want := []byte{1, 0, 6, 'e', 'g', 'r', 'e', 's', 's', 0, 0, 4, 'w', 'n', 'a', 'm', 0, 0}; !bytes.Equal(six, want) {
		t.Errorf("encoding without expiry = %v, want the six-field one %v", six, want)
	}
	seven, err := Meta{Role: "egress", Hint: "wnam", CertExpiry: 42}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if want := append(six, 2, '4', '2'); !bytes.Equal(seven, want) {
		t.Errorf("encoding with expiry = %v, want %v", seven, want)
	}
	// Bytes after the fields this version knows are ignored (a later field).
	if m, _, err := decodeMeta(append(seven, 3, 'x', 'y', 'z')); err != nil || m.CertExpiry != 42 {
		t.Errorf("decode with a later field = %+v, %v", m, err)
	}
	for _, bad := range []string{"x", "-5", "0", "99999999999999999999"} {
		b := append(append(append([]byte(nil), six...), byte(len(bad))), bad...)
		if _, _, err := decodeMeta(b); !errors.Is(err, ErrMetaInvalid) {
			t.Errorf("decode of expiry %q: error = %v, want ErrMetaInvalid", bad, err)
		}
	}
}

func TestMetaTooLarge(t *testing.T) {
	// 2 header bytes + 6 length bytes (one of them 2 bytes long) + payload.
	fits := Meta{Version: strings.Repeat("x", 512-2-7)}
	if b, err := fits.Encode(); err != nil || len(b) != 512 {
		t.Fatalf("Encode at the limit = %d bytes, %v; want 512, nil", len(b), err)
	}
	tests := []Meta{
		{Version: strings.Repeat("x", 512-2-7+1)},
		{Role: role.Role(strings.Repeat("r", 100)), Loc: strings.Repeat("l", 100), Colo: strings.Repeat("c", 100),
			Hint: strings.Repeat("h", 100), Tunnel: strings.Repeat("t", 100), Version: strings.Repeat("v", 100)},
		{Tunnel: strings.Repeat("t", 1<<20)},
	}
	for _, m := range tests {
		if _, err := m.Encode(); !errors.Is(err, ErrMetaTooLarge) {
			t.Errorf("Encode(%d-byte fields) error = %v, want ErrMetaTooLarge", len(m.Version)+len(m.Tunnel), err)
		}
	}
	if _, _, err := decodeMeta(make([]byte, 513)); !errors.Is(err, ErrMetaTooLarge) {
		t.Errorf("decodeMeta(513 bytes) error = %v, want ErrMetaTooLarge", err)
	}
}

func TestMetaNotUTF8(t *testing.T) {
	if _, err := (Meta{Loc: "\xff"}).Encode(); !errors.Is(err, ErrMetaInvalid) {
		t.Errorf("Encode(invalid UTF-8) error = %v, want ErrMetaInvalid", err)
	}
}

func TestDecodeMetaErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{"nil", nil},
		{"empty", []byte{}},
		{"version only", []byte{1}},
		{"version 0", []byte{0, 0, 0, 0, 0, 0, 0, 0}},
		{"version 2", []byte{2, 0, 0, 0, 0, 0, 0, 0}},
		{"version 255", []byte{255, 0, 0, 0, 0, 0, 0, 0}},
		{"missing fields", []byte{1, 0, 0, 0, 0}},
		{"field longer than input", []byte{1, 0, 5, 'a', 'b'}},
		{"huge length", []byte{1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"unterminated varint", []byte{1, 0, 0x80}},
		{"not UTF-8", []byte{1, 0, 1, 0xff, 0, 0, 0, 0, 0}},
		{"json", []byte(`{"role":"egress"}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if m, _, err := decodeMeta(tt.in); err == nil {
				t.Errorf("decodeMeta(%q) = %+v, want error", tt.in, m)
			}
		})
	}
}

func TestDecodeMetaIgnoresAppendedFields(t *testing.T) {
	want := Meta{Role: "egress", Hint: "apac", Draining: true, Start: "s1"}
	b, err := want.Encode()
	if err != nil {
		t.Fatal(err)
	}
	// A later revision may append fields (after the optional ones: the
	// certificate expiry, here empty, and the start) and flag bits.
	b[1] |= 0x80
	b = append(b, 0, 3, 'n', 'e', 'w')
	got, _, err := decodeMeta(b)
	if err != nil || got != want {
		t.Errorf("decodeMeta = %+v, %v; want %+v, nil", got, err, want)
	}
}

// A node of an earlier version sends six fields, without start.
func TestDecodeMetaWithoutStart(t *testing.T) {
	old := []byte{1, flagDraining, 6, 'e', 'g', 'r', 'e', 's', 's', 2, 'U', 'S', 0, 4, 'w', 'n', 'a', 'm', 0, 2, 'v', '1'}
	want := Meta{Role: "egress", Loc: "US", Hint: "wnam", Version: "v1", Draining: true}
	got, _, err := decodeMeta(old)
	if err != nil || got != want {
		t.Errorf("decodeMeta = %+v, %v; want %+v, nil", got, err, want)
	}
}

func FuzzDecodeMeta(f *testing.F) {
	for _, m := range []Meta{
		{},
		{Role: "egress", Loc: "US", Colo: "IAD", Hint: "enam", Tunnel: "127.0.0.1:9443", Version: "v1", Draining: true},
		{Role: "ingress", Loc: "HK", Colo: "HKG", Hint: "apac"},
		{Role: "ingress", Loc: "HK", CertExpiry: 1830297600},
	} {
		b, err := m.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add([]byte{2, 0})
	f.Add([]byte{1, 0, 0x80, 0x80})
	f.Add([]byte{1, 3, 1, 'a', 1, 'b', 0, 0, 0, 0, 9, 9})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, _, err := decodeMeta(b)
		if err != nil {
			return
		}
		enc, err := m.Encode()
		if err != nil {
			t.Fatalf("Encode(decodeMeta(%q)) = %v", b, err)
		}
		again, _, err := decodeMeta(enc)
		if err != nil || again != m {
			t.Fatalf("round trip of %+v = %+v, %v", m, again, err)
		}
		enc2, _ := again.Encode()
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not canonical: %q vs %q", enc, enc2)
		}
	})
}
