// Package metrics defines llmesh's Prometheus metrics (all named llmesh_*)
// on a registry of their own per node, so several nodes can run in one
// process (tests) without colliding.
package metrics
