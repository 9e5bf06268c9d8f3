"""The SQL statements that create the schema of :mod:`xpm.index._schema`.

CREATE TABLE (as a table was at a given schema version), the column definitions that
``ALTER TABLE`` adds, CREATE INDEX and CREATE VIEW: what :mod:`xpm.index._migrations`
runs, and the view SQL the generated docs show.
"""

from __future__ import annotations

from ._schema import Column, IndexDef, Table, View
from ._version import SCHEMA_VERSION


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def column_sql(column: Column) -> str:
    """The column definition in CREATE/ALTER TABLE."""
    text = _quote(column.name)
    if column.type:
        text += " " + column.type
    if column.references:
        ref_table, ref_col = column.references.split(".")
        text += f" REFERENCES {_quote(ref_table)}({_quote(ref_col)})"
    return text


def create_table_sql(t: Table, version: int = SCHEMA_VERSION) -> str:
    """CREATE TABLE for ``t`` as it was at schema ``version``."""
    cols = [column_sql(c) for c in t.columns if c.since <= version]
    pk = ", ".join(_quote(c) for c in t.primary_key)
    body = ",\n  ".join([*cols, f"PRIMARY KEY ({pk})"])
    extra = " WITHOUT ROWID" if t.without_rowid else ""
    return f"CREATE TABLE IF NOT EXISTS {_quote(t.name)} (\n  {body}\n){extra}"


def _index_column(spec: str) -> str:
    name, _sep, order = spec.partition(" ")
    return _quote(name) + (f" {order}" if order else "")


def create_index_sql(i: IndexDef) -> str:
    cols = ", ".join(_index_column(c) for c in i.columns)
    return f"CREATE INDEX IF NOT EXISTS {_quote(i.name)} ON {_quote(i.table)} ({cols})"


def create_view_sql(v: View) -> str:
    return f"CREATE VIEW IF NOT EXISTS {_quote(v.name)} AS\n{v.sql}"
