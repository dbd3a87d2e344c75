"""The README's walk-through blocks are found and split as the shell splits them, and a
walk fails on a command it does not know. The walks themselves run in tests/cluster
(test_newcomer.py: Install) and tests/playground (the quick start)."""

from __future__ import annotations

import pytest

from tests import readme

SAMPLE = """# Title

<!-- walkthrough: demo (tested) -->
```sh
helm install x charts/x --namespace y   # a comment
curl -s -X POST localhost:8080/tts \\
  -d '{"text": "a # not a comment"}' -o out.wav

kubectl get tts
```

```console
$ kubectl get tts
NAME   READY
```

## Next
```sh
make other
```
"""


def test_a_block_is_split_as_the_shell_splits_it() -> None:
    found = readme.commands("demo", SAMPLE)
    assert [c.argv for c in found] == [
        ("helm", "install", "x", "charts/x", "--namespace", "y"),
        ("curl", "-s", "-X", "POST", "localhost:8080/tts", "-d",
         '{"text": "a # not a comment"}', "-o", "out.wav"),
        ("kubectl", "get", "tts"),
    ]
    assert [c.line for c in found] == [5, 6, 9]
    assert readme.console("demo", SAMPLE) == ["$ kubectl get tts", "NAME   READY"]


@pytest.mark.parametrize(("text", "says"), [
    (SAMPLE.replace("<!-- walkthrough: demo (tested) -->", ""), "0 anchors"),
    (SAMPLE + "\n<!-- walkthrough: demo -->\n", "2 anchors"),
    (SAMPLE.replace("```sh\nhelm", "```text\nhelm"), "no ```sh block"),
], ids=["no anchor", "two anchors", "not shell"])
def test_a_missing_or_ambiguous_block_is_named(text: str, says: str) -> None:
    with pytest.raises(LookupError, match=says):
        readme.commands("demo", text)


def test_a_walk_fails_on_a_changed_an_extra_or_a_missing_command() -> None:
    walk = readme.Walk(readme.commands("demo", SAMPLE), __file__)
    walk.take("helm", "install")
    with pytest.raises(readme.Drift, match=r"(?s)README.md:6: curl .* expects `kubectl apply"):
        walk.take("kubectl", "apply")
    extra = readme.Walk(readme.commands("demo", SAMPLE), __file__)
    extra.take("helm")
    with pytest.raises(readme.Drift, match="does not know"):
        extra.done()
    short = readme.Walk(readme.commands("demo", SAMPLE)[:1], __file__)
    short.take("helm")
    with pytest.raises(readme.Drift, match="ends before `kubectl wait"):
        short.take("kubectl", "wait")


@pytest.mark.parametrize("name", ["try", "playground", "install"])
def test_the_readme_has_each_walkthrough_the_tests_run(name: str) -> None:
    assert readme.commands(name)
