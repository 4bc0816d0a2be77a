// Package compose holds the tests of the docker compose mesh beside it:
// compose.yaml and the node configs are parsed and checked, and, where a
// Docker daemon runs and LLMESH_DOCKER=1 asks for it, the mesh is started
// for real and a request sent through each ingress region.
package compose
