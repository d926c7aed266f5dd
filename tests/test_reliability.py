"""A worker process killed mid-run, and a checkpoint damaged between runs (issue 14).

A killed worker of a ZIP selection is replaced and the selection stays the one an undisturbed
run makes; a killed worker of :func:`ordered_map` ends the run with :class:`WorkerDied`; a
truncated or garbled checkpoint is refused on ``--resume`` with exit 2, naming the file.
Every run that could hang runs in a thread joined with a timeout, so a hang fails the test.
"""
from __future__ import annotations

import json
import os
import signal
import struct
import threading
import time
import zipfile

import numpy as np
import pytest

from entrosel.cli import main
from entrosel.engines import local
from entrosel.engines.local import LocalEngine, ProcessGroup, WorkerDied, describe_exit, ordered_map
from entrosel.errors import InputError
from entrosel.pool import InputOptions, load_pool
from entrosel.scoring.anchored import EvaluatorFactory, anchored_group
from entrosel.scoring.compression import Compressor
from entrosel.selection.checkpoint import STATE_FILE, Checkpoint, ZipState
from entrosel.selection.zip import ZipSelector, select_zip
from tests.conftest import write_jsonl

_HANG_S = 60  # far above what any run here takes; reaching it means the run hung


def _within(seconds: float, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, failing the test if it has not returned after ``seconds``."""
    outcome: dict = {}

    def body() -> None:
        try:
            outcome["value"] = fn(*args, **kwargs)
        except BaseException as e:  # handed to the test's thread below
            outcome["error"] = e

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s: hung"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _kill(proc) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()  # dead for sure before the group talks to it again


# --- EvaluatorGroup: a dead worker is replaced, its state replayed ------------------------

@pytest.mark.parametrize("compressor", ["zlib", "zstd"])  # zstd: long memory, replayed call by call
def test_killed_worker_is_replaced_and_the_selection_stays(real_exchanges, monkeypatch, compressor,
                                                           capsys):
    records = real_exchanges[:200]
    options = dict(k1=60, k2=20, k3=8, compressor=compressor)
    expected = select_zip(records, 40, workers=1, **options)
    # zstd scores on C threads in one process where it can; here, as on a zstandard without
    # them, on worker processes
    monkeypatch.setattr(EvaluatorFactory, "threaded", lambda self, threads: None)
    original = ProcessGroup.scatter
    groups, calls = [], {"n": 0}

    def scatter(self, method, items, *args):
        calls["n"] += 1
        # stage 2 of round 3, then of round 5 (the pool's own ratios were call 1; stage 3
        # runs in this process)
        if calls["n"] in (3, 5):
            groups.append(self)
            _kill(self._procs[{3: 0, 5: 1}[calls["n"]]])
        return original(self, method, items, *args)

    monkeypatch.setattr(ProcessGroup, "scatter", scatter)
    selected = _within(_HANG_S, ZipSelector(budget=40, workers=2, **options).select, records)
    assert selected == expected
    assert groups[0].restarts == 2
    assert capsys.readouterr().err.count("was killed by SIGKILL") == 2


def _group_over(records, workers=2):
    pool = load_pool(records, InputOptions())
    group = anchored_group(LocalEngine(workers=workers), pool.items,
                           InputOptions().serialization.framing, Compressor("zlib"))
    return pool, group


def test_worker_killed_while_computing_is_replaced(real_exchanges):
    """Killed after the request went out: the wait for its answer sees it die."""
    records = real_exchanges[:120]
    pool, group = _group_over(records)
    with pool, group:
        group.extend("selected", [3, 4])
        group.extend("selected", [5])
        expected = group.ratios("selected", range(len(records)))
        original_send = group.group._send

        def send(w, message):
            original_send(w, message)
            # at once, before it can answer (killed at the wait instead, a worker on a busy
            # machine could have answered already, and nothing would be seen to die)
            if w == 0 and message[0] == "scatter" and group.group.restarts == 0:
                _kill(group.group._procs[0])

        group.group._send = send
        got = _within(_HANG_S, group.ratios, "selected", range(len(records)))
        assert group.group.restarts == 1
        np.testing.assert_array_equal(got, expected)


def test_a_worker_that_keeps_dying_ends_the_run_with_a_clear_error(real_exchanges, monkeypatch):
    monkeypatch.setattr(local, "_MAX_RESTARTS", 0)
    pool, group = _group_over(real_exchanges[:50])
    with pool, group:
        _kill(group.group._procs[1])
        with pytest.raises(WorkerDied, match=r"was killed by SIGKILL .*giving up.*can be repeated"):
            _within(_HANG_S, group.ratios, "selected", range(50))


def test_an_error_inside_a_worker_is_raised_not_restarted(real_exchanges):
    """A bug would kill every replacement the same way: it is reported at once."""
    pool, group = _group_over(real_exchanges[:50])
    with pool, group:
        with pytest.raises(RuntimeError, match="IndexError") as caught:
            _within(_HANG_S, group.ratios, "selected", [0, 1, 10**9, 10**9 + 1])
        assert not isinstance(caught.value, WorkerDied)
        assert group.group.restarts == 0


# --- ordered_map: a dead worker ends the map with WorkerDied ------------------------------

def _slow_square(x: int) -> int:
    time.sleep(0.05)
    return x * x


def _map_and_kill_a_worker() -> list[int]:
    out = []
    for i, value in enumerate(ordered_map(_slow_square, range(200), workers=2)):
        out.append(value)
        if i == 3:
            import multiprocessing

            os.kill(multiprocessing.active_children()[0].pid, signal.SIGKILL)
    return out


def test_ordered_map_with_a_killed_worker_raises_worker_died():
    with pytest.raises(WorkerDied, match=r"^worker process \d+ was killed by SIGKILL .*can be repeated$"):
        _within(_HANG_S, _map_and_kill_a_worker)


def test_ordered_map_undisturbed_gives_every_result_in_order():
    assert list(ordered_map(_slow_square, range(20), workers=2)) == [x * x for x in range(20)]


@pytest.mark.parametrize("exitcode,phrase", [(-9, "was killed by SIGKILL (signal 9, as the out-of-memory"),
                                             (-15, "was killed by SIGTERM (signal 15)"),
                                             (1, "exited with code 1"), (None, "exit status unknown")])
def test_how_a_worker_ended_is_said_in_words(exitcode, phrase):
    assert phrase in describe_exit(exitcode)


# --- checkpoints: damage is named on --resume ---------------------------------------------

_FINGERPRINT = {"pool_sha256": "0" * 64, "k1": 60}


def _state(n=30) -> ZipState:
    state = ZipState(scores=np.linspace(0.2, 0.9, n), live=np.ones(n, dtype=bool))
    state.live[[2, 5, 7]] = False
    state.selected, state.rounds = [5, 2], [1, 1]
    state.stage2, state.stage3, state.round = [0.3, 0.4], [0.5, 0.6], 1
    return state


def test_checkpoint_round_trips(tmp_path):
    Checkpoint(tmp_path, _FINGERPRINT).save(_state())
    back = Checkpoint(tmp_path, _FINGERPRINT).load()
    want = _state()
    np.testing.assert_array_equal(back.scores, want.scores)
    np.testing.assert_array_equal(back.live, want.live)
    assert (back.selected, back.rounds, back.stage2, back.stage3, back.round, back.tokens, back.done) == \
           (want.selected, want.rounds, want.stage2, want.stage3, want.round, want.tokens, want.done)


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_a_byte(path):
    """One byte of the saved scores changed, as a failing disk would."""
    with zipfile.ZipFile(path) as archive:
        start = archive.getinfo("scores.npy").header_offset
    data = bytearray(path.read_bytes())
    name_length, extra_length = struct.unpack("<HH", data[start + 26:start + 30])
    data[start + 30 + name_length + extra_length + 130] ^= 0xFF  # past the .npy header
    path.write_bytes(bytes(data))


def _empty(path):
    path.write_bytes(b"")


def _swap_scores(path):
    """A well-formed file whose content is not what was saved (a CRC-32 check passes)."""
    with np.load(path) as z:
        arrays = {name: z[name] for name in z.files}
    arrays["scores"] = arrays["scores"][::-1].copy()
    with open(path, "wb") as f:
        np.savez(f, **arrays)


@pytest.mark.parametrize("damage,says", [(_truncate, "unreadable"), (_empty, "unreadable"),
                                         (_flip_a_byte, "scores.npy' fails its CRC-32"),
                                         (_swap_scores, "does not match the SHA-256")])
def test_damaged_state_is_named(tmp_path, damage, says):
    Checkpoint(tmp_path, _FINGERPRINT).save(_state())
    damage(tmp_path / STATE_FILE)
    with pytest.raises(InputError, match=says) as caught:
        Checkpoint(tmp_path, _FINGERPRINT).load()
    assert caught.value.path == str(tmp_path / STATE_FILE)
    assert f"remove the folder {tmp_path} to start over" in caught.value.reason


def test_a_state_missing_an_array_is_named(tmp_path):
    Checkpoint(tmp_path, _FINGERPRINT).save(_state())
    path = tmp_path / STATE_FILE
    with zipfile.ZipFile(path) as archive:
        kept = {n: archive.read(n) for n in archive.namelist() if n != "done.npy"}
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in kept.items():
            archive.writestr(name, data)
    with pytest.raises(InputError, match="no done in it"):
        Checkpoint(tmp_path, _FINGERPRINT).load()


@pytest.mark.parametrize("spoil,says", [
    (lambda s: setattr(s, "live", s.live[:-1]), "29 live flags for 30 scores"),
    (lambda s: s.rounds.append(2), "3 rounds entries for 2 selected"),
    (lambda s: setattr(s, "selected", [5, 40]), "outside the pool of 30"),
    (lambda s: setattr(s, "selected", [5, 5]), "selected twice"),
    (lambda s: setattr(s, "selected", [5, 3]), "still live"),
])
def test_a_state_that_contradicts_itself_is_refused(tmp_path, spoil, says):
    """Checked even though its SHA-256 holds: no run could have saved it."""
    state = _state()
    spoil(state)
    Checkpoint(tmp_path, _FINGERPRINT).save(state)
    with pytest.raises(InputError, match=says):
        Checkpoint(tmp_path, _FINGERPRINT).load()


def test_a_state_from_another_fingerprint_is_refused(tmp_path):
    """A state file copied beside another run's metadata: its digest covers the fingerprint."""
    Checkpoint(tmp_path / "a", _FINGERPRINT).save(_state())
    other = {**_FINGERPRINT, "k1": 61}
    Checkpoint(tmp_path / "b", other).save(_state())
    (tmp_path / "b" / STATE_FILE).write_bytes((tmp_path / "a" / STATE_FILE).read_bytes())
    with pytest.raises(InputError, match="SHA-256"):
        Checkpoint(tmp_path / "b", other).load()


@pytest.mark.parametrize("text", ["[1]", '{"other": 1}', '{"fingerprint": [', "\xff"])
def test_damaged_metadata_is_named(tmp_path, text):
    Checkpoint(tmp_path, _FINGERPRINT).save(_state())
    (tmp_path / "meta.json").write_bytes(text.encode("latin-1"))
    with pytest.raises(InputError, match="checkpoint metadata") as caught:
        Checkpoint(tmp_path, _FINGERPRINT).load()
    assert caught.value.path == str(tmp_path / "meta.json")


@pytest.mark.parametrize("damage", [_truncate, _flip_a_byte])
def test_resume_from_a_damaged_checkpoint_exits_2_naming_the_file(tmp_path, real_exchanges, capsys,
                                                                   damage):
    pool = write_jsonl(tmp_path / "pool.jsonl", real_exchanges[:120])
    cp = tmp_path / "cp"
    args = ["select", "zip", str(pool), "-o", str(tmp_path / "out.jsonl"), "--budget", "30",
            "--k1", "40", "--k2", "10", "--k3", "5", "--workers", "1", "--no-progress",
            "--checkpoint", str(cp)]
    assert main(args) == 0
    first = (tmp_path / "out.jsonl").read_text()
    damage(cp / STATE_FILE)
    capsys.readouterr()
    assert main([*args, "--resume"]) == 2
    err = capsys.readouterr().err
    assert f"{cp / STATE_FILE}: checkpoint state is damaged" in err
    assert "remove the folder" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    # as the message says: without the folder the run starts over, and makes the same selection
    for f in cp.iterdir():
        f.unlink()
    cp.rmdir()
    assert main([*args, "--resume"]) == 0
    assert (tmp_path / "out.jsonl").read_text() == first
    assert json.loads(first.splitlines()[0])
