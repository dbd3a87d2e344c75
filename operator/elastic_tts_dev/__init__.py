"""Development and test support: never imported by the operator or the worker."""
