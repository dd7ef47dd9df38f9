"""The alembic head revision of the storage schema, without importing alembic.

SQLiteStore compares the database's ``alembic_version`` with this constant on
every open (cheap, stdlib only) and imports alembic only when they differ. A
test asserts that it equals the head of ``sauci/storage/migrations``.
"""

HEAD = "0007"
