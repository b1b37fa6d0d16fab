"""PostgreSQL state of the operator: tables, engine, migrations and the queries that change it."""
