"""params.json: configurations saved as readable JSON and loaded back in another process.

Format (version 1)::

    {"xpm": 1, "root": 2, "objects": [
        {"id": 0, "module": "mytasks", "qualname": "Model", "file": "/src/mytasks.py",
         "typeid": "mytasks.model", "identifier": "<64 hex>", "task": null,
         "values": {"n_layers": 3, "path": {"$path": "jobs/x/y/model.pth", "base": "workdir"}}},
        ...]}

Objects are listed dependencies first; ``task`` names the object of the task whose output
this object is.  Values: JSON scalars as themselves (``1`` and ``1.0`` stay distinct), and
``{"$config": id}``, ``{"$path": ..., "base": "workdir"|null}``, ``{"$genpath": rel}``,
``{"$enum": "module:Qualname", "name": N, "file": F}``, ``{"$tuple": [...]}``, ``{"$dict": {...}}``,
``{"$float": "nan"|"inf"|"-inf"}``.  All values are saved, Meta and defaults included;
an object with Meta values names them in ``"meta": [...]`` (for the index, which shows
settings apart from Meta parameters; loading ignores it).
"""

from __future__ import annotations

import enum
import importlib
import importlib.util
import json
import math
import sys
from pathlib import Path, PurePath
from typing import Any

from ._config import Config
from ._configinfo import MISSING
from ._types import GeneratedPath, ParamKind
from .errors import SerializationError

FORMAT_VERSION = 1

# Exact types saved as themselves (subclasses such as enums or bool-likes take the long way).
_AS_IS = frozenset({int, str, bool, type(None)})
# One encoder for every document: json.dumps builds a new one per call when given options.
_encode = json.JSONEncoder(ensure_ascii=False).encode


class _Writer:
    def __init__(self, workdir: Path | None) -> None:
        self.workdir = workdir.absolute() if workdir is not None else None
        self.objects: list[dict[str, Any]] = []
        self.ids: dict[int, int] = {}

    def add(self, cfg: Config) -> int:
        key = id(cfg)
        if key in self.ids:
            return self.ids[key]
        fields = cfg.__dict__
        task = fields.get("_xpm_task")
        task_ref = self.add(task) if task is not None else None
        cls = type(cfg)
        info = cls.__xpm__
        values = {}
        meta = []
        for p in info.param_list:
            value = fields.get(p.name, MISSING)
            if value is MISSING:
                continue
            # Most values are plain scalars: saved as themselves, without the dispatch.
            values[p.name] = value if type(value) in _AS_IS else self.value(value)
            if p.kind is ParamKind.META:
                meta.append(p.name)
        obj: dict[str, Any] = {
            "id": len(self.objects),
            "module": cls.__module__,
            "qualname": cls.__qualname__,
            "file": info.module_file,
            "typeid": info.typeid,
            "identifier": cfg.__identifier__().hex,
            "task": task_ref,
            "values": values,
        }
        if meta:  # read by the index (Meta parameters are not settings), never by load()
            obj["meta"] = meta
        self.ids[key] = obj["id"]
        self.objects.append(obj)
        return obj["id"]  # type: ignore[return-value]

    def value(self, value: Any) -> Any:
        if (
            value is None
            or isinstance(value, (bool, int, str))
            and not isinstance(value, enum.Enum)
        ):
            return value
        if isinstance(value, float):
            if math.isfinite(value):
                return value
            return {"$float": "nan" if value != value else ("inf" if value > 0 else "-inf")}
        if isinstance(value, Config):
            return {"$config": self.add(value)}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, tuple):
            return {"$tuple": [self.value(v) for v in value]}
        if isinstance(value, dict):
            return {"$dict": {k: self.value(v) for k, v in value.items()}}
        if isinstance(value, enum.Enum):
            cls = type(value)
            module = sys.modules.get(cls.__module__)
            return {
                "$enum": f"{cls.__module__}:{cls.__qualname__}",
                "name": value.name,
                "file": getattr(module, "__file__", None),
            }
        if isinstance(value, GeneratedPath):
            return {"$genpath": value.relative}
        if isinstance(value, PurePath):
            path = Path(value)
            if self.workdir is not None and path.is_absolute():
                try:
                    rel = path.relative_to(self.workdir)
                except ValueError:
                    pass
                else:
                    return {"$path": rel.as_posix(), "base": "workdir"}
            return {"$path": str(value), "base": None}
        raise SerializationError(f"cannot save a value of type {type(value).__name__}")


def to_params(cfg: Config, workdir: Path | None = None) -> dict[str, Any]:
    """The params.json document of ``cfg``; paths inside ``workdir`` are saved relative to it."""
    writer = _Writer(workdir)
    root = writer.add(cfg)
    return {"xpm": FORMAT_VERSION, "root": root, "objects": writer.objects}


def render(doc: dict[str, Any]) -> str:
    """params.json text of a document made by :func:`to_params`: one object per line.

    (``json.dumps(indent=...)`` falls back to the pure-Python encoder: 5x slower.)
    """
    objects = ",\n  ".join(map(_encode, doc["objects"]))
    return f'{{"xpm": {doc["xpm"]}, "root": {doc["root"]}, "objects": [\n  {objects}\n]}}\n'


