"""``field__among=[ids]``: ``IN`` for a list of integer ids read from the database just before,
with the ids written into the statement rather than bound one parameter each.

Why not ``__in``: a reviewer's 700 model ids as 700 parameters cost about 10 ms per query here
(psycopg adapts each one in Python, and Django builds the placeholder list), more than the
query itself; the same ids written as PostgreSQL's array literal ``= ANY('{1,2,3}'::bigint[])``
cost a join of strings (bench/README.md, "Id lists"). Written in, they are also constants to
the planner, so a prepared statement cannot fall back to a generic plan that ignores how many
there are. Only integers are accepted (``int()`` of each): nothing from a request is written in.
"""

from django.db.models import ForeignKey, IntegerField, Lookup


class Among(Lookup):
    lookup_name = "among"
    prepare_rhs = False

    def get_prep_lookup(self):
        values = []
        for value in self.rhs:
            if type(value) is not int:  # bool, str, float, None: a caller's mistake
                raise TypeError(f"__among takes integer ids, not {type(value).__name__}")
            values.append(value)
        return values

    def as_sql(self, compiler, connection):
        lhs, params = self.process_lhs(compiler, connection)
        if not self.rhs:
            return "1 = 0", params
        ids = ",".join(map(str, self.rhs))
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY('{{{ids}}}'::bigint[])", params
        return f"{lhs} IN ({ids})", params


def register() -> None:
    IntegerField.register_lookup(Among)
    ForeignKey.register_lookup(Among)
