"""Run every benchmark and rewrite BENCHMARKS.md."""

from bench import analysis, chat, pages, search
from bench.common import write_report

if __name__ == "__main__":
    pages.main()
    search.main()
    chat.main()
    analysis.main()
    print(f"wrote {write_report()}")
