"""Support for tests, bench/ and the playground: never imported by the operator or worker."""
