// Package routing decides, for one request, whether the ingress calls the
// provider itself or hands the exchange to an egress node, and which one.
//
// Decide is a pure function of the policy, the client's hint and the live
// candidates, so every routing rule and fallback is covered by table tests.
package routing
