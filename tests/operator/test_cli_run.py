"""`elastic-tts run`: bad flags end in one line and exit 2."""

from __future__ import annotations

import pytest

from elastic_tts.cli import main


@pytest.mark.parametrize(("argv", "needle"), [
    (["run", "--rate-windows", "fast"], "argument --rate-windows: must be two PromQL"),
    (["run", "--rate-windows", "1m,99999h"], "of at most 24h"),
    (["run", "--rate-windows", "1m,٥m"], "argument --rate-windows: must be two PromQL"),
    (["run", "--burst-window", "1m30"], "argument --burst-window: must be a PromQL duration"),
    (["run", "--status-refresh-ticks", "0"], "argument --status-refresh-ticks: must be a whole"),
    (["run", "--status-refresh-ticks", "2.5"], "argument --status-refresh-ticks: must be a whole"),
    (["run", "--metrics-port", "70000"], "argument --metrics-port: must be 1-65535"),
    (["run", "--priority", "9" * 5000], "argument --priority: must be 'auto' or an integer"),
    (["run", "--priority", "1e9"], "argument --priority: must be 'auto' or an integer"),
    (["run", "--standalon"], "unknown flag --standalon (did you mean --standalone?)"),
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
