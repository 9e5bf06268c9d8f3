"""The resource-spec language: parser, requirement data classes and matching.

A spec lists alternatives separated by ``|``, tried in order.  Each
alternative combines requirements with ``&``::

    duration=2 days & cuda(mem=16G) * 4 & cpu(mem=400M, cores=4)
      | duration=4 days & cuda(mem=16G) * 2 & cpu(mem=400M, cores=4)

The parser is a small hand-written recursive descent over the text; every
error is a :class:`~xpm.errors.SpecError` naming the 1-based column and what
was expected there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NoReturn, Protocol

from ..errors import SpecError

#: Accelerator types a host may declare; ``gpu`` in a spec matches any of them.
ACCELERATOR_TYPES: tuple[str, ...] = ("cuda", "rocm")
#: The wildcard accelerator name of the spec language.
ANY_GPU = "gpu"

#: Memory units: decimal (powers of 1000) and binary (powers of 1024).  A unit is required.
MEMORY_UNITS: dict[str, int] = {
    "K": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
    "TiB": 1024**4,
}

_MINUTE = 60
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR

#: Duration units, each spelling mapped to seconds.
DURATION_UNITS: dict[str, int] = {
    "m": _MINUTE,
    "min": _MINUTE,
    "mins": _MINUTE,
    "minute": _MINUTE,
    "minutes": _MINUTE,
    "h": _HOUR,
    "hour": _HOUR,
    "hours": _HOUR,
    "d": _DAY,
    "day": _DAY,
    "days": _DAY,
}

_SIZE_EXPECTED = "a memory size like 16G or 16GiB"
_DURATION_EXPECTED = "a duration like 2 days, 12h or 90 minutes"
_TERM_EXPECTED = "a requirement: duration=..., cpu(...), " + ", ".join(
    f"{name}(...)" for name in (*ACCELERATOR_TYPES, ANY_GPU)
)


# --------------------------------------------------------------------------- values


def format_size(size: int) -> str:
    """Write a byte count with the largest unit that divides it exactly (``16G``, ``400MiB``)."""
    best = f"{size}B"
    best_factor = 1
    for unit, factor in MEMORY_UNITS.items():
        if size % factor == 0 and factor > best_factor:
            best, best_factor = f"{size // factor}{unit}", factor
    return best


def format_duration(seconds: int) -> str:
    """Write a duration in seconds with the largest exact unit (``2 days``, ``90 minutes``)."""
    for name, factor in (("day", _DAY), ("hour", _HOUR), ("minute", _MINUTE)):
        if seconds % factor == 0:
            count = seconds // factor
            return f"{count} {name}{'' if count == 1 else 's'}"
    return f"{seconds} seconds"


def parse_size(text: str) -> int:
    """Parse a memory size such as ``16G`` (16·10⁹ bytes) or ``16GiB`` (16·2³⁰ bytes)."""
    parser = _Parser(text)
    value = parser.size()
    parser.end()
    return value


def parse_duration(text: str) -> int:
    """Parse a duration such as ``2 days``, ``12h`` or ``90 min`` into seconds."""
    parser = _Parser(text)
    value = parser.duration_value()
    parser.end()
    return value


# --------------------------------------------------------------------------- requirements


@dataclass(frozen=True)
class Accelerator:
    """One accelerator: requested (``kind`` may be ``gpu``, any type) or owned by a host.

    ``mem`` is in bytes; ``None`` means no memory constraint (requests only).
    """

    kind: str
    mem: int | None = None

    def accepts(self, other: Accelerator) -> bool:
        """Whether the host accelerator ``other`` satisfies this requested one."""
        if self.kind != ANY_GPU and self.kind != other.kind:
            return False
        return self.mem is None or (other.mem is not None and other.mem >= self.mem)

    def __str__(self) -> str:
        return f"{self.kind}(mem={format_size(self.mem)})" if self.mem else f"{self.kind}()"


@dataclass(frozen=True)
class CPURequirement:
    """Host memory (bytes) and cores needed; ``None`` when not constrained."""

    mem: int | None = None
    cores: int | None = None

    def combine(self, other: CPURequirement) -> CPURequirement:
        """The requirement satisfying both: the max of each field."""
        return CPURequirement(mem=_max(self.mem, other.mem), cores=_max(self.cores, other.cores))

    def __str__(self) -> str:
        args = []
        if self.mem is not None:
            args.append(f"mem={format_size(self.mem)}")
        if self.cores is not None:
            args.append(f"cores={self.cores}")
        return f"cpu({', '.join(args)})"


class HostResources(Protocol):
    """What matching reads from a host (see :class:`xpm.launcherfinder.Host`)."""

    @property
    def cores(self) -> int | None: ...

    @property
    def memory(self) -> int | None: ...

    @property
    def accelerators(self) -> tuple[Accelerator, ...]: ...

    @property
    def max_duration(self) -> int | None: ...


@dataclass(frozen=True)
class Requirement:
    """One alternative of a spec: CPU, accelerators and duration (seconds) needed together."""

    cpu: CPURequirement = field(default_factory=CPURequirement)
    accelerators: tuple[Accelerator, ...] = ()
    duration: int | None = None

    def combine(self, other: Requirement) -> Requirement:
        """``self & other``: max of memory, cores and duration; accelerators concatenated."""
        return Requirement(
            cpu=self.cpu.combine(other.cpu),
            accelerators=self.accelerators + other.accelerators,
            duration=_max(self.duration, other.duration),
        )

    __and__ = combine

    def mismatches(self, host: HostResources) -> list[str]:
        """Why ``host`` cannot run this requirement (an empty list when it can)."""
        reasons: list[str] = []
        if self.cpu.cores is not None and host.cores is not None and self.cpu.cores > host.cores:
            reasons.append(f"needs {self.cpu.cores} cores, has {host.cores}")
        if self.cpu.mem is not None and host.memory is not None and self.cpu.mem > host.memory:
            reasons.append(
                f"needs {format_size(self.cpu.mem)} memory, has {format_size(host.memory)}"
            )
        reasons.extend(_accelerator_mismatches(self.accelerators, host.accelerators))
        if (
            self.duration is not None
            and host.max_duration is not None
            and self.duration > host.max_duration
        ):
            reasons.append(
                f"needs {format_duration(self.duration)}, "
                f"allows at most {format_duration(host.max_duration)}"
            )
        return reasons

    def __str__(self) -> str:
        parts = []
        if self.duration is not None:
            parts.append(f"duration={format_duration(self.duration)}")
        for accelerator, count in _groups(self.accelerators):
            parts.append(str(accelerator) if count == 1 else f"{accelerator} * {count}")
        if self.cpu != CPURequirement() or not parts:
            parts.append(str(self.cpu))
        return " & ".join(parts)


@dataclass(frozen=True)
class Spec:
    """A parsed spec: alternatives tried in order."""

    alternatives: tuple[Requirement, ...]

    def __str__(self) -> str:
        return " | ".join(str(alternative) for alternative in self.alternatives)


def parse_spec(text: str) -> Spec:
    """Parse a spec; raises :class:`~xpm.errors.SpecError` pointing at the faulty column."""
    return _Parser(text).spec()


# --------------------------------------------------------------------------- matching


def _max(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _groups(accelerators: Iterable[Accelerator]) -> list[tuple[Accelerator, int]]:
    """Identical accelerators counted, in order of first appearance."""
    counts: dict[Accelerator, int] = {}
    for accelerator in accelerators:
        counts[accelerator] = counts.get(accelerator, 0) + 1
    return list(counts.items())


def _describe(accelerator: Accelerator, count: int) -> str:
    noun = "GPU" if count == 1 else "GPUs"
    kind = "" if accelerator.kind == ANY_GPU else f"{accelerator.kind} "
    memory = f" with {format_size(accelerator.mem)}" if accelerator.mem else ""
    return f"{count} {kind}{noun}{memory}"


def _can_assign(requested: tuple[Accelerator, ...], owned: tuple[Accelerator, ...]) -> bool:
    """Whether each requested accelerator gets its own suitable owned one (bipartite matching)."""
    owner_of: dict[int, int] = {}  # owned index -> requested index

    def place(i: int, seen: set[int]) -> bool:
        for j, have in enumerate(owned):
            if j in seen or not requested[i].accepts(have):
                continue
            seen.add(j)
            if j not in owner_of or place(owner_of[j], seen):
                owner_of[j] = i
                return True
        return False

    return all(place(i, set()) for i in range(len(requested)))


def _accelerator_mismatches(
    requested: tuple[Accelerator, ...], owned: tuple[Accelerator, ...]
) -> list[str]:
    if not requested:
        return []
    reasons = []
    for accelerator, count in _groups(requested):
        suitable = sum(1 for have in owned if accelerator.accepts(have))
        if suitable < count:
            # "has 0" alone read as "no GPU" on a host with two smaller ones: say what it has.
            others = (
                f" (its GPUs: {', '.join(_describe(a, n) for a, n in _groups(owned))})"
                if suitable < len(owned)
                else ""
            )
            reasons.append(f"needs {_describe(accelerator, count)}, has {suitable}{others}")
    if not reasons and not _can_assign(requested, owned):
        wanted = ", ".join(_describe(a, n) for a, n in _groups(requested))
        reasons.append(f"needs {wanted} at once, has {len(owned)} GPUs that cannot cover them all")
    return reasons


# --------------------------------------------------------------------------- parser

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOKEN = re.compile(r"[^\s,()&|*=]+")
# ASCII digits only: ``\d`` would read "١" (Arabic-Indic one) as 1.
_QUANTITY = re.compile(r"([0-9]+)[ \t]*([A-Za-z]*)")
_INTEGER = re.compile(r"[0-9]+")
#: The largest number a spec may hold (a count, cores, or a size or duration before its unit).
MAX_NUMBER = 10**9
#: The most GPUs one alternative may ask for.
MAX_GPUS = 1024


class _Parser:
    """Recursive descent over one spec string; ``pos`` is a 0-based index into ``text``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    # -- low level

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def got(self, pos: int) -> str:
        if pos >= len(self.text):
            return "end of spec"
        match = _TOKEN.match(self.text, pos)
        return repr(match.group() if match else self.text[pos])

    def fail(self, expected: str, pos: int | None = None, got: str | None = None) -> NoReturn:
        where = self.pos if pos is None else pos
        seen = self.got(where) if got is None else got
        raise SpecError(
            f'spec error at column {where + 1}: expected {expected}, got {seen} in "{self.text}"'
        )

    def accept(self, literal: str) -> bool:
        self.skip()
        if self.text.startswith(literal, self.pos):
            self.pos += len(literal)
            return True
        return False

    def expect(self, literal: str, expected: str | None = None) -> None:
        if not self.accept(literal):
            self.fail(expected or f"'{literal}'")

    def end(self) -> None:
        self.skip()
        if self.pos < len(self.text):
            self.fail("end of spec")

    def positive(self, what: str, limit: int = MAX_NUMBER) -> int:
        self.skip()
        start = self.pos
        match = _INTEGER.match(self.text, start)
        if match is None:
            self.fail(what, start)
        self.check_number(match.group(), start, limit)
        if int(match.group()) == 0:
            self.fail(what, start)
        self.pos = match.end()
        return int(match.group())

    def check_number(self, digits: str, start: int, limit: int = MAX_NUMBER) -> None:
        # Compared as text first: int() of thousands of digits is slow or refused.
        if len(digits) > len(str(limit)) or int(digits) > limit:
            shown = digits if len(digits) <= 20 else f"{digits[:17]}..."
            self.fail(f"a number of at most {limit:,}", start, repr(shown))

    def quantity(self, units: dict[str, int], expected: str) -> int:
        self.skip()
        start = self.pos
        match = _QUANTITY.match(self.text, start)
        if match is None:
            self.fail(expected, start)
        number, unit = match.groups()
        if unit not in units:
            # Report the whole token (number and unit) the user wrote.
            token = _TOKEN.match(self.text, start)
            end = max(match.end(), token.end() if token else start)
            self.fail(expected, start, repr(self.text[start:end].strip()))
        self.check_number(number, start)
        if int(number) == 0:
            self.fail(expected.replace(" like", " greater than zero, like"), start)
        self.pos = match.end()
        return int(number) * units[unit]

    def size(self) -> int:
        return self.quantity(MEMORY_UNITS, _SIZE_EXPECTED)

    def duration_value(self) -> int:
        return self.quantity(DURATION_UNITS, _DURATION_EXPECTED)

    # -- grammar

    def spec(self) -> Spec:
        alternatives = [self.alternative()]
        while self.accept("|"):
            alternatives.append(self.alternative())
        self.skip()
        if self.pos < len(self.text):
            self.fail("'&', '|' or end of spec")
        return Spec(tuple(alternatives))

    def alternative(self) -> Requirement:
        requirement = self.term()
        while self.accept("&"):
            start = self.pos
            requirement = requirement.combine(self.term())
            if len(requirement.accelerators) > MAX_GPUS:  # e.g. cuda * 1000 & cuda * 1000
                self.fail(f"at most {MAX_GPUS} GPUs in all", start, "more")
        return requirement

    def term(self) -> Requirement:
        self.skip()
        start = self.pos
        match = _WORD.match(self.text, start)
        name = match.group() if match else ""
        if name == "duration":
            self.pos = start + len(name)
            self.expect("=", "'=' after duration")
            return Requirement(duration=self.duration_value())
        if name == "cpu":
            self.pos = start + len(name)
            return Requirement(cpu=self.cpu_arguments())
        if name in ACCELERATOR_TYPES or name == ANY_GPU:
            self.pos = start + len(name)
            accelerator = Accelerator(name, self.accelerator_arguments())
            count = (
                self.positive("a positive GPU count after '*'", MAX_GPUS) if self.accept("*") else 1
            )
            return Requirement(accelerators=(accelerator,) * count)
        self.fail(_TERM_EXPECTED, start)

    def arguments(self, valid: tuple[str, ...]) -> dict[str, int]:
        """``( name=value, ... )``; ``mem`` values are sizes, ``cores`` positive integers."""
        values: dict[str, int] = {}
        self.expect("(")
        if self.accept(")"):
            return values
        while True:
            self.skip()
            start = self.pos
            match = _WORD.match(self.text, start)
            name = match.group() if match else ""
            if name not in valid:
                self.fail(f"an argument name ({' or '.join(valid)})", start)
            if name in values:
                self.fail("each argument once", start, f"a second {name!r}")
            self.pos = start + len(name)
            self.expect("=", f"'=' after {name}")
            values[name] = (
                self.size() if name == "mem" else self.positive(f"a positive number of {name}")
            )
            if self.accept(")"):
                return values
            self.expect(",", "',' or ')'")

    def cpu_arguments(self) -> CPURequirement:
        values = self.arguments(("mem", "cores"))
        return CPURequirement(mem=values.get("mem"), cores=values.get("cores"))

    def accelerator_arguments(self) -> int | None:
        return self.arguments(("mem",)).get("mem")
