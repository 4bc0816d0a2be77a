package membership

import (
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/llmesh/llmesh/pkg/role"
	"strconv"
	"unicode/utf8"

	"github.com/hashicorp/memberlist"
)

// Meta is what a node gossips about itself.
type Meta struct {
	Role     role.Role `json:"role"`
	Loc      string    `json:"loc"`
	Colo     string    `json:"colo"`
	Hint     string    `json:"hint"`
	Tunnel   string    `json:"tunnel,omitempty"` // egress tunnel address host:port; "" for ingress
	Version  string    `json:"version"`          // software version
	Draining bool      `json:"draining"`
	// CertExpiry is when the node's tunnel certificate expires, Unix
	// seconds; 0 without tunnel.tls (or from a node too old to say).
	CertExpiry int64 `json:"cert_expiry,omitempty"`
	// Start is new at each start of the node's process (random). A node
	// that restarts before its peers noticed it was gone gossips the same
	// name, address and settings: without Start its metadata would not
	// change, memberlist would report nothing (a restarted node refutes
	// only metadata that differs from its own), and an ingress would not
	// know that its connection to the old process is dead.
	Start string `json:"-"`
}

var (
	// ErrMetaTooLarge reports metadata whose encoding exceeds memberlist's
	// limit; memberlist would panic on it.
	ErrMetaTooLarge = fmt.Errorf("membership: metadata larger than %d bytes", memberlist.MetaMaxSize)
	// ErrMetaInvalid reports metadata that cannot be decoded.
	ErrMetaInvalid = errors.New("membership: invalid metadata")
)

// Encoding, version 1:
//
//	version byte (1) | flags byte | six fields, each uvarint length + UTF-8 bytes
//	[| cert expiry: uvarint length + Unix seconds in decimal, "" when unset]
//	[| start: uvarint length + the start value]
//
// Readers ignore unknown flag bits and bytes after the last field they know,
// so later fields can be appended without bumping the version (old nodes keep
// routing to new ones during a rolling upgrade). Bump the version only for an
// incompatible change.
const metaVersion = 1

const (
	flagDraining = 1 << 0
	flagLeaving  = 1 << 1 // set by Leave, so peers can tell "left" from "dead"
)

const (
	// metaFields are the fields every version-1 encoding has.
	metaFields = 6
	// metaOptional are appended fields, in order, written up to the last
	// one set (an earlier one unset is written empty).
	metaOptional = 2
)

func (m Meta) fields() []string {
	f := []string{string(m.Role), m.Loc, m.Colo, m.Hint, m.Tunnel, m.Version}
	var expiry string
	if m.CertExpiry != 0 {
		expiry = strconv.FormatInt(m.CertExpiry, 10)
	}
	optional := [metaOptional]string{expiry, m.Start}
	set := 0
	for i, o := range optional {
		if o != "" {
			set = i + 1
		}
	}
	return append(f, optional[:set]...)
}

// Encode returns the gossip encoding of m: a version byte and a compact
// encoding. It returns ErrMetaTooLarge above memberlist.MetaMaxSize.
func (m Meta) Encode() ([]byte, error) {
	return m.encode(false)
}

func (m Meta) encode(leaving bool) ([]byte, error) {
	fields := m.fields()
	size := 2
	for _, f := range fields {
		// Size first, so a huge field is rejected without being copied.
		size += uvarintLen(uint64(len(f))) + len(f)
	}
	if size > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrMetaTooLarge, size)
	}
	for _, f := range fields {
		if !utf8.ValidString(f) {
			return nil, fmt.Errorf("%w: field is not UTF-8", ErrMetaInvalid)
		}
	}
	var flags byte
	if m.Draining {
		flags |= flagDraining
	}
	if leaving {
		flags |= flagLeaving
	}
	b := make([]byte, 0, size)
	b = append(b, metaVersion, flags)
	for _, f := range fields {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b, nil
}

// decodeMeta decodes what Encode produced, and whether the node is leaving.
// Unknown versions, truncated or garbled input return an error.
func decodeMeta(b []byte) (m Meta, leaving bool, err error) {
	switch {
	case len(b) > memberlist.MetaMaxSize:
		return Meta{}, false, fmt.Errorf("%w: %d bytes", ErrMetaTooLarge, len(b))
	case len(b) == 0:
		return Meta{}, false, fmt.Errorf("%w: empty", ErrMetaInvalid)
	case b[0] != metaVersion:
		return Meta{}, false, fmt.Errorf("%w: unknown version %d", ErrMetaInvalid, b[0])
	case len(b) < 2:
		return Meta{}, false, fmt.Errorf("%w: truncated", ErrMetaInvalid)
	}
	flags := b[1]
	rest := b[2:]
	var fields [metaFields + metaOptional]string
	for i := range fields {
		if i >= metaFields && len(rest) == 0 {
			break // an optional field not set, or a node that does not know it
		}
		n, k := binary.Uvarint(rest)
		if k <= 0 {
			return Meta{}, false, fmt.Errorf("%w: bad length of field %d", ErrMetaInvalid, i)
		}
		rest = rest[k:]
		if n > uint64(len(rest)) {
			return Meta{}, false, fmt.Errorf("%w: field %d truncated", ErrMetaInvalid, i)
		}
		f := rest[:n]
		if !utf8.Valid(f) {
			return Meta{}, false, fmt.Errorf("%w: field %d is not UTF-8", ErrMetaInvalid, i)
		}
		fields[i] = string(f)
		rest = rest[n:]
	}
	var expiry int64
	if f := fields[metaFields]; f != "" {
		if expiry, err = strconv.ParseInt(f, 10, 64); err != nil || expiry <= 0 {
			return Meta{}, false, fmt.Errorf("%w: bad certificate expiry %q", ErrMetaInvalid, f)
		}
	}
	m = Meta{
		Role:     role.Role(fields[0]),
		Loc:      fields[1],
		Colo:     fields[2],
		Hint:     fields[3],
		Tunnel:   fields[4],
		Version:  fields[5],
		Draining: flags&flagDraining != 0,

		CertExpiry: expiry,
		Start:      fields[metaFields+1],
	}
	return m, flags&flagLeaving != 0, nil
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}
