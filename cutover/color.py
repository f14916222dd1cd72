"""The two colors of a service."""

from typing import Literal, cast

Color = Literal["blue", "green"]
COLORS: tuple[Color, Color] = ("blue", "green")


def other_color(color: Color) -> Color:
    """The color that is not `color`."""
    return "green" if color == "blue" else "blue"


def parse_color(value: str) -> Color:
    """`value` as a Color, or ValueError naming what is expected."""
    if value not in COLORS:
        raise ValueError(f"unknown color {value!r}; expected blue or green")
    return cast(Color, value)
