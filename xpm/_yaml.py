"""Reading YAML that users write (experiment files, ``-c`` values, launchers.yaml).

One safe loader for all of them: duplicate keys are refused (PyYAML silently keeps the
last), ``1e-3`` is a float (YAML 1.2), and what a few bytes could make huge or unreadable is
refused with a one-line message instead of hanging or crashing later: alias expansion
("billion laughs") is bounded, integers are bounded in digits, strings must be valid
Unicode (no lone surrogates).  PyYAML is imported only when YAML is read.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

#: The most values (scalars, lists and mappings, each alias counted as what it repeats) a
#: YAML document may expand to: far above any experiment file, far below a memory problem.
MAX_VALUES = 1_000_000
#: The most digits of an integer (Python refuses to read more than 4,300).
MAX_DIGITS = 1_000

_LOADER: Any = None


class YamlProblem(Exception):
    """A YAML text cannot be used; ``str()`` is the one-line reason (without the file)."""


class YamlValueProblem(YamlProblem):
    """Well-formed YAML with a value beyond xpm's limits (a number too long or too large):
    not text that merely failed to parse, so a ``-c`` value is refused, not kept as text."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        #: The problem without its place (for a value given on the command line).
        self.detail = detail


def loader() -> Any:
    """The safe loader class shared by every YAML file xpm reads."""
    global _LOADER
    if _LOADER is not None:
        return _LOADER
    import yaml

    class Loader(yaml.SafeLoader):
        def get_single_data(self) -> Any:
            node = self.get_single_node()
            if node is None:
                return None
            _check_nodes(node)
            return self.construct_document(node)

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
        list("-+0123456789"),
    )

    def construct_mapping(loader: Any, node: Any, deep: bool = False) -> Any:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen[key] = True
        return yaml.SafeLoader.construct_mapping(loader, node, deep)

    class ValueLimit(yaml.constructor.ConstructorError):
        pass

    def construct_int(loader: Any, node: Any) -> Any:
        if len(node.value) > MAX_DIGITS:
            raise ValueLimit(
                None,
                None,
                f"integer of {len(node.value)} characters (at most {MAX_DIGITS} digits)",
                node.start_mark,
            )
        return yaml.SafeLoader.construct_yaml_int(loader, node)

    def construct_float(loader: Any, node: Any) -> Any:
        value = yaml.SafeLoader.construct_yaml_float(loader, node)
        if math.isinf(value) and "inf" not in str(node.value).lower():
            # 1e400 would silently become infinity; .inf says so on purpose.
            raise ValueLimit(
                None,
                None,
                f"{_short(str(node.value))} is beyond the range of a float (at most about "
                "1.8e308); write .inf or -.inf for an infinity",
                node.start_mark,
            )
        return value

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    Loader.add_constructor("tag:yaml.org,2002:float", construct_float)
    Loader.value_limit = ValueLimit  # type: ignore[attr-defined]
    Loader.add_constructor("tag:yaml.org,2002:int", construct_int)
    _LOADER = Loader
    return Loader


def _check_nodes(root: Any) -> None:
    """Refuse a node graph that expands to more than MAX_VALUES values, or holds a string
    that is not valid Unicode; each node is visited once, so aliases cost nothing here."""
    import yaml

    sizes: dict[int, int] = {}

    def size(node: Any) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        sizes[id(node)] = 1  # a recursive alias counts once
        if isinstance(node, yaml.ScalarNode):
            total = 1
            try:
                node.value.encode("utf-8")
            except UnicodeEncodeError as error:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"a string holds {error.object[error.start]!r}, a lone surrogate that "
                    "is not a character; write the character itself",
                    node.start_mark,
                ) from None
        elif isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(child) for child in node.value)
        else:
            total = 1 + sum(size(key) + size(value) for key, value in node.value)
        if total > MAX_VALUES:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"the document expands to more than {MAX_VALUES:,} values through aliases "
                "(&anchor / *alias); write the values out or use fewer aliases",
                node.start_mark,
            )
        sizes[id(node)] = total
        return total

    size(root)


def _short(text: str) -> str:
    return text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"


def parse(text: str) -> Any:
    """Load one YAML document from ``text``; :class:`YamlProblem` says what is wrong."""
    import yaml

    try:
        return yaml.load(text, Loader=loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or " ".join(str(error).split())
        if isinstance(error, loader().value_limit):
            raise YamlValueProblem(f"invalid YAML{where}: {problem}", problem) from None
        raise YamlProblem(f"invalid YAML{where}: {problem}") from None
    except RecursionError:
        raise YamlProblem("invalid YAML: nested too deeply") from None


def read(path: Path) -> Any:
    """Read and load the YAML file ``path``; :class:`YamlProblem` (or :class:`OSError`)."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise YamlProblem(
            f"not UTF-8 text: byte 0x{data[error.start]:02x} on line {line} cannot be "
            "decoded; save the file as UTF-8"
        ) from None
    return parse(text)
