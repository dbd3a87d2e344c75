"""Development and test support: for tests/, bench/ and the playground; never shipped."""
