"""The edges: the only modules that import Kubernetes and Prometheus client libraries.

`kube.PykubeCluster` implements the reconcile layer's `Cluster` port with pykube-ng's
HTTP client (it reads kubeconfig or the in-cluster service account, like kopf's own
login); `prometheus.PrometheusLoadSource` implements `LoadSource` with prometheus-api-client
(and holds every PromQL query the operator runs).
"""
