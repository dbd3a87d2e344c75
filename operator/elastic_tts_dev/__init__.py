"""Development and test support (local cluster, ...): imported by tests/, bench/ and the playground, never by the operator or the worker."""
