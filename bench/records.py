"""The form-engine benchmarks of issue 3, run one after the other with the same database.

Usage: .venv/bin/python bench/records.py [--db URL] [--quick]
  writes   bench/records_write.py   creates through the service and the HTTP API vs bare inserts
  lists    bench/records_list.py    a filtered, sorted page at 1,000,000 records vs hand SQL
  imports  bench/records_import.py  100,000 CSV rows vs a bare executemany, with peak RSS
Each script prints its own figures and ratios; `--quick` runs them at small sizes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
QUICK = {
    "records_write.py": ["--n", "100"],
    "records_list.py": ["--rows", "20000"],
    "records_import.py": ["--rows", "5000"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", help="database URL (default: each script's SQLite default)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args()
    failed = 0
    for script, quick in QUICK.items():
        command = [sys.executable, str(HERE / script)]
        command += ["--db", args.db] if args.db else []
        command += quick if args.quick else []
        print(f"== {script} {' '.join(command[2:])}", flush=True)
        failed += subprocess.run(command, check=False).returncode != 0
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