def dumps(cfg: Config, workdir: Path | None = None) -> str:
    """params.json text of ``cfg``, readable and fast to write."""
    return render(to_params(cfg, workdir))


def import_class(module: str, qualname: str, file: str | None) -> type:
    """Import ``module.qualname``, loading ``file`` when the module is not importable."""
    mod = sys.modules.get(module)
    if module == "__main__" and file and not _same_file(getattr(mod, "__file__", None), file):
        # Saved by a script run as __main__, loaded by another program: load the script as
        # the module named after its file (the name its type ids already use).
        mod = sys.modules.get(Path(file).stem)
        if not _same_file(getattr(mod, "__file__", None), file):
            if not Path(file).exists():
                raise SerializationError(
                    f"cannot load {qualname} from the script {file}: the file is gone; "
                    "keep the script where it was when the configuration was saved"
                )
            mod = _import_file(module, Path(file))
    if mod is None:
        try:
            mod = importlib.import_module(module)
        except ImportError as first:
            if not file or not Path(file).exists():
                raise SerializationError(
                    f"cannot import module {module!r} (needed for {qualname}): {first}; "
                    "install it or keep its file where it was"
                ) from None
            mod = _import_file(module, Path(file))
    obj: Any = mod
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise SerializationError(f"module {module!r} has no class {qualname!r}")
    if not isinstance(obj, type):
        raise SerializationError(f"{module}.{qualname} is not a class")
    return obj


def _same_file(a: str | None, b: str) -> bool:
    if a is None:
        return False
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def _import_file(module: str, file: Path) -> Any:
    # A package module (a.b.c) lives at ROOT/a/b/c.py: put ROOT on sys.path and import it.
    parts = module.split(".")
    root = file.absolute().parent
    for _ in parts[:-1]:
        root = root.parent
    if module != "__main__" and str(root) not in sys.path:
        sys.path.insert(0, str(root))
        try:
            return importlib.import_module(module)
        except ImportError:
            pass
    name = file.stem if module == "__main__" else module
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise SerializationError(f"cannot load module {module!r} from {file}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


class _Reader:
    def __init__(self, doc: dict[str, Any], workdir: Path | None) -> None:
        self.doc = doc
        self.workdir = workdir
        self.built: dict[int, Config] = {}

    def build(self, ref: int) -> Config:
        if ref in self.built:
            return self.built[ref]
        try:
            obj = self.doc["objects"][ref]
            cls = import_class(obj["module"], obj["qualname"], obj.get("file"))
            values = {k: self.value(v) for k, v in obj["values"].items()}
        except (KeyError, IndexError, TypeError) as e:
            raise SerializationError(f"params.json is malformed near object {ref}: {e!r}") from None
        if not issubclass(cls, Config):
            raise SerializationError(f"{obj['module']}.{obj['qualname']} is not a Config")
        cfg = cls(**values)
        if obj.get("task") is not None:
            cfg.__dict__["_xpm_task"] = self.build(obj["task"])
        cfg.__xpm_freeze__()
        self.built[ref] = cfg
        return cfg

    def value(self, v: Any) -> Any:
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if not isinstance(v, dict):
            return v
        if "$config" in v:
            return self.build(v["$config"])
        if "$path" in v:
            if v.get("base") == "workdir":
                if self.workdir is None:
                    raise SerializationError("a workdir-relative path needs the workdir to load")
                return self.workdir / v["$path"]
            return Path(v["$path"])
        if "$genpath" in v:
            return GeneratedPath(v["$genpath"])
        if "$tuple" in v:
            return tuple(self.value(x) for x in v["$tuple"])
        if "$dict" in v:
            return {k: self.value(x) for k, x in v["$dict"].items()}
        if "$enum" in v:
            module, qualname = v["$enum"].split(":", 1)
            cls = import_class(module, qualname, v.get("file"))
            if not issubclass(cls, enum.Enum) or v.get("name") not in cls.__members__:
                raise SerializationError(
                    f"{module}.{qualname} has no enum member {v.get('name')!r}"
                )
            return cls[v["name"]]
        if "$float" in v:
            return float(v["$float"])
        raise SerializationError(f"params.json has an unknown value {v!r}")


def from_params(doc: dict[str, Any], workdir: Path | None = None) -> Config:
    """Rebuild the configuration saved by :func:`to_params` (frozen)."""
    if not isinstance(doc, dict) or doc.get("xpm") != FORMAT_VERSION:
        raise SerializationError(
            f"not an xpm params document of version {FORMAT_VERSION} "
            f"(found {doc.get('xpm') if isinstance(doc, dict) else type(doc).__name__!r})"
        )
    return _Reader(doc, workdir).build(doc["root"])


def loads(text: str, workdir: Path | None = None) -> Config:
    """Rebuild a configuration from params.json text."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise SerializationError(f"params.json is not valid JSON: {e}") from None
    return from_params(doc, workdir)


def save(cfg: Config, path: Path, workdir: Path | None = None) -> None:
    """Write ``cfg`` to ``path`` as params.json."""
    Path(path).write_text(dumps(cfg, workdir), encoding="utf-8")


def load(path: Path, workdir: Path | None = None) -> Config:
    """Read a configuration written by :func:`save`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SerializationError(f"{path} does not exist") from None
    return loads(text, workdir)
