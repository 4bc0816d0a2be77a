// Package wan emulates a long network link on one machine, for measuring
// the mesh across an ocean (make bench-wan).
//
// This kernel has no sch_netem, so the link lives in user space: [Start]
// creates two network namespaces, the test's own hosts A and B, each with a
// TUN device holding one private address (10.201.0.1 in A, 10.201.0.2 in
// B). A [Link] in this process reads every IP packet one side sends and
// writes it into the other after a one-way delay, behind a bottleneck of a
// given rate with a bounded queue (tail drop), and loses a seeded random
// fraction of them. Nothing reaches any other address: the namespaces have
// no other interface but their own loopback.
//
// Processes run inside a host with [Host.Command] (ip netns exec); this
// process dials and listens inside one with [Host.Dial] and [Host.Listen]
// (a socket keeps the namespace it was created in).
//
// It needs root, the ip command and /dev/net/tun; [Check] says which is
// missing so tests can skip.
package wan
