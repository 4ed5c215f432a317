"""The DuckDB baseline of bench/ingest_bench.py: what a generic SQL engine does with the same
files and no code of ours. Joins a dump's logins to the enrolled addresses by keyed SHA-256, on
2 threads, building the enrolled table included, and prints the number of matching lines.

    python bench/duckdb_join.py DUMP combo|ulp PEPPER    (run in the benchmark's work folder)

The login is the first field of a combo line and the second-to-last of a URL:login:password
line (the benchmark's passwords hold no colon).
"""

from __future__ import annotations

import sys

import duckdb

# One VARCHAR column per line: no delimiter, quote or escape character occurs in the files.
LINES = (
    "read_csv(?, header = false, columns = {'line': 'VARCHAR'}, "
    "delim = '\\x01', quote = '', escape = '')"
)
LOGIN = {"combo": "string_split(line, ':')[1]", "ulp": "string_split(line, ':')[-2]"}


def main() -> None:
    dump, fmt, pepper = sys.argv[1:4]
    con = duckdb.connect()
    con.execute("SET threads = 2")
    con.execute(
        f"CREATE TABLE enrolled AS SELECT sha256(? || lower(line)) AS k FROM {LINES}",  # noqa: S608
        [pepper, "enrolled_emails.txt"],
    )
    row = con.execute(
        f"SELECT count(*) FROM {LINES} JOIN enrolled ON k = sha256(? || lower({LOGIN[fmt]}))",  # noqa: S608
        [dump, pepper],
    ).fetchone()
    print(0 if row is None else row[0])


if __name__ == "__main__":
    main()
