"""Run every benchmark and rewrite BENCHMARKS.md."""

from bench import analysis, chat, duplicates, imports, pages, search
from bench.common import write_report

if __name__ == "__main__":
    pages.main()
    search.main()
    chat.main()
    analysis.main()
    duplicates.main()
    imports.main()
    print(f"wrote {write_report()}")
