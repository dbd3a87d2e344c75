"""`elastic-tts run`: bad flags end in one line and exit 2."""

from __future__ import annotations

import pytest

from elastic_tts.cli import main


@pytest.mark.parametrize(("argv", "needle"), [
    (["run", "--rate-windows", "fast"], "--rate-windows must be two PromQL durations"),
    (["run", "--burst-window", "1m30"], "--burst-window must be a PromQL duration"),
    (["run", "--metrics-port", "70000"], "--metrics-port must be 1-65535"),
    (["run", "--namespace", "a", "--all-namespaces"], "not allowed with argument"),
])
def test_bad_run_flags_exit_2_with_one_line(capsys: pytest.CaptureFixture[str],
                                            argv: list[str], needle: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert needle in err
    assert "Traceback" not in err
