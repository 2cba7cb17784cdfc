#!/usr/bin/env python3
"""Plain-Python reference for the export benchmark (scripts/bench.sh).

What a straightforward Python export looks like: a server-side cursor (pymysql SSCursor) over
`SELECT * FROM <table>` on MariaDB/MySQL, rows written one by one with XlsxWriter in
constant_memory mode. Same workbook shape as reportd: bold frozen header, date formats for
DATETIME/DATE columns, autofilter, and after 1,048,575 data rows a new sheet `<name> (2)`.

Strings are written with write_string (never as formulas); NULL is an empty cell; numbers
(int, Decimal, float) with write_number.

Needs: pip install pymysql xlsxwriter
Prints one line: `python: rows=N seconds=S rows_per_s=R`.
"""

import argparse
import datetime
import decimal
import sys
import time

import pymysql
import pymysql.cursors
import xlsxwriter

ROWS_PER_SHEET = 1_048_575  # Excel's 1,048,576 rows minus the header
FETCH = 10_000  # rows per fetchmany() round trip of the server-side cursor


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3306)
    p.add_argument("--user", default="root")
    p.add_argument("--password", default="")
    p.add_argument("--database", default="reportd_bench")
    p.add_argument("--table", default="orders")
    p.add_argument("--sql", help="query to export (default: SELECT * FROM <table>)")
    p.add_argument("--sheet", default="orders", help="name of the first sheet")
    p.add_argument("-o", "--output", default="reference.xlsx")
    return p.parse_args()


def start_sheet(workbook, name, headers, bold):
    ws = workbook.add_worksheet(name)
    ws.freeze_panes(1, 0)
    for col, header in enumerate(headers):
        ws.write_string(0, col, header, bold)
    return ws


def export(args):
    sql = args.sql or f"SELECT * FROM `{args.table}`"
    conn = pymysql.connect(
        host=args.host,
        port=args.port,
        user=args.user,
        password=args.password,
        database=args.database,
        charset="utf8mb4",
        cursorclass=pymysql.cursors.SSCursor,
    )
    workbook = xlsxwriter.Workbook(args.output, {"constant_memory": True})
    bold = workbook.add_format({"bold": True})
    datetime_fmt = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    date_fmt = workbook.add_format({"num_format": "yyyy-mm-dd"})

    total = 0
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            headers = [d[0] for d in cur.description]
            ncols = len(headers)
            sheet_no = 1
            ws = start_sheet(workbook, args.sheet, headers, bold)
            r = 0  # last written row of the current sheet (0 = header)
            while True:
                batch = cur.fetchmany(FETCH)
                if not batch:
                    break
                for row in batch:
                    if r == ROWS_PER_SHEET:
                        ws.autofilter(0, 0, r, ncols - 1)
                        sheet_no += 1
                        ws = start_sheet(workbook, f"{args.sheet} ({sheet_no})", headers, bold)
                        r = 0
                    r += 1
                    for c, v in enumerate(row):
                        if v is None:
                            continue
                        if isinstance(v, str):
                            ws.write_string(r, c, v)
                        elif isinstance(v, datetime.datetime):
                            ws.write_datetime(r, c, v, datetime_fmt)
                        elif isinstance(v, datetime.date):
                            ws.write_datetime(r, c, v, date_fmt)
                        elif isinstance(v, (int, float, decimal.Decimal)):
                            ws.write_number(r, c, v)
                        else:
                            ws.write_string(r, c, str(v))
                total += len(batch)
            ws.autofilter(0, 0, max(r, 1), ncols - 1)
    finally:
        conn.close()
    workbook.close()
    return total


def main():
    args = parse_args()
    start = time.monotonic()
    rows = export(args)
    secs = time.monotonic() - start
    print(f"python: rows={rows} seconds={secs:.3f} rows_per_s={rows / max(secs, 1e-9):.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
