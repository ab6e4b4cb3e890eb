// Package mesh holds the parts of sidecar mode that run in a workload's
// network namespace but belong to neither the proxy nor the control plane:
// iptables builds and applies the capture rules an init container installs
// (`metamesh iptables`), and netnstest gives tests network namespaces to
// play pods in.
package mesh
