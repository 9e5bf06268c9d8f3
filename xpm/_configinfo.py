"""What a configuration class declares: its parameters, their defaults, its type id.

:class:`ConfigInfo` (``Cls.__xpm__``) is read once per class from its annotations: each
parameter (:class:`ParamInfo`: kind, value type, default or factory from :func:`field`,
the attribute docstring under it), the parameters that count in the identifier, and the
type id (:func:`typeid_of`), checked where the class is defined.  ``MISSING`` marks a
value not given.  The configurations themselves live in xpm/_config.py.
"""

from __future__ import annotations

import contextlib
import enum
import re
import sys
import typing
from collections.abc import Callable
from pathlib import PurePath
from typing import Any

from ._types import (
    GeneratedPath,
    Mismatch,
    ParamKind,
    PathGenerator,
    UnsupportedType,
    ValueType,
    compile_type,
    describe_value,
    is_optional,
    narrows,
    split_annotation,
)
from .errors import ConfigError


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

_SCALARS = (bool, int, float, str, type(None), PurePath, enum.Enum)


class Field:
    """Default of a parameter: ``field(default=...)`` or ``field(default_factory=...)``."""

    __slots__ = ("default", "default_factory")

    def __init__(
        self, default: Any = MISSING, default_factory: Callable[[], Any] | None = None
    ) -> None:
        self.default = default
        self.default_factory = default_factory

    def __repr__(self) -> str:
        return f"Field(default={self.default!r}, default_factory={self.default_factory!r})"


def field(*, default: Any = MISSING, default_factory: Callable[[], Any] | None = None) -> Any:
    """Declare a parameter's default: a value, or a factory called for each new configuration.

    A value equal to the default is left out of the identifier, so adding a parameter with a
    default keeps the identifiers of existing configurations.
    """
    if default is not MISSING and default_factory is not None:
        raise ConfigError("field(): give either default= or default_factory=, not both")
    return Field(default, default_factory)


class ParamInfo:
    """One declared parameter of a configuration class."""

    __slots__ = (
        "name",
        "kind",
        "type",
        "annotation",
        "default",
        "factory",
        "owner",
        "plain",
        "_ref",
    )

    def __init__(
        self,
        name: str,
        kind: ParamKind,
        vtype: ValueType,
        annotation: Any,
        default: Any,
        factory: Callable[[], Any] | None,
        owner: type,
    ) -> None:
        self.name = name
        self.kind = kind
        self.type = vtype
        self.annotation = annotation
        self.default = default
        self.factory = factory
        self.owner = owner
        self.plain = kind is not ParamKind.CONSTANT  # values only need p.type.convert()
        self._ref: Any = MISSING  # factory result used to recognise "equal to the default"

    @property
    def required(self) -> bool:
        """Whether a value must be given (no default, no factory)."""
        return self.default is MISSING and self.factory is None

    @property
    def doc(self) -> str | None:
        """The attribute docstring written under the declaration, if any."""
        return attribute_docs(self.owner).get(self.name)

    def reference_default(self) -> Any:
        """The value that counts as 'the default' for the identifier (MISSING: none)."""
        if self.default is not MISSING:
            return self.default
        if self.factory is None:
            return MISSING
        if self._ref is MISSING:
            value = self.factory()
            self._ref = value if not isinstance(value, GeneratedPath) else MISSING
        return self._ref

    def type_name(self) -> str:
        return self.type.name


