// Fetches the Gateway API CRDs (the standard channel's YAML, shipped in the module)
// through the Go module proxy, so the real-cluster tier serves HTTPRoute as a cluster
// with Gateway API installed does. A module of its own: requiring gateway-api beside the
// control plane would upgrade kube-openapi and structured-merge-diff under it.
module github.com/elastic-tts/elastic-tts/tests/cluster/gobuild/gatewayapi

go 1.26.0

require sigs.k8s.io/gateway-api v1.6.3
