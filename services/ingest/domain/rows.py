"""The row contract: what a raw record from any reader must satisfy to become a training row."""

from __future__ import annotations

from dataclasses import dataclass

Cell = str | bytes | int | float | bool | None


@dataclass(frozen=True)
class FieldSpec:
    """Which columns hold the text, the label and (optionally) the slice."""

    text: str = "text"
    label: str = "label"
    slice: str = ""

    def required(self) -> tuple[str, ...]:
        """The columns every row must have."""
        return (self.text, self.label) + ((self.slice,) if self.slice else ())


@dataclass(frozen=True)
class Limits:
    """Per-row limits, in UTF-8 bytes."""

    max_text_bytes: int = 10_000
    max_label_bytes: int = 200


@dataclass(frozen=True)
class RawRow:
    """A record as a reader found it (1-based line or row number), before any checks."""

    number: int
    text: Cell
    label: Cell
    slice: Cell = None


@dataclass(frozen=True)
class Row:
    """A row that passed the schema checks."""

    text: str
    label: str
    slice: str = ""


@dataclass(frozen=True)
class RowProblem:
    """Why one row was refused: `kind` is a count key of the schema gate."""

    number: int
    kind: str
    detail: str

    def describe(self) -> str:
        """A one-line example for a rejection (never the row's text)."""
        return f"row {self.number}: {self.detail}"


def _as_text(cell: Cell, name: str, number: int) -> str | RowProblem:
    if cell is None:
        return RowProblem(number, f"missing_{name}", f"{name} is missing")
    if isinstance(cell, bytes):
        try:
            return cell.decode("utf-8")
        except UnicodeDecodeError as err:
            return RowProblem(number, "invalid_utf8", f"{name} is not valid UTF-8 (byte {err.start})")
    if isinstance(cell, str):
        # Readers decode with surrogateescape, so undecodable bytes arrive as lone surrogates.
        try:
            cell.encode("utf-8")
        except UnicodeEncodeError as err:
            return RowProblem(number, "invalid_utf8", f"{name} is not valid UTF-8 (char {err.start})")
        return cell
    if isinstance(cell, bool) or not isinstance(cell, int | float):
        return RowProblem(number, f"bad_{name}_type", f"{name} has type {type(cell).__name__}, expected text")
    return str(cell)


def _check(value: str, name: str, limit: int, number: int) -> RowProblem | None:
    if "\x00" in value:
        return RowProblem(number, "nul_byte", f"{name} contains a NUL byte")
    size = len(value.encode("utf-8"))
    if size > limit:
        return RowProblem(number, f"{name}_too_long", f"{name} is {size} bytes, over the {limit}-byte limit")
    if not value.strip():
        return RowProblem(number, f"empty_{name}", f"{name} is empty")
    return None


def parse_row(raw: RawRow, limits: Limits) -> Row | RowProblem:
    """Validate one raw record: present, valid UTF-8, non-empty, within the byte limits."""
    text = _as_text(raw.text, "text", raw.number)
    if isinstance(text, RowProblem):
        return text
    label = _as_text(raw.label, "label", raw.number)
    if isinstance(label, RowProblem):
        return label
    problem = _check(text, "text", limits.max_text_bytes, raw.number) or _check(
        label.strip(), "label", limits.max_label_bytes, raw.number
    )
    if problem:
        return problem
    slice_ = _as_text(raw.slice, "slice", raw.number) if raw.slice is not None else ""
    if isinstance(slice_, RowProblem):
        return slice_
    return Row(text=text, label=label.strip(), slice=slice_.strip())
