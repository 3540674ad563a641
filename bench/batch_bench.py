"""Times batch_etl (the whole process) and two DuckDB variants on the same CSV files,
in alternating rounds; prints every time, the medians and the ratios.

Run through bench/batch.sh, which prepares the data, the binary and DuckDB.

DuckDB's time is its in-engine time (connect, COPY, close, inside this Python
process); batch_etl's is the whole process: start, dynamic loading, the run, exit.
The two DuckDB variants:
- double: amounts read as DOUBLE, one output file (DuckDB's fastest form of the query);
- decimal: amounts as DECIMAL(10,2) like ours, one file per thread (PER_THREAD_OUTPUT).
"""
import argparse
import os
import resource
import shutil
import statistics
import subprocess
import time

import duckdb

# The same pipeline in DuckDB SQL: dropna + distinct per source, left join, aggregate.
QUERY = """
  WITH c AS (
    SELECT DISTINCT * FROM read_csv('{data}/customers.csv', header = true, columns = {{
      'customer_id': 'VARCHAR', 'name': 'VARCHAR', 'email': 'VARCHAR', 'city': 'VARCHAR', 'signup_date': 'DATE'}})
    WHERE COLUMNS(*) IS NOT NULL
  ), o AS (
    SELECT DISTINCT * FROM read_csv('{data}/orders.csv', header = true, columns = {{
      'order_id': 'VARCHAR', 'customer_id': 'VARCHAR', 'product': 'VARCHAR', 'quantity': 'INTEGER',
      'amount': '{amount}', 'order_date': 'DATE', 'status': 'VARCHAR'}})
    WHERE COLUMNS(*) IS NOT NULL
  )
  SELECT o.customer_id, c.name, c.city,
         sum(o.amount) AS total_sales, count(o.order_id) AS order_count,
         avg(o.amount) AS avg_order_value, now() AS processed_at
  FROM o LEFT JOIN c ON o.customer_id = c.customer_id
  GROUP BY o.customer_id, c.name, c.city
"""

# name: (amount type, COPY target below the variant's folder, COPY options,
#        total_sales as DECIMAL(20,2) for the comparison with batch_etl's output)
DUCKDB_VARIANTS = {
    "duckdb_double": ("DOUBLE", "/summary.parquet", "",
                      "CAST(round(total_sales, 2) AS DECIMAL(20, 2))"),
    "duckdb_decimal": ("DECIMAL(10,2)", "", ", PER_THREAD_OUTPUT true",
                       "total_sales"),
}


def cpu_seconds(who):
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-etl", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    outputs = {"batch_etl": f"{args.out}/batch_etl"}
    outputs.update({name: f"{args.out}/{name}" for name in DUCKDB_VARIANTS})

    def batch_etl():
        """Wall and CPU seconds of the whole batch_etl process."""
        before = cpu_seconds(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(
            [args.batch_etl, "--customers", f"{args.data}/customers.csv",
             "--orders", f"{args.data}/orders.csv", "--output", outputs["batch_etl"]],
            check=True, env={**os.environ, "RUST_LOG": "warn"}, stdout=subprocess.DEVNULL)
        return time.perf_counter() - start, cpu_seconds(resource.RUSAGE_CHILDREN) - before

    def duckdb_run(name):
        amount, target, options, _ = DUCKDB_VARIANTS[name]
        shutil.rmtree(outputs[name], ignore_errors=True)
        os.makedirs(outputs[name])
        sql = (f"COPY ({QUERY.format(data=args.data, amount=amount)}) TO '{outputs[name]}{target}' "
               f"(FORMAT parquet, COMPRESSION snappy, OVERWRITE true{options})")

        def run():
            before = cpu_seconds(resource.RUSAGE_SELF)
            start = time.perf_counter()
            con = duckdb.connect()
            con.execute(sql)
            con.close()
            return time.perf_counter() - start, cpu_seconds(resource.RUSAGE_SELF) - before
        return run

    contenders = {"batch_etl": batch_etl}
    contenders.update({name: duckdb_run(name) for name in DUCKDB_VARIANTS})
    names = list(contenders)
    walls = {name: [] for name in names}
    cpus = {name: [] for name in names}
    loads = [os.getloadavg()[0]]
    for round_no in range(args.runs):
        # Alternating, and a different one first each round, so all see the same load.
        order = names[round_no % len(names):] + names[:round_no % len(names)]
        for name in order:
            wall, cpu = contenders[name]()
            walls[name].append(wall)
            cpus[name].append(cpu)
            print(f"round {round_no + 1}  {name:15} {wall:6.2f} s  (cpu {cpu:5.2f} s)", flush=True)
        loads.append(os.getloadavg()[0])

    con = duckdb.connect()
    rows = {name: con.execute(f"SELECT count(*) FROM read_parquet('{path}/*.parquet')").fetchone()[0]
            for name, path in outputs.items()}
    ours = f"SELECT customer_id, name, city, total_sales, order_count FROM read_parquet('{outputs['batch_etl']}/*.parquet')"
    differing = {}
    for name, (_, _, _, total) in DUCKDB_VARIANTS.items():
        theirs = (f"SELECT customer_id, name, city, {total} AS total_sales, order_count "
                  f"FROM read_parquet('{outputs[name]}/*.parquet')")
        differing[name] = con.execute(
            f"SELECT count(*) FROM (({ours} EXCEPT ALL {theirs}) UNION ALL ({theirs} EXCEPT ALL {ours}))"
        ).fetchone()[0]
    size = sum(os.path.getsize(f"{args.data}/{f}") for f in ("customers.csv", "orders.csv"))

    median = {name: statistics.median(walls[name]) for name in names}
    print()
    print(f"input: {args.data} ({size / 1e6:.0f} MB of CSV), {args.runs} rounds, duckdb {duckdb.__version__}, "
          f"{os.cpu_count()} cores, load average {min(loads):.1f}-{max(loads):.1f} during the rounds")
    for name in names:
        print(f"{name:15}: median {median[name]:5.2f} s  (cpu median {statistics.median(cpus[name]):5.2f} s)"
              f"  runs {', '.join(f'{t:.2f}' for t in walls[name])}  rows {rows[name]}")
    for name in DUCKDB_VARIANTS:
        per_round = [ours / theirs for ours, theirs in zip(walls["batch_etl"], walls[name])]
        print(f"batch_etl / {name:15}: {median['batch_etl'] / median[name]:.2f} (median of the rounds' ratios "
              f"{statistics.median(per_round):.2f}, range {min(per_round):.2f}-{max(per_round):.2f});"
              f" rows differing: {differing[name]}")
    if any(differing.values()):
        raise SystemExit("the outputs differ")


if __name__ == "__main__":
    main()
