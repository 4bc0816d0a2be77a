// Package config loads the YAML configuration of an llmesh node.
//
// A file is read in four steps: it is parsed into a YAML node tree; every
// value is checked against the schema (unknown keys and wrongly typed values
// are errors) and its ${NAME} references are replaced from the environment;
// the tree is decoded on top of [Default] so the file only overrides what it
// names; and [Config.Validate] normalises the result, fills derived defaults
// and reports every problem at once. Each error names the file and the dotted
// key, so "cfg.yaml: routing.fallback: ..." points at what to fix.
//
// Credentials are held in [Secret], which never prints its value.
package config
