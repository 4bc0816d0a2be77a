// Package statuspage serves the status page of a node: one small HTML page,
// its style and script inline, that polls /members and shows the mesh
// grouped by region hint. Every value on the page comes from gossip, which
// any holder of the gossip key can write, so the script builds the page with
// textContent and DOM calls only (never innerHTML), and a strict
// Content-Security-Policy allows that one inline script and style, by hash,
// and nothing else.
package statuspage
