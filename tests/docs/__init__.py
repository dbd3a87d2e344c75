"""The facts the README and docs/ name, checked against the code."""
