package config

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

var (
	secretType    = reflect.TypeFor[Secret]()
	accessKeyType = reflect.TypeFor[AccessKey]()
	durationType  = reflect.TypeFor[time.Duration]()
)

// walker checks a YAML tree against the Config schema before it is decoded,
// and expands ${NAME} in its values. Doing both in one walk gives every
// problem a line and a dotted key, which yaml's own decoder errors lack, and
// tells which values are Secrets so their text never reaches an error.
//
// The decoding itself is yaml's (leaf asks yaml whether a scalar decodes,
// and Node.Decode resolves aliases and merge keys). The walk adds only what
// yaml cannot do: Node.Decode cannot refuse unknown keys, and its errors
// carry no dotted key and quote values (see leaf).
type walker struct {
	file      string
	lookupEnv func(string) (string, bool)
	errs      []error
	expanded  map[*yaml.Node]bool // a scalar reached again through an alias is expanded once
	active    map[*yaml.Node]bool // alias targets being walked, to stop cycles
}

func (w *walker) fail(n *yaml.Node, key, format string, args ...any) {
	w.errs = append(w.errs, &FieldError{File: w.file, Line: n.Line, Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.AliasNode {
		target := n.Alias
		if target == nil || w.active[target] {
			w.fail(n, path, "alias refers to itself")
			return
		}
		w.active[target] = true
		w.walk(target, t, path)
		delete(w.active, target)
		return
	}
	secret := holdsSecret(t)
	if n.Kind == yaml.ScalarNode {
		w.expand(n, path, secret)
		if n.ShortTag() == "!!null" {
			return // leaves the default in place
		}
	}
	switch {
	case t == durationType:
		w.leaf(n, t, path)
	case t == accessKeyType && n.Kind == yaml.ScalarNode:
		w.leaf(n, secretType, path) // the short form: the key alone
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			w.fail(n, path, "must be a mapping (got %s)", w.describe(n, secret))
			return
		}
		w.pairs(n, t, path, func(k, v *yaml.Node, key string) {
			f, ok := fieldByKey(t, k.Value)
			if !ok {
				msg := "unknown key"
				if key == path {
					msg = "unknown key (not repeated: here it could be a secret)"
				}
				w.fail(k, key, "%s; known keys are %s", msg, strings.Join(keysOf(t), ", "))
				return
			}
			w.walk(v, f.Type, key)
		})
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.fail(n, path, "must be a mapping (got %s)", w.describe(n, secret))
			return
		}
		w.pairs(n, t, path, func(k, v *yaml.Node, key string) {
			w.walk(v, t.Elem(), key)
		})
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.fail(n, path, "must be a list (got %s)", w.describe(n, secret))
			return
		}
		for i, e := range n.Content {
			w.walk(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	default:
		w.leaf(n, t, path)
	}
}

// pairs calls each for every key and value of a mapping, with the key's
// dotted path (see keyPath), following merge keys (<<) into the mappings
// they name, and reports duplicate keys.
func (w *walker) pairs(n *yaml.Node, t reflect.Type, path string, each func(k, v *yaml.Node, key string)) {
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			w.fail(k, path, "keys must be plain strings")
			continue
		}
		if k.ShortTag() == "!!merge" {
			w.merge(v, t, path)
			continue
		}
		key := keyPath(t, path, k.Value)
		// yaml finds duplicates too, but only while decoding, after this
		// walk has passed, and without the dotted key: "line 3: mapping
		// key "name" already defined at line 2".
		if first, dup := seen[k.Value]; dup {
			w.fail(k, key, "duplicate key (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		each(k, v, key)
	}
}

func (w *walker) merge(v *yaml.Node, t reflect.Type, path string) {
	target := v
	if v.Kind == yaml.AliasNode {
		target = v.Alias
	}
	switch {
	case target != nil && target.Kind == yaml.MappingNode:
		w.walk(v, t, path)
	case target != nil && target.Kind == yaml.SequenceNode && v.Kind != yaml.AliasNode:
		for _, e := range v.Content {
			w.merge(e, t, path)
		}
	default:
		w.fail(v, path, "<< must name a mapping or a list of mappings")
	}
}

// leaf checks that a scalar decodes into t. yaml's own type error would
// quote the value ("cannot unmarshal !!str `sk-LEAK...` into ..."): its
// first 7 characters may be a secret, or come from the environment.
func (w *walker) leaf(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.ScalarNode && n.Decode(reflect.New(t).Interface()) == nil {
		return
	}
	w.fail(n, path, "%s (got %s)", expectation(t), w.describe(n, holdsSecret(t)))
}

// expand replaces each ${NAME} in a scalar from the environment, once.
// Only values are expanded, never keys.
func (w *walker) expand(n *yaml.Node, path string, secret bool) {
	if w.expanded[n] || !strings.Contains(n.Value, "${") {
		return
	}
	w.expanded[n] = true
	s := n.Value
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			break
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			break // no closing brace: not a reference
		}
		ref, name := s[i:i+2+end+1], s[i+2:i+2+end]
		b.WriteString(s[:i])
		s = s[i+len(ref):]
		if !validEnvName(name) {
			// ${X:-default} and friends would otherwise stay in the value
			// as literal text, which is never what was meant.
			if secret {
				w.fail(n, path, "unsupported ${...} reference; only ${NAME} is expanded")
			} else {
				w.fail(n, path, "unsupported reference %s; only ${NAME} is expanded", ref)
			}
			b.WriteString(ref)
			continue
		}
		v, ok := w.lookupEnv(name)
		if !ok {
			w.fail(n, path, "environment variable %s is not set", name)
		}
		b.WriteString(v)
	}
	b.WriteString(s)
	n.Value = b.String()
	// A plain scalar is typed by what it now says (insecure: ${X} with
	// X=true is a bool); quoted or tagged ones stay as they were. An empty
	// expansion stays a string rather than becoming null.
	if n.Style&(yaml.TaggedStyle|yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
		n.Tag = ""
		if n.ShortTag() == "!!null" {
			n.Tag = "!!str"
		}
	}
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', 'A' <= r && r <= 'Z', 'a' <= r && r <= 'z':
		case '0' <= r && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// holdsSecret reports whether a value of type t is or contains a Secret:
