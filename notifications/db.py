"""Writing many rows at once: what the batch paths (``send_many``, the renewals sweep) need
beyond Django's ``bulk_update``, whose ``CASE WHEN`` per row and field costs more Python time
than the database spends."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connections, router
from django.db.models import Field, ForeignKey, Model


def update_rows(objs: Sequence[Model], fields: Sequence[str]) -> None:
    """Save ``fields`` of every object (all of one model) in one UPDATE.

    On PostgreSQL: ``UPDATE … FROM unnest(…)``, one array parameter per column (the query
    text stays short however many rows); elsewhere Django's ``bulk_update``.
    """
    if not objs or not fields:
        return
    model = type(objs[0])
    meta = model._meta
    assert meta.pk is not None
    columns = [_column(meta.pk), *(_column(meta.get_field(name)) for name in fields)]
    if len(objs) == 1:  # a plain UPDATE is cheaper to plan than the array form
        model._default_manager.filter(pk=objs[0].pk).update(
            **{name: getattr(objs[0], name) for name in fields}
        )
        return
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        model._default_manager.bulk_update(objs, fields)
        return
    quote = connection.ops.quote_name
    pk = quote(columns[0][1])
    sets = ", ".join(f"{quote(column)} = v.{quote(column)}" for _, column in columns[1:])
    sql = (
        f"UPDATE {quote(meta.db_table)} AS t SET {sets} "
        f"FROM {_unnest(columns, connection)} WHERE t.{pk} = v.{pk}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, _arrays(objs, columns, connection))


def insert_rows(objs: Sequence[Model]) -> None:
    """Insert every object (all of one model, none saved yet) and set their primary keys.

    On PostgreSQL: ``INSERT … SELECT * FROM unnest(…) RETURNING``, one array parameter per
    column; elsewhere Django's ``bulk_create``. Raises ``IntegrityError`` as an INSERT does.
    """
    if not objs:
        return
    model = type(objs[0])
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(objs)
        return
    meta = model._meta
    assert meta.pk is not None
    for obj in objs:
        for field in meta.local_concrete_fields:
            if field is not meta.pk:
                field.pre_save(obj, add=True)  # auto_now_add and the like
    columns = [_column(field) for field in meta.local_concrete_fields if field is not meta.pk]
    quote = connection.ops.quote_name
    names = ", ".join(quote(column) for _, column in columns)
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({names}) SELECT * FROM "
        f"{_unnest(columns, connection)} RETURNING {quote(_column(meta.pk)[1])}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, _arrays(objs, columns, connection))
        ids = [row[0] for row in cursor.fetchall()]
    for obj, pk in zip(objs, ids, strict=True):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = connection.alias


def psycopg3(connection: Any) -> bool:
    """Whether ``connection`` is PostgreSQL through psycopg 3, whose COPY and C loaders the
    batch paths use."""
    if connection.vendor != "postgresql":
        return False  # and psycopg may not be installed at all
    from django.db.backends.postgresql.psycopg_any import is_psycopg3

    return bool(is_psycopg3)


def copy_rows(model: type[Model], columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Insert ``rows`` into ``model``'s table by one ``COPY`` (its database must be
    :func:`psycopg3`): each row the values of ``columns`` (attnames) as the column stores
    them (a JSON column's as its JSON text). No field preparation, and no primary keys come
    back: for rows written by the thousand, where an ``INSERT``'s parameters cost more than
    the database's work."""
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    names = ", ".join(quote(_column(model._meta.get_field(name))[1]) for name in columns)
    statement = f"COPY {quote(model._meta.db_table)} ({names}) FROM STDIN"
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


Column = tuple["Field[Any, Any]", str]


def _column(field: Any) -> Column:
    """A concrete field and its column name."""
    if not isinstance(field, Field) or field.column is None:
        raise ValueError(f"{field!r} is not a column of its model.")
    return field, field.column


def _unnest(columns: list[Column], connection: Any) -> str:
    quote = connection.ops.quote_name
    arrays = ", ".join(f"%s::{field.db_type(connection)}[]" for field, _ in columns)
    return f"unnest({arrays}) AS v({', '.join(quote(column) for _, column in columns)})"


#: Fields whose values psycopg adapts as they are: their ``get_db_prep_save`` only checks
#: or coerces what these batch paths already hold (ints, strings, bools, aware datetimes).
_NATIVE = frozenset(
    {
        "AutoField",
        "BigAutoField",
        "BigIntegerField",
        "BooleanField",
        "CharField",
        "DateTimeField",
        "IntegerField",
        "PositiveIntegerField",
        "PositiveSmallIntegerField",
        "SmallIntegerField",
        "TextField",
    }
)


def _arrays(objs: Sequence[Model], columns: list[Column], connection: Any) -> list[list[Any]]:
    """One list per column of the objects' values, as the database takes them."""
    arrays = []
    for field, _ in columns:
        values = [getattr(obj, field.attname) for obj in objs]
        if _native(field):
            arrays.append(values)
        else:
            arrays.append([field.get_db_prep_save(value, connection) for value in values])
    return arrays


def _native(field: Field[Any, Any]) -> bool:
    """Whether ``field``'s values (a foreign key's: its target's) go to psycopg unchanged."""
    target = field.target_field if isinstance(field, ForeignKey) else field
    kind = target.get_internal_type()
    return kind in _NATIVE and type(target).__name__ == kind  # not a subclass with its own prep
