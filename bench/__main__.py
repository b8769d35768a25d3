"""Run every benchmark and rewrite BENCHMARKS.md."""

from bench import pages
from bench.common import write_report

if __name__ == "__main__":
    pages.main()
    print(f"wrote {write_report()}")
