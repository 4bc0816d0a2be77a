// Package provider knows the LLM providers llmesh proxies to: their base URLs,
// how a request path maps onto them, which headers may cross, and the JSON
// error shape each provider's SDK understands.
//
// Everything here is pure: no I/O, so the path and header rules can be table
// tested and fuzzed on their own. Both the ingress and the egress apply them,
// so an egress never trusts what an ingress validated.
package provider
