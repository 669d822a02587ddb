"""Writing many rows at once: what the batch paths (``send_many``, the renewals sweep) need
beyond Django's ``bulk_update``, whose ``CASE WHEN`` per row and field costs more Python time
than the database spends."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connections, router
from django.db.models import Field, Model

#: Rows per UPDATE statement.
CHUNK = 2000


def update_rows(objs: Sequence[Model], fields: Sequence[str]) -> None:
    """Save ``fields`` of every object (all of one model) in one UPDATE per ``CHUNK`` rows.

    On PostgreSQL: ``UPDATE … FROM (VALUES …)`` with each column cast to its type; elsewhere
    Django's ``bulk_update``.
    """
    if not objs or not fields:
        return
    model = type(objs[0])
    meta = model._meta
    assert meta.pk is not None
    columns = [_column(meta.pk), *(_column(meta.get_field(name)) for name in fields)]
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        model._default_manager.bulk_update(objs, fields)
        return
    quote = connection.ops.quote_name
    pk = quote(columns[0][1])
    names = ", ".join(quote(column) for _, column in columns)
    sets = ", ".join(f"{quote(column)} = v.{quote(column)}" for _, column in columns[1:])
    first_row = "(" + ", ".join(f"%s::{f.db_type(connection)}" for f, _ in columns) + ")"
    other_row = "(" + ", ".join(["%s"] * len(columns)) + ")"
    for start in range(0, len(objs), CHUNK):
        chunk = objs[start : start + CHUNK]
        params = [
            field.get_db_prep_save(getattr(obj, field.attname), connection)
            for obj in chunk
            for field, _ in columns
        ]
        values = ", ".join([first_row, *[other_row] * (len(chunk) - 1)])
        sql = (
            f"UPDATE {quote(meta.db_table)} AS t SET {sets} FROM (VALUES {values}) "
            f"AS v({names}) WHERE t.{pk} = v.{pk}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)


def _column(field: Any) -> tuple[Field[Any, Any], str]:
    """A concrete field and its column name."""
    if not isinstance(field, Field) or field.column is None:
        raise ValueError(f"{field!r} is not a column of its model.")
    return field, field.column
