"""Lookups that hot paths run on every request, compiled once.

A queryset builds and compiles its SQL on each call: about 1 ms for a `filter(...).first()`
on PostgreSQL, twice what running the statement costs (measured in-process). A
`PreparedLookup` compiles the same ORM query once per database alias; each call runs that SQL
with new values and builds the instance as the ORM does (the backend's and the field's
converters, then `Model.from_db`), so callers get what the queryset would have given them.
"""

from django.db import connection


class PreparedLookup:
    """`model.objects.filter(field1=..., field2=...).first()` of a unique row, compiled once.

    The fields are text fields that name at most one row together (a unique constraint):
    nothing orders or limits the result.
    """

    def __init__(self, model, *fields):
        self.model = model
        self.fields = fields
        self._compiled = {}  # database alias -> (SQL, selected columns)

    def get(self, *values):
        """The row with these values (in the order the fields were given), or None."""
        sql, columns = self._compile(connection.alias)
        with connection.cursor() as cursor:
            cursor.execute(sql, values)
            row = cursor.fetchone()
        if row is None:
            return None
        converted = [_converted(value, column) for value, column in zip(row, columns, strict=True)]
        names = [column.target.attname for column in columns]
        return self.model.from_db(connection.alias, names, converted)

    def _compile(self, alias):
        compiled = self._compiled.get(alias)
        if compiled is None:
            rows = self.model._default_manager.all()
            for field in self.fields:  # one filter each: the parameters keep this order
                rows = rows.filter(**{field: ""})
            compiler = rows.query.get_compiler(alias)
            sql, _params = compiler.as_sql()
            compiled = self._compiled[alias] = (sql, [column for column, _, _ in compiler.select])
        return compiled


def _converted(value, column):
    """`value` as the ORM returns it: the backend's converters, then the field's."""
    converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
    for converter in converters:
        value = converter(value, column, connection)
    return value
