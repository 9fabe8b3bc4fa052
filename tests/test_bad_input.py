"""Bad input: one clear line, the documented exit code, no traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import copy_samples, dcmcli_cmd, free_port, json_lines, run_dcmcli, without_read_access


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line]
    assert "Traceback" not in stderr
    assert len(lines) >= 1
    return lines[-1]


def test_unknown_host_exits_60() -> None:
    r = run_dcmcli("echoscu", "no-such-host.invalid", "104")
    assert r.returncode == 60
    assert "unknown host" in _one_line(r.stderr)


def test_invalid_ae_title_exits_1() -> None:
    r = run_dcmcli("echoscu", "-aet", "THIS-TITLE-IS-TOO-LONG", "127.0.0.1", "104")
    assert r.returncode == 1
    assert "at most 16" in _one_line(r.stderr)
    r = run_dcmcli("echoscu", "-aec", "A\\B", "127.0.0.1", "104")
    assert r.returncode == 1
    assert "backslash" in _one_line(r.stderr)


def test_usage_error_exits_1() -> None:
    r = run_dcmcli("storescu", "--no-such-option", "x", "1")
    assert r.returncode == 1
    assert "--help" in _one_line(r.stderr)
    r = run_dcmcli("echoscu", "127.0.0.1", "notaport")
    assert r.returncode == 1
    assert "not a number" in _one_line(r.stderr)


def test_non_dicom_file_is_skipped_with_exit_22(tmp_path: Path) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("hello\n" * 100)
    r = run_dcmcli("storescu", "--json", "127.0.0.1", str(free_port()), str(junk))
    assert r.returncode == 23  # nothing usable left to send
    skipped = [e for e in json_lines(r.stdout) if e["event"] == "skipped"]
    assert "not a DICOM file" in skipped[0]["reason"]


def test_truncated_file_is_detected(tmp_path: Path, dcmcli_storescp) -> None:
    good, = copy_samples(tmp_path / "in", ["explicit-le"])
    data = good.read_bytes()
    cut = tmp_path / "in" / "cut.dcm"
    cut.write_bytes(data[: len(data) - 5000])
    peer = dcmcli_storescp()
    r = run_dcmcli("storescu", "--json", "127.0.0.1", str(peer.port), str(good), str(cut))
    assert r.returncode == 22  # the good file went, the truncated one named on the command line did not
    events = json_lines(r.stdout)
    assert [e["outcome"] for e in events if e["event"] == "result"] == ["sent"]
    skipped = [e for e in events if e["event"] == "skipped"][0]
    assert "truncated" in skipped["reason"]


def test_non_dicom_in_directory_is_only_a_warning(tmp_path: Path, dcmcli_storescp) -> None:
    copy_samples(tmp_path / "in", ["explicit-le"])
    (tmp_path / "in" / "README.txt").write_text("not dicom")
    peer = dcmcli_storescp()
    r = run_dcmcli("storescu", "--json", "127.0.0.1", str(peer.port), str(tmp_path / "in"))
    assert r.returncode == 0, r.stderr
    summary = [e for e in json_lines(r.stdout) if e["event"] == "summary"][0]
    assert summary["sent"] == 1 and summary["skipped"] == 1


def test_missing_input_exits_20(tmp_path: Path) -> None:
    r = run_dcmcli("storescu", "127.0.0.1", "104", str(tmp_path / "nope.dcm"))
    assert r.returncode == 20
    assert "none of the inputs could be read" in _one_line(r.stderr)


def test_empty_directory_exits_21(tmp_path: Path) -> None:
    r = run_dcmcli("storescu", "127.0.0.1", "104", str(tmp_path))
    assert r.returncode == 21


def test_exit_codes_listing_matches_table() -> None:
    from dcmcli.errors import EXIT_CODES

    r = run_dcmcli("exit-codes", "--json")
    assert r.returncode == 0
    rows = json_lines(r.stdout)
    assert [row["code"] for row in rows] == [int(e.code) for e in EXIT_CODES]


def test_reader_closing_the_pipe_is_not_an_error() -> None:
    """`dcmcli exit-codes | head -1`: the reader goes away; exit 0, nothing on stderr."""
    proc = subprocess.Popen(dcmcli_cmd("exit-codes"), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, err
    assert err == ""


def test_no_arguments_prints_the_help_and_exits_0() -> None:
    """`dcmcli` alone is a request for help, as with DCMTK's tools: the help
    (with the exit-code table) on stdout, exit 0, no error line."""
    r = run_dcmcli()
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert "Usage: dcmcli [OPTIONS] COMMAND [ARGS]..." in r.stdout
    assert "storescu" in r.stdout and "dcmconv" in r.stdout
    assert "21  no-input-files: no input files were found" in r.stdout


def _run_inputs(command: str, inputs: list[str], tmp_path: Path, peer_port: int,
                prefix: tuple[str, ...] | list[str] = ()) -> subprocess.CompletedProcess[str]:
    """storescu to the peer, or dcmconv into a fresh directory, with the inputs."""
    if command == "storescu":
        args = ["storescu", "--json", "127.0.0.1", str(peer_port), *inputs]
    else:
        out = tmp_path / f"out{len(list(tmp_path.glob('out*')))}"
        args = ["dcmconv", "--json", "-j", "1", "-t", "ele", *inputs, f"{out}/"]
    return subprocess.run([*prefix, *dcmcli_cmd(*args)], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


DONE = {"storescu": "sent", "dcmconv": "converted"}


@pytest.mark.parametrize("command", ["storescu", "dcmconv"])
def test_unreadable_file_exits_20_alone_beside_good_ones_and_in_a_directory(
        command: str, tmp_path: Path, dcmcli_storescp) -> None:
    """A file that cannot be read is row 20 (input-unreadable), not 23 alone
    or 22 beside a good one, and wherever it was found."""
    good, locked = copy_samples(tmp_path / "in", ["explicit-le", "implicit-le"])
    prefix = without_read_access(locked)
    port = dcmcli_storescp().port if command == "storescu" else 0
    for inputs, done in (([locked], 0), ([locked, good], 1), ([tmp_path / "in"], 1)):
        r = _run_inputs(command, [str(i) for i in inputs], tmp_path, port, prefix)
        assert r.returncode == 20, (inputs, r.stdout + r.stderr)
        assert "Traceback" not in r.stderr
        events = json_lines(r.stdout)
        skipped, = [e for e in events if e["event"] == "skipped"]
        assert (skipped["path"], skipped["reason"]) == (str(locked), "cannot read: Permission denied")
        assert f"WARNING: skipped {locked}: cannot read: Permission denied" in r.stderr
        assert [e["outcome"] for e in events if e["event"] == "result"] == [DONE[command]] * done
        summary, = [e for e in events if e["event"] == "summary"]
        assert (summary[DONE[command]], summary["skipped"], summary["exit_code"]) == (done, 1, 20)
        if not done:
            verb = "sent" if command == "storescu" else "converted"
            assert r.stderr.splitlines()[-1] == f"{command}: error: none of the inputs could be read; nothing {verb}"


@pytest.mark.parametrize("command", ["storescu", "dcmconv"])
def test_pattern_matching_nothing_exits_21(command: str, tmp_path: Path, dcmcli_storescp) -> None:
    """A glob that matches nothing is row 21 (no-input-files), not 20."""
    good, = copy_samples(tmp_path / "in", ["explicit-le"])
    pattern = str(tmp_path / "in" / "nomatch*.dcm")
    port = dcmcli_storescp().port if command == "storescu" else 0
    for inputs, done in (([pattern], 0), ([pattern, str(good)], 1)):
        r = _run_inputs(command, inputs, tmp_path, port)
        assert r.returncode == 21, (inputs, r.stdout + r.stderr)
        events = json_lines(r.stdout)
        skipped, = [e for e in events if e["event"] == "skipped"]
        assert (skipped["path"], skipped["reason"]) == (pattern, "no file matches this pattern")
        assert [e["outcome"] for e in events if e["event"] == "result"] == [DONE[command]] * done
        if not done:
            verb = "sent" if command == "storescu" else "converted"
            assert r.stderr.splitlines()[-1] == f"{command}: error: no input files found; nothing {verb}"
