"""The command line's values, parsed before anything is done: every parser returns a value
that means what it says or raises ValueError (never another exception, never a default for
an empty value)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cutover import inputs
from cutover.durations import duration_of, parse_duration

# what people type, and what a fuzzer would
typed = st.text(alphabet="0123456789,=.hmsd -abcxyz:/\x00é", max_size=30) | st.text(max_size=30)


@given(typed)
def test_steps_are_increasing_percentages_ending_at_100_or_refused(text: str) -> None:
    try:
        steps = inputs.steps(text)
    except ValueError:
        return
    assert steps == sorted(set(steps)) and steps[-1] == 100 and steps[0] >= 1
    assert all(part.strip() for part in text.split(","))  # nothing was skipped


@given(typed)
def test_a_duration_is_finite_and_within_its_bound_or_refused(text: str) -> None:
    parse = duration_of("1d", allow_zero=True)
    try:
        seconds = parse(text)
    except ValueError:
        return
    assert math.isfinite(seconds) and 0 <= seconds <= 86400
    assert seconds == parse_duration(text)


@given(typed)
def test_a_probe_is_an_http_url_and_a_status_or_refused(text: str) -> None:
    try:
        url, status = inputs.probe(text)
    except ValueError:
        return
    assert url.startswith(("http://", "https://")) and 100 <= status <= 599


@given(typed)
def test_findings_are_counts_of_known_severities_or_refused(text: str) -> None:
    try:
        counts = inputs.findings(text)
    except ValueError:
        return
    assert counts and all(n >= 0 for n in counts.values())
    assert len(counts) == len(text.split(","))  # every part counted, none skipped


@given(st.text(alphabet=" \t\n", max_size=5))
def test_empty_text_is_never_a_value(blank: str) -> None:
    for parse in (
        inputs.text_of("an id"),
        inputs.file_path,
        inputs.folder_path,
        inputs.steps,
    ):
        with pytest.raises(ValueError):
            parse(blank)


def test_a_file_to_write_needs_a_folder_that_takes_it(tmp_path: Path) -> None:
    assert inputs.new_file(str(tmp_path / "id")) == tmp_path / "id"
    with pytest.raises(ValueError, match="does not exist; create it first"):
        inputs.new_file(str(tmp_path / "missing" / "id"))
    with pytest.raises(ValueError, match="is a folder"):
        inputs.new_file(str(tmp_path))
    with pytest.raises(ValueError, match="cannot write into /proc"):
        inputs.new_file("/proc/cutover-id")
    assert inputs.out_folder(str(tmp_path / "a" / "b")) == tmp_path / "a" / "b"
    assert not (tmp_path / "a").exists()  # nothing made before the command runs
    assert list(tmp_path.iterdir()) == []  # and the probe left nothing


def test_a_stack_file_to_write_back_into_is_readable_yaml_with_a_config_block(
    tmp_path: Path,
) -> None:
    good = tmp_path / "Pulumi.prod.yaml"
    good.write_text("config:\n  cutover:activeColor: blue\n")
    assert inputs.stack_file(str(good)) == good
    for text, said in [
        ("config:\n  a: [b\n", "not valid YAML at line 3"),
        ("- a list\n", "not a YAML map"),
        ("config: {a: 1}\n", "no top-level `config:` block"),
        ("config: 3\n", "`config:` is not a map"),
    ]:
        good.write_text(text)
        with pytest.raises(ValueError, match=said):
            inputs.stack_file(str(good))
    with pytest.raises(ValueError, match="cannot read the stack file"):
        inputs.stack_file(str(tmp_path / "missing.yaml"))
