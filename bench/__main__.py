"""Run every benchmark and rewrite BENCHMARKS.md."""

from bench import pages, search
from bench.common import write_report

if __name__ == "__main__":
    pages.main()
    search.main()
    print(f"wrote {write_report()}")