class ConfigInfo:
    """Everything xpm knows about a configuration class (``Cls.__xpm__``)."""

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.typeid: str = typeid_of(cls)
        self.params: dict[str, ParamInfo] = {}
        try:
            hints = typing.get_type_hints(cls, include_extras=True)
        except NameError as e:
            raise ConfigError(
                f"{cls.__qualname__}: cannot resolve an annotation ({e}); define the referenced "
                "class before the first use of this configuration"
            ) from None
        check_overrides(cls, hints)
        for klass in reversed(cls.__mro__):
            for name in klass.__dict__.get("__annotations__", {}):
                if name in self.params or name not in hints:
                    continue
                split = split_annotation(hints[name])
                if split is None:
                    continue
                kind, inner = split
                default_value = _find_default(cls, name)
                default, factory = MISSING, None
                if isinstance(default_value, Field):
                    default, factory = default_value.default, default_value.default_factory
                else:
                    default = default_value
                try:
                    vtype = compile_type(inner)
                except UnsupportedType as e:
                    raise ConfigError(f"{cls.__qualname__}.{name}: {e}") from None
                if (
                    default is MISSING
                    and factory is None
                    and kind is not ParamKind.CONSTANT
                    and is_optional(vtype)
                ):
                    # experimaestro's rule: an Optional without a default defaults to None,
                    # exactly as if `= None` were written (so None is skipped in the identifier).
                    default = None
                if default is not MISSING and not isinstance(default, GeneratedPath):
                    try:
                        default = vtype.convert(default)
                    except Mismatch as e:
                        raise ConfigError(
                            f"{cls.__qualname__}.{name}{e.path}: the default must be "
                            f"{e.expected}, got {describe_value(e.value)}"
                        ) from None
                if kind is ParamKind.CONSTANT and default is MISSING:
                    raise ConfigError(
                        f"{cls.__qualname__}.{name}: a Constant needs a value "
                        f"(write `{name}: Constant[...] = value`)"
                    )
                self.params[name] = ParamInfo(name, kind, vtype, inner, default, factory, klass)
        # Remove class-level defaults so that an unset value reaches __getattr__.
        for klass in cls.__mro__:
            for name in self.params:
                if name in klass.__dict__ and klass is not object:
                    with contextlib.suppress(AttributeError, TypeError):
                        delattr(klass, name)
        self.param_list = list(self.params.values())
        # Defaults shared by every instance (immutable), and those copied or built each time.
        self.fixed_defaults = {
            p.name: p.default
            for p in self.param_list
            if p.default is not MISSING and _is_immutable(p.default)
        }
        self.dynamic_defaults = [
            p
            for p in self.param_list
            if p.name not in self.fixed_defaults
            and (p.default is not MISSING or p.factory is not None)
        ]
        # Generated paths are outputs: like Meta values they never count in the identifier.
        self.identity_params = sorted(
            (
                p
                for p in self.param_list
                if p.kind is not ParamKind.META and not isinstance(p.factory, PathGenerator)
            ),
            key=lambda p: p.name,
        )
        self.id_plan: Any = None  # per-class encoding data, owned by xpm._identifier

    @property
    def doc(self) -> str | None:
        """The class docstring."""
        import inspect

        return inspect.getdoc(self.cls)

    @property
    def module_file(self) -> str | None:
        """The file that defines the class (so a job process can import it)."""
        module = sys.modules.get(self.cls.__module__)
        return getattr(module, "__file__", None)


def _is_immutable(value: Any) -> bool:
    if isinstance(value, _SCALARS):
        return True
    if type(value) in (tuple, frozenset):
        return all(_is_immutable(v) for v in value)
    return False


#: The longest type id, in UTF-8 bytes: a type id names a directory (``WORKDIR/jobs/<type
#: id>``) and file systems refuse names over 255 bytes.
TYPEID_MAX_BYTES = 200
# Dot-separated segments of letters, digits, ``_``, ``-`` (and ``<``/``>`` for the
# ``<locals>`` of a derived id); no segment is empty, so no ``..``, no ``/`` and no NUL.
_TYPEID_SEGMENT = re.compile(r"[^\W][\w<>-]*|<[\w<>-]*", re.UNICODE)


