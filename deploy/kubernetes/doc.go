// Package kubernetes holds the tests of the Kubernetes manifests beside it:
// every kustomization is built in-process (krusty), every object decoded
// strictly into the Kubernetes API types, and the llmesh config of every
// pod parsed with the env the pod gets, against the invariants a rollout
// relies on (probes, drain time, security context, names, ports, seeds).
package kubernetes
