// Package config loads the YAML configuration of an llmesh node.
//
// A file is read in five steps: it is parsed into a YAML node tree; every
// value is checked against the schema (unknown keys and wrongly typed values
// are errors) and its ${NAME} references are replaced from the environment;
// the tree is decoded on top of [Default] so the file only overrides what it
// names (each provider over its built-in, field by field); [Config.Validate]
// normalises the result, fills derived defaults and checks every value,
// reading no file; and [Config.Runtime] reads the files the config names
// (api_key_file, the tunnel's TLS files) and returns a [Runtime]: the
// checked values with what they name read and decoded, which is what a node
// runs with. [Load] and [Parse] do all five and report every problem at
// once. Each error names the file and the dotted key, so "cfg.yaml:
// routing.fallback: ..." points at what to fix.
//
// Credentials are held in [Secret], and decoded gossip keys in [Keyring],
// which never print their values.
package config
