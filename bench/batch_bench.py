"""Times batch_etl and DuckDB on the same CSV files; prints both and the ratio.

Run through bench/batch.sh, which prepares the data, the binary and DuckDB.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import time

import duckdb

# The same pipeline in DuckDB SQL: dropna + distinct per source, left join, aggregate.
SQL = """
COPY (
  WITH c AS (
    SELECT DISTINCT * FROM read_csv('{data}/customers.csv', header = true, columns = {{
      'customer_id': 'VARCHAR', 'name': 'VARCHAR', 'email': 'VARCHAR', 'city': 'VARCHAR', 'signup_date': 'DATE'}})
    WHERE COLUMNS(*) IS NOT NULL
  ), o AS (
    SELECT DISTINCT * FROM read_csv('{data}/orders.csv', header = true, columns = {{
      'order_id': 'VARCHAR', 'customer_id': 'VARCHAR', 'product': 'VARCHAR', 'quantity': 'INTEGER',
      'amount': 'DECIMAL(10,2)', 'order_date': 'DATE', 'status': 'VARCHAR'}})
    WHERE COLUMNS(*) IS NOT NULL
  )
  SELECT o.customer_id, c.name, c.city,
         sum(o.amount) AS total_sales, count(o.order_id) AS order_count,
         avg(o.amount) AS avg_order_value, now() AS processed_at
  FROM o LEFT JOIN c ON o.customer_id = c.customer_id
  GROUP BY o.customer_id, c.name, c.city
) TO '{out}' (FORMAT parquet, COMPRESSION snappy, PER_THREAD_OUTPUT true, OVERWRITE true)
"""


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-etl", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rust_out, duck_out = f"{args.out}/batch_etl", f"{args.out}/duckdb"

    def rust():
        subprocess.run(
            [args.batch_etl, "--customers", f"{args.data}/customers.csv",
             "--orders", f"{args.data}/orders.csv", "--output", rust_out],
            check=True, env={**os.environ, "RUST_LOG": "warn"}, stdout=subprocess.DEVNULL)

    def duck():
        shutil.rmtree(duck_out, ignore_errors=True)
        con = duckdb.connect()
        con.execute(SQL.format(data=args.data, out=duck_out))
        con.close()

    rust_times, duck_times = [], []
    for _ in range(args.runs):  # interleaved, so both see the same machine load
        rust_times.append(timed(rust))
        duck_times.append(timed(duck))

    con = duckdb.connect()
    rows = {name: con.execute(f"SELECT count(*) FROM read_parquet('{path}/*.parquet')").fetchone()[0]
            for name, path in (("batch_etl", rust_out), ("duckdb", duck_out))}
    diff = con.execute(f"""
        SELECT count(*) FROM (
          (SELECT customer_id, name, city, total_sales, order_count FROM read_parquet('{rust_out}/*.parquet')
           EXCEPT ALL
           SELECT customer_id, name, city, total_sales, order_count FROM read_parquet('{duck_out}/*.parquet'))
          UNION ALL
          (SELECT customer_id, name, city, total_sales, order_count FROM read_parquet('{duck_out}/*.parquet')
           EXCEPT ALL
           SELECT customer_id, name, city, total_sales, order_count FROM read_parquet('{rust_out}/*.parquet')))
    """).fetchone()[0]
    size = sum(os.path.getsize(f"{args.data}/{f}") for f in ("customers.csv", "orders.csv"))

    rust_median, duck_median = statistics.median(rust_times), statistics.median(duck_times)
    print(f"input: {args.data} ({size / 1e6:.0f} MB of CSV), {args.runs} runs each, duckdb {duckdb.__version__}")
    print(f"batch_etl : median {rust_median:6.2f} s  runs {', '.join(f'{t:.2f}' for t in rust_times)}  rows {rows['batch_etl']}")
    print(f"duckdb    : median {duck_median:6.2f} s  runs {', '.join(f'{t:.2f}' for t in duck_times)}  rows {rows['duckdb']}")
    print(f"ratio batch_etl / duckdb: {rust_median / duck_median:.2f}")
    print(f"rows differing between the two outputs: {diff}")
    if diff:
        raise SystemExit("the two outputs differ")


if __name__ == "__main__":
    main()
