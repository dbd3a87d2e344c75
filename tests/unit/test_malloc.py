"""`elastic-tts run` tunes glibc's allocator before its threads start (commands/malloc.py).

The arenas are counted by glibc itself: malloc_info(3) writes one <heap> per arena."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import textwrap

import pytest

from elastic_tts.commands.malloc import tune_malloc

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc",
                                reason="mallopt and malloc_info are glibc's")

# Eight threads each allocate; then glibc reports its arenas. A thread's first malloc
# gets an arena of its own until the limit is reached, so without the limit eight threads
# make eight more arenas.
ARENAS = textwrap.dedent("""
    import ctypes, re, sys, tempfile, threading
    from elastic_tts.commands.malloc import tune_malloc
    applied = tune_malloc({} if sys.argv[1] == "tuned" else {"MALLOC_ARENA_MAX": "set"})
    start = threading.Barrier(8)
    def work():
        start.wait()
        keep = [bytearray(1000) for _ in range(2000)]
    threads = [threading.Thread(target=work) for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    libc = ctypes.CDLL(None)
    libc.fopen.restype = ctypes.c_void_p
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    with tempfile.NamedTemporaryFile("r") as out:
        handle = libc.fopen(out.name.encode(), b"w")
        libc.malloc_info(0, handle)
        libc.fclose(handle)
        print(sorted(applied), len(re.findall(r"<heap nr=", out.read())))
""")


def arenas(mode: str) -> str:
    return subprocess.run([sys.executable, "-c", ARENAS, mode], capture_output=True,
                          text=True, check=True, timeout=60).stdout.strip()


def test_the_operator_keeps_to_two_arenas_however_many_threads_allocate() -> None:
    assert arenas("tuned") == "['MALLOC_ARENA_MAX', 'MALLOC_MMAP_THRESHOLD_'] 2"


def test_without_the_limit_each_thread_gets_its_own_arena() -> None:
    """The control: the count above is the limit's doing, not the workload's."""
    applied, count = arenas("untuned").rsplit(" ", 1)
    assert applied == "['MALLOC_MMAP_THRESHOLD_']" and int(count) > 2


@pytest.mark.parametrize(
    ("environ", "applied"),
    [
        ({}, {"MALLOC_ARENA_MAX": 2, "MALLOC_MMAP_THRESHOLD_": 131072}),
        ({"MALLOC_ARENA_MAX": "8"}, {"MALLOC_MMAP_THRESHOLD_": 131072}),
        ({"MALLOC_MMAP_THRESHOLD_": "65536"}, {"MALLOC_ARENA_MAX": 2}),
        ({"GLIBC_TUNABLES": "glibc.malloc.arena_max=4:glibc.malloc.mmap_threshold=9999"}, {}),
    ],
    ids=["defaults", "arena-max-set", "threshold-set", "tunables-set"],
)
def test_what_the_user_set_in_the_environment_wins(environ: dict[str, str],
                                                   applied: dict[str, int]) -> None:
    # Run in a child: mallopt changes the process it runs in.
    code = ("import sys, json; from elastic_tts.commands.malloc import tune_malloc; "
            "print(json.dumps(tune_malloc(json.loads(sys.argv[1]))))")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(environ)], capture_output=True,
                         text=True, check=True, timeout=60).stdout
    assert json.loads(out) == applied


def test_nothing_is_done_where_the_c_library_is_not_glibc(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    monkeypatch.setattr(platform, "libc_ver", lambda: ("", ""))
    assert tune_malloc({}) == {}
