"""The environment's numbers (`CUTOVER_*`, `AWS_MAX_ATTEMPTS`), parsed in one place: unset is
the default, and a value that is not what its name says is one line naming the variable."""

from __future__ import annotations

import pytest

from cutover.environment import NUMBERS, check_numbers, number
from cutover.errors import ConfigError


@pytest.mark.parametrize("name", list(NUMBERS))
@pytest.mark.parametrize("value", ["abc", "", " ", "nan", "inf", "-1", "0", "1e400", "100000"])
def test_a_wrong_number_in_the_environment_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=f"^{name}=") as refused:
        check_numbers()
    assert "\n" not in str(refused.value)


def test_an_unset_number_is_its_default_and_a_set_one_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CUTOVER_LEASE_SECONDS", raising=False)
    assert number("CUTOVER_LEASE_SECONDS", 30.0) == 30.0
    monkeypatch.setenv("CUTOVER_LEASE_SECONDS", "12.5")
    assert number("CUTOVER_LEASE_SECONDS", 30.0) == 12.5