def typeid_of(cls: type) -> str:
    """The type id of ``cls`` (docs/identifiers.md, "Type id"), or a :class:`ConfigError`
    naming ``cls`` if it is not valid: the type id names the task's directory under
    ``WORKDIR/jobs``, so it must stay one harmless path component."""
    typeid = cls.__dict__.get("__xpmid__") or f"{module_name(cls)}.{cls.__qualname__}".lower()
    if not isinstance(typeid, str):
        raise ConfigError(
            f"{cls.__qualname__}: __xpmid__ must be a string, got {type(typeid).__name__}"
        )
    problem = None
    if len(typeid.encode("utf-8", "surrogatepass")) > TYPEID_MAX_BYTES:
        problem = f"is longer than {TYPEID_MAX_BYTES} bytes"
    elif not all(_TYPEID_SEGMENT.fullmatch(part) for part in typeid.split(".")):
        problem = (
            "must be dot-separated names of letters, digits, '_', '-' "
            "(no empty part, '/', space or control character)"
        )
    if problem is not None:
        shown = typeid if len(typeid) <= 60 else typeid[:57] + "..."
        source = "__xpmid__" if cls.__dict__.get("__xpmid__") else "derived type id"
        raise ConfigError(
            f"{cls.__qualname__}: the {source} {shown!r} {problem}; set __xpmid__ to a "
            "valid id such as 'mylab.model'"
        )
    return typeid


def module_name(cls: type) -> str:
    """The module name used in type ids: a script run as ``__main__`` counts as its file stem,
    so identifiers are the same whether the script is run or imported."""
    if cls.__module__ == "__main__":
        main = sys.modules.get("__main__")
        file = getattr(main, "__file__", None)
        if file:
            from pathlib import Path

            return Path(file).stem
    return cls.__module__


def check_overrides(cls: type, hints: dict[str, Any] | None) -> None:
    """Refuse a parameter that a subclass re-declares with a type its base does not allow.

    Called when the class is defined (``hints`` None: annotations that cannot be resolved yet,
    e.g. a reference to a class defined later, are checked when the class is first used) and
    again with the resolved ``hints`` when its ConfigInfo is built.
    """
    own = cls.__dict__.get("__annotations__", {})
    redeclared: list[tuple[str, type]] = []
    for name in own:
        base = next(
            (k for k in cls.__mro__[1:] if name in k.__dict__.get("__annotations__", {})), None
        )
        if base is not None and base is not object:
            redeclared.append((name, base))
    if not redeclared:
        return
    try:
        if hints is None:
            hints = typing.get_type_hints(cls, include_extras=True)
        bases = {base: typing.get_type_hints(base, include_extras=True) for _, base in redeclared}
    except Exception:  # noqa: BLE001 (unresolvable now: ConfigInfo reports it when used)
        return
    for name, base in redeclared:
        new, old = split_annotation(hints.get(name)), split_annotation(bases[base].get(name))
        if new is None or old is None or narrows(new[1], old[1]):
            continue
        new_name, old_name = _annotation_name(new[1]), _annotation_name(old[1])
        raise ConfigError(
            f"{cls.__qualname__}.{name}: re-declared as {new_name}, but {base.__qualname__} "
            f"declares it {old_name}; a subclass may only narrow an inherited parameter's type "
            f"(e.g. to a subclass): keep {old_name} or use another parameter name"
        )


def _annotation_name(tp: Any) -> str:
    try:
        return compile_type(tp).name
    except UnsupportedType:
        return getattr(tp, "__name__", None) or repr(tp)


def _find_default(cls: type, name: str) -> Any:
    for klass in cls.__mro__:
        if name in klass.__dict__:
            return klass.__dict__[name]
        defaults = klass.__dict__.get("_xpm_defaults")
        if defaults and name in defaults:
            return defaults[name]
    return MISSING


def attribute_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings (a string literal right after an annotated attribute), by name."""
    cached = cls.__dict__.get("_xpm_attr_docs")
    if cached is not None:
        return typing.cast(dict[str, str], cached)
    import ast  # documentation is rarely asked for: keep these off the import path
    import inspect
    import textwrap

    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object:
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
            tree = ast.parse(source)
        except (OSError, TypeError, SyntaxError, IndentationError):
            continue
        body = next((n.body for n in tree.body if isinstance(n, ast.ClassDef)), [])
        for prev, node in zip(body, body[1:], strict=False):
            if (
                isinstance(prev, ast.AnnAssign)
                and isinstance(prev.target, ast.Name)
                and isinstance(node, ast.Expr)
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                docs[prev.target.id] = inspect.cleandoc(node.value.value)
    type.__setattr__(cls, "_xpm_attr_docs", docs)
    return docs
