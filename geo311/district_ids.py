r"""District ids as cities write them, made one by a rule the layer definition declares.

A boundary file may write ward 5 as ``"05"``, a request export as ``"Ward 5"`` or ``"5"``, and a
precinct file as ``"0509"`` (ward 05, precinct 09). geo311 never guesses that these are the
same district: the layer definition says how its ids are written (``id_rule``), and the same
rule is applied wherever ids are read. An id the rule does not fit is refused, with the id.

Steps, applied in the order given:

``digits``
    the id's one run of digits, without leading zeros (``"Ward 05"`` -> ``"5"``);
``strip_zeros``
    leading zeros removed (``"007A"`` -> ``"7A"``; ``"0"`` stays ``"0"``);
``upper``
    upper case, inner spaces collapsed (``"c 11"`` -> ``"C 11"``);
``alnum``
    letters and digits only (``"C-11"`` -> ``"C11"``);
``regex:PATTERN``
    the id must match PATTERN in full; it becomes the first group (or the whole match)
    (``regex:(\d\d)\d\d`` turns precinct ``"0509"`` into ward ``"05"``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from geo311.errors import LayerError

#: The step names a rule may use; ``regex:`` takes a pattern after the colon.
STEPS = ("digits", "strip_zeros", "upper", "alnum", "regex:PATTERN")
_DIGIT_RUN = re.compile(r"\d+")
_SPACES = re.compile(r"\s+")
_NOT_ALNUM = re.compile(r"[^0-9A-Za-z]+")


@dataclass(frozen=True)
class IdRule:
    """A declared way of writing district ids; the empty rule keeps them as written."""

    steps: tuple[str, ...] = ()

    def __str__(self) -> str:
        return " then ".join(self.steps) if self.steps else "as written"

    def apply(self, value: str) -> str:
        r"""Return ``value`` written the rule's way; raise ``ValueError`` saying why it cannot.

        Examples
        --------
        >>> parse_id_rule([r"regex:(\d\d)\d\d[A-Z]?", "strip_zeros"]).apply("0502A")
        '5'
        """
        text = value.strip()
        for step in self.steps:
            text = _apply_step(step, text)
        if not text:
            raise ValueError("nothing is left of it")
        return text


def _apply_step(step: str, text: str) -> str:
    if step == "digits":
        runs = _DIGIT_RUN.findall(text)
        if len(runs) != 1:
            raise ValueError("it has no digits" if not runs else
                             f"it has {len(runs)} separate runs of digits")
        return str(int(runs[0]))
    if step == "strip_zeros":
        return (text.lstrip("0") or "0") if text else text
    if step == "upper":
        return _SPACES.sub(" ", text.upper())
    if step == "alnum":
        return _NOT_ALNUM.sub("", text)
    pattern = re.compile(step.removeprefix("regex:"))
    match = pattern.fullmatch(text)
    if match is None:
        raise ValueError(f"it does not match {pattern.pattern!r}")
    return (match.group(1) or "") if pattern.groups else match.group(0)


def parse_id_rule(spec: str | Sequence[str] | None, where: str = "id_rule") -> IdRule:
    """Check a rule as a layer definition or a command gives it (one step or a list).

    Examples
    --------
    >>> parse_id_rule("digits").apply("Ward 05")
    '5'
    >>> str(parse_id_rule(None))
    'as written'
    """
    if spec is None:
        return IdRule()
    steps = [spec] if isinstance(spec, str) else list(spec)
    for step in steps:
        if not isinstance(step, str):
            raise LayerError(f"{where}: step {step!r} is expected to be text, one of {STEPS}")
        if step.startswith("regex:"):
            try:
                re.compile(step.removeprefix("regex:"))
            except re.error as exc:
                raise LayerError(f"{where}: {step!r} is not a valid pattern: {exc}") from exc
        elif step not in STEPS:
            raise LayerError(f"{where}: step was {step!r} but is expected to be in {list(STEPS)}")
    return IdRule(tuple(steps))


def normalise_ids(values: Iterable[str], rule: IdRule, where: str = "ids") -> list[str]:
    """Apply ``rule`` to every id; refuse, listing them, the ids it does not fit.

    Examples
    --------
    >>> normalise_ids(["05", "Ward 5", "5"], parse_id_rule("digits"))
    ['5', '5', '5']
    """
    out: list[str] = []
    failures: list[str] = []
    for number, value in enumerate(values, start=1):
        try:
            out.append(rule.apply(value))
        except ValueError as exc:
            failures.append(f"{value!r} (feature {number}): {exc}")
    if failures:
        listed = "; ".join(failures[:10]) + (
            f" and {len(failures) - 10} more" if len(failures) > 10 else "")
        raise LayerError(f"{where}: id_rule {str(rule)!r} does not fit {listed}")
    return out
