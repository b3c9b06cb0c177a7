"""`python -m cryptocast`: its help names the way it is run and says what each command is for."""

from __future__ import annotations

import pytest

from cryptocast.__main__ import main


def help_text(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def test_usage_names_the_module_not_its_file(capsys):
    text = help_text(capsys)
    assert text.startswith("usage: python -m cryptocast ")
    assert "__main__" not in text


@pytest.mark.parametrize(("command", "says"), [
    ("status", "What the store holds: per feature group"),
    ("export", "One feature group as CSV on stdout"),
])
def test_each_command_has_a_description(capsys, command, says):
    text = help_text(capsys, command)
    assert text.startswith(f"usage: python -m cryptocast {command} ")
    assert says in text
