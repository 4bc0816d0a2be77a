package config

import (
	"maps"
	"reflect"
	"slices"
	"strings"
)

// restartOnly are the keys a running node cannot change: what it listens
// on, what it is in the mesh (name, location, role, certificate, gossip
// keys), and what its servers were built with. A key names its whole
// subtree.
var restartOnly = []string{
	"node",
	"http.listen", "http.read_header_timeout", "http.idle_timeout", "http.max_header_bytes", "http.max_streams_per_conn",
	"tunnel",
	"gossip",
	"admin",
	"log.format",
	"routing.retry_body_budget",
	"reload",
}

// RestartOnly reports whether the dotted key (as Changes lists it) takes
// effect only when the node restarts.
func RestartOnly(key string) bool {
	for _, r := range restartOnly {
		if key == r || strings.HasPrefix(key, r+".") || strings.HasPrefix(key, r+"[") {
			return true
		}
	}
	return false
}

// Changes lists the keys a reload changes, by dotted path; never a value.
type Changes struct {
	Applied []string // changed, and in effect for new requests
	Restart []string // changed in the file, but kept as they were until a restart
}

// Empty reports whether nothing changed.
func (c Changes) Empty() bool { return len(c.Applied) == 0 && len(c.Restart) == 0 }

// Update returns what a node running on rt runs with once it has reloaded
// next: next, except that every key a running node cannot change keeps
// rt's value; and which keys changed. Both must be checked Runtimes of the
// same role: the result is valid because no check ties a key that reloads
// to one that does not. Update changes neither rt nor next.
func (rt *Runtime) Update(next *Runtime) (*Runtime, Changes) {
	out := *next
	var ch Changes
	diff(reflect.ValueOf(&rt.Config).Elem(), reflect.ValueOf(&out.Config).Elem(), "", false, &ch)
	out.Keyring = rt.Keyring // gossip: restart only
	// A key file's contents change without the config changing.
	for _, name := range slices.Sorted(maps.Keys(out.Endpoints)) {
		key := "providers." + name + ".api_key"
		if old, ok := rt.Endpoints[name]; ok && old.APIKey != out.Endpoints[name].APIKey && !slices.Contains(ch.Applied, key) {
			ch.Applied = append(ch.Applied, key)
		}
	}
	slices.Sort(ch.Applied)
	return &out, ch
}

// diff compares old with next (both of one type, next settable) at the
// dotted path, adding each differing key to ch and, under a key that needs
// a restart (restart), putting old's value back into next. It descends
// into structs and into maps of structs (providers); anything else is
// compared whole.
func diff(old, next reflect.Value, path string, restart bool, ch *Changes) {
	restart = restart || RestartOnly(path)
	switch {
	case old.Kind() == reflect.Struct && old.Type() != secretType:
		for i := range old.NumField() {
			if name := yamlName(old.Type().Field(i)); name != "" && name != "-" {
				diff(old.Field(i), next.Field(i), join(path, name), restart, ch)
			}
		}
	case old.Kind() == reflect.Map && old.Type().Elem().Kind() == reflect.Struct && !restart:
		for _, k := range unionKeys(old, next) {
			o, n := old.MapIndex(k), next.MapIndex(k)
			key := join(path, k.String())
			if !o.IsValid() || !n.IsValid() {
				ch.Applied = append(ch.Applied, key) // added or removed
				continue
			}
			// Map values are not settable: compare a copy (nothing under
			// a provider needs a restart).
			nc := reflect.New(n.Type()).Elem()
			nc.Set(n)
			diff(o, nc, key, false, ch)
		}
	case reflect.DeepEqual(old.Interface(), next.Interface()):
	case restart:
		ch.Restart = append(ch.Restart, path)
		next.Set(old)
	default:
		ch.Applied = append(ch.Applied, path)
	}
}

func unionKeys(a, b reflect.Value) []reflect.Value {
	seen := map[string]reflect.Value{}
	for _, m := range []reflect.Value{a, b} {
		for _, k := range m.MapKeys() {
			seen[k.String()] = k
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	slices.Sort(names)
	keys := make([]reflect.Value, len(names))
	for i, n := range names {
		keys[i] = seen[n]
	}
	return keys
}