// what is found in its place is never quoted in an error.
func holdsSecret(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.String:
		return t == secretType
	case reflect.Slice, reflect.Map, reflect.Pointer:
		return holdsSecret(t.Elem())
	case reflect.Struct:
		for f := range t.Fields() {
			if holdsSecret(f.Type) {
				return true
			}
		}
	}
	return false
}

// keyPath is path.key, or path alone when key could be a secret. In a
// section with a secret of its own (tunnel, gossip, auth, admin, a provider,
// an access key) a secret may be written where a key goes: {team-a-secret},
// or - team-a-secret: [openai] in access_keys. There a key is repeated only
// when it is a near miss of a known key (a typo), which no secret is.
func keyPath(t reflect.Type, path, key string) string {
	if t.Kind() != reflect.Struct || !ownsSecret(t) {
		return join(path, key)
	}
	for _, known := range keysOf(t) {
		limit := max(1, len(known)/3)
		if abs(len(key)-len(known)) <= limit && editDistance(strings.ToLower(key), known) <= limit {
			return join(path, key)
		}
	}
	return path
}

// ownsSecret reports whether a field of struct t is a secret or a list of them.
func ownsSecret(t reflect.Type) bool {
	for f := range t.Fields() {
		ft := f.Type
		if ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		if ft == secretType || ft == accessKeyType {
			return true
		}
	}
	return false
}

func abs(n int) int { return max(n, -n) }

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return name
}

func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for f := range t.Fields() {
		if name := yamlName(f); name != "" && name != "-" && name == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func keysOf(t reflect.Type) []string {
	var keys []string
	for f := range t.Fields() {
		if name := yamlName(f); name != "" && name != "-" {
			keys = append(keys, name)
		}
	}
	return keys
}

func expectation(t reflect.Type) string {
	if t == durationType {
		return "must be a duration such as 30s or 10m"
	}
	switch t.Kind() {
	case reflect.String:
		return "must be a string"
	case reflect.Bool:
		return "must be true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "must be an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "must be an integer from 0 to " + strconv.FormatUint(math.MaxUint64>>(64-t.Bits()), 10)
	}
	return "must be a " + t.String()
}

// describe names what a node holds, for "(got ...)". A secret's text is
// never shown, nor a value taken from the environment: any variable may hold
// one.
func (w *walker) describe(n *yaml.Node, secret bool) string {
	if w.expanded[n] && !secret && n.Kind == yaml.ScalarNode {
		return "a value from the environment"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if secret {
			return scalarKind(n)
		}
		return strconv.Quote(n.Value)
	}
	return "nothing"
}

// scalarKind names what kind of scalar n is, never what it says.
func scalarKind(n *yaml.Node) string {
	switch n.ShortTag() {
	case "!!str":
		return "a string"
	case "!!int":
		return "an integer"
	case "!!float":
		return "a number"
	case "!!bool":
		return "true or false"
	case "!!null":
		return "nothing"
	}
	return "a tagged value"
}
