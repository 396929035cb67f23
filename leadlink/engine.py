"""The seam between leadlink and the SQL engine that runs record linkage.

Everything engine-specific sits here. The rest of leadlink gets its Splink
database API and SQL connections from this module and does not import
DuckDB or Spark itself. The embedded default is DuckDB in-process, and a
Spark deployment would add a branch that returns ``splink.SparkAPI(...)``.
"""

from __future__ import annotations

import os

from leadlink.errors import LinkageError

SUPPORTED_ENGINES = ("duckdb",)


def create_db_api(engine: str = "duckdb", threads: int | None = None):
    """Return a fresh Splink database API for ``engine``.

    ``threads`` caps DuckDB's worker threads; by default DuckDB uses every core.
    """
    if engine == "duckdb":
        import duckdb
        from splink import DuckDBAPI

        connection = duckdb.connect(":memory:")
        if threads:
            connection.execute(f"SET threads TO {int(threads)}")
        # DuckDB would take up to 80% of RAM by default. A cap leaves room for
        # the pandas frames beside it and makes large joins spill to disk.
        connection.execute(f"SET memory_limit = '{_memory_limit()}'")
        connection.execute(f"SET temp_directory = '{_temp_directory()}'")
        return DuckDBAPI(connection=connection)

    raise LinkageError(
        f"Linkage engine '{engine}' is not supported here; expected one of {SUPPORTED_ENGINES}. "
        "Spark runs need pyspark and a Spark session, which this install does not provide."
    )


def _memory_limit() -> str:
    return os.environ.get("LEADLINK_DUCKDB_MEMORY", "3GB").replace("'", "")


def close_db_api(db_api) -> None:
    """Close the engine connection behind a Splink database API, freeing its memory."""
    connection = getattr(db_api, "_con", None)
    if connection is not None:
        connection.close()


def _temp_directory() -> str:
    base = os.environ.get("LEADLINK_TEMP_DIR") or os.path.join(os.getcwd(), ".leadlink-tmp")
    return base.replace("'", "")


def create_sql_connection(threads: int | None = None):
    """Return an in-process SQL connection for feature queries.

    Feature SQL is written in the DuckDB dialect; it can query pandas and
    Arrow tables in the caller's scope by name.
    """
    import duckdb

    connection = duckdb.connect(":memory:")
    if threads:
        connection.execute(f"SET threads TO {int(threads)}")
    return connection
