"""The committed man pages and shell completions match the CLI.

They are generated from the typer app by ``python -m dcmcli.cli.gendocs``;
these tests fail when an option, a help text or a subcommand changed and the
generator was not re-run.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import typer

from dcmcli.cli import gendocs
from dcmcli.cli.app import load_commands

app = load_commands()

ROOT = Path(__file__).resolve().parents[1]  # the repository: man/ and completions/


def _subcommands() -> list[str]:
    group = typer.main.get_command(app)
    ctx = group.context_class(group, info_name="dcmcli")
    return sorted(name for name in group.list_commands(ctx) if not group.get_command(ctx, name).hidden)


def test_generated_files_are_up_to_date() -> None:
    stale = gendocs.stale(ROOT)
    assert not stale, (
        "man pages / shell completions are stale: " + ", ".join(stale)
        + "; run `python -m dcmcli.cli.gendocs` and commit man/ and completions/")


def test_generation_is_deterministic() -> None:
    assert gendocs.render() == gendocs.render()


def test_every_subcommand_has_a_man_page() -> None:
    names = _subcommands()
    assert {"echoscu", "storescu", "storescp"} <= set(names)
    assert (ROOT / "man" / "dcmcli.1").is_file()
    overview = (ROOT / "man" / "dcmcli.1").read_text(encoding="utf-8")
    for name in names:
        page = ROOT / "man" / f"dcmcli-{name}.1"
        assert page.is_file(), f"no man page for {name}; run `python -m dcmcli.cli.gendocs`"
        roff_name = "dcmcli\\-" + name.replace("-", "\\-")
        assert f".BR {roff_name} (1)" in overview, f"dcmcli.1 does not refer to dcmcli-{name}(1)"


def test_storescu_page_and_bash_completion_know_aet() -> None:
    page = (ROOT / "man" / "dcmcli-storescu.1").read_text(encoding="utf-8")
    assert "\\fB\\-aet\\fR, \\fB\\-\\-aetitle\\fR \\fIAETITLE\\fR" in page  # roff for "-aet, --aetitle AETITLE"
    assert "-aet" in page
    bash = (ROOT / "completions" / "dcmcli.bash").read_text(encoding="utf-8")
    assert re.search(r"(?<![\w-])-aet(?![\w-])", bash), "bash completion does not offer -aet"


@pytest.mark.parametrize("shell,script", [("bash", "dcmcli.bash"), ("zsh", "_dcmcli"), ("fish", "dcmcli.fish")])
def test_completion_parses(shell: str, script: str) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    r = subprocess.run([shell, "-n", str(ROOT / "completions" / script)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completion_completes() -> None:
    script = f"""
source {str(ROOT / "completions" / "dcmcli.bash")!r}
t() {{ COMP_WORDS=("$@"); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 )); COMPREPLY=(); _dcmcli; echo "${{COMPREPLY[*]}}"; }}
t dcmcli st
t dcmcli storescu -ae
t dcmcli storescu --log-level ""
"""
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["storescp storescu", "-aet -aec", "fatal error warn info debug trace"]


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed")
def test_man_pages_render_without_warnings() -> None:
    for page in sorted((ROOT / "man").glob("*.1")):
        r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", str(page)],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and not r.stderr, f"{page.name}: {r.stderr}"


def test_check_reports_a_stale_file(tmp_path) -> None:
    gendocs.write(tmp_path)
    assert gendocs.stale(tmp_path) == []
    (tmp_path / "man" / "dcmcli-storescu.1").write_text("old\n", encoding="utf-8")
    (tmp_path / "man" / "dcmcli-gone.1").write_text("old\n", encoding="utf-8")
    assert gendocs.stale(tmp_path) == ["man/dcmcli-storescu.1", "man/dcmcli-gone.1 (obsolete)"]
    assert gendocs.main(["--check", "--root", str(tmp_path)]) == 1
    gendocs.main(["--root", str(tmp_path)])
    assert gendocs.main(["--check", "--root", str(tmp_path)]) == 0
    assert not (tmp_path / "man" / "dcmcli-gone.1").exists()


def test_every_command_documents_examples_and_its_events() -> None:
    """Each man page has EXAMPLES and a JSON EVENTS section whose events the schema knows."""
    root, subs = gendocs.load(app)
    for cmd in subs:
        assert cmd.examples, f"{cmd.name}: no EXAMPLES in its module"
        assert cmd.events, f"{cmd.name}: no EVENTS in its module"
        page = (ROOT / "man" / f"dcmcli-{cmd.name}.1").read_text(encoding="utf-8")
        assert ".SH EXAMPLES" in page and ".SH JSON EVENTS" in page and ".SH EXIT STATUS" in page
        for event in cmd.events:
            assert gendocs.event_fields(event, cmd.command), (cmd.command, event)


def test_readme_lists_every_event_of_the_schema() -> None:
    import json

    schema = json.loads((ROOT / "dcmcli" / "events.schema.json").read_text(encoding="utf-8"))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for event in schema["properties"]["event"]["enum"]:
        assert f"| `{event}`" in readme, f"README's event table lacks {event}"


def test_completions_offer_syntax_names_and_plus_options() -> None:
    bash = (ROOT / "completions" / "dcmcli.bash").read_text(encoding="utf-8")
    assert "jpeg-ls-lossless" in bash and "[-+]*" in bash
    fish = (ROOT / "completions" / "dcmcli.fish").read_text(encoding="utf-8")
    assert "-a '+te'" in fish and "-o U8" not in fish


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completes_syntaxes_and_plus_options() -> None:
    script = f"""
source {str(ROOT / "completions" / "dcmcli.bash")!r}
t() {{ COMP_WORDS=("$@"); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 )); COMPREPLY=(); _dcmcli; echo "${{COMPREPLY[*]}}"; }}
t dcmcli storescp --store-as jpeg-ls
t dcmcli dcmconv +U
"""
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["jpeg-ls jpeg-ls-lossless jpeg-ls-near-lossless", "+U8"]


def test_the_wheel_installs_the_man_pages(tmp_path) -> None:
    import sys
    import zipfile

    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                        str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {r.stderr.strip()[-200:]}")
    wheel, = tmp_path.glob("dcmcli-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert any(n.endswith("data/share/man/man1/dcmcli-storescu.1") for n in names)
    assert "dcmcli/events.schema.json" in names
