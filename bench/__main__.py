"""`python -m bench`: the rewrite, pixel, import, mailbox sync, followed-emails list,
scanner classification, first-open alert latency, fold throughput and web app benchmarks, a
summary on the terminal and docs/performance.md rewritten from the figures of this run.

`--only NAME` runs one benchmark and leaves the document alone, since a page that mixes
figures from different runs (or machines) would be misleading; `--only sync`, `--only
lists`, `--only alerts`, `--only fold` and `--only webapp` are the exceptions: each replaces
its own section only, which says it comes from a separate run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench import (
    alerts,
    bench_rewrite,
    classify,
    fold,
    imports,
    lists,
    performance_doc,
    pixel,
    sync,
    webapp,
)

DOC = Path(__file__).resolve().parents[1] / "docs" / "performance.md"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--requests", type=int, default=3000, help="measured pixel requests")
    parser.add_argument("--concurrency", type=int, default=50, help="concurrent pixel clients")
    parser.add_argument("--warmup", type=int, default=200, help="pixel warm-up requests")
    parser.add_argument("--rounds", type=int, default=2, help="pixel runs per server")
    parser.add_argument("--repeat", type=int, default=7, help="fresh interpreters per import")
    parser.add_argument(
        "--sync-messages",
        type=int,
        default=10_000,
        help="changed messages in the synced mailbox (1%% categorised, 5%% replies)",
    )
    parser.add_argument(
        "--list-messages",
        type=int,
        default=20_000,
        help="the seller's messages behind the followed-emails list and template statistics",
    )
    parser.add_argument(
        "--only",
        choices=(
            "pixel",
            "rewrite",
            "imports",
            "sync",
            "lists",
            "classify",
            "alerts",
            "fold",
            "webapp",
        ),
    )
    args = parser.parse_args()

    failed = False
    rewrite_result = pixel_result = import_result = sync_result = None
    lists_result = classify_result = alerts_result = fold_result = webapp_result = None
    if args.only in (None, "rewrite"):
        rewrite_result = bench_rewrite.measure()
        print(bench_rewrite.report(rewrite_result), flush=True)
        failed |= not rewrite_result.checked
    if args.only in (None, "pixel"):
        pixel_result = pixel.measure(args.requests, args.concurrency, args.warmup, args.rounds)
        print(pixel.report(pixel_result), flush=True)
        failed |= not pixel_result.checked
    if args.only in (None, "imports"):
        import_result = imports.measure(args.repeat)
        print(imports.report(import_result), flush=True)
        failed |= import_result.graph_imported
    if args.only in (None, "sync"):
        count = args.sync_messages
        sync_result = sync.measure(count, count // 100, count // 20)
        print(sync.report(sync_result), flush=True)
        failed |= not sync_result.checked
    if args.only in (None, "lists"):
        lists_result = lists.measure(args.list_messages)
        print(lists.report(lists_result), flush=True)
        failed |= not lists_result.checked
    if args.only in (None, "classify"):
        classify_result = classify.measure()
        print(classify.report(classify_result), flush=True)
    if args.only in (None, "alerts"):
        alerts_result = alerts.measure()
        print(alerts.report(alerts_result), flush=True)
        failed |= not alerts_result.checked

    if args.only in (None, "fold"):
        fold_result = fold.measure()
        print(fold.report(fold_result), flush=True)
        failed |= not fold_result.checked
    if args.only in (None, "webapp"):
        webapp_result = webapp.measure(args.list_messages)
        print(webapp.report(webapp_result), flush=True)
        failed |= not webapp_result.checked

    if (
        rewrite_result is not None
        and pixel_result is not None
        and import_result is not None
        and sync_result is not None
        and lists_result is not None
        and classify_result is not None
        and alerts_result is not None
        and fold_result is not None
    ):
        DOC.parent.mkdir(exist_ok=True)
        DOC.write_text(
            performance_doc.render(
                pixel_result,
                rewrite_result,
                import_result,
                sync_result,
                lists_result,
                classify_result,
                alerts_result,
                fold_result,
            )
        )
        if webapp_result is not None:
            DOC.write_text(
                performance_doc.splice_webapp(DOC.read_text(), webapp_result, separate=False)
            )
        print(f"wrote {DOC}")
    elif args.only == "fold" and fold_result is not None and DOC.exists():
        DOC.write_text(performance_doc.splice_fold(DOC.read_text(), fold_result))
        print(f"wrote the fold and capacity sections of {DOC}")
    elif args.only == "alerts" and alerts_result is not None and DOC.exists():
        DOC.write_text(performance_doc.splice_alerts(DOC.read_text(), alerts_result))
        print(f"wrote the alert section of {DOC}")
    elif args.only == "lists" and lists_result is not None and DOC.exists():
        DOC.write_text(performance_doc.splice_lists(DOC.read_text(), lists_result))
        print(f"wrote the list section of {DOC}")
    elif args.only == "webapp" and webapp_result is not None and DOC.exists():
        DOC.write_text(performance_doc.splice_webapp(DOC.read_text(), webapp_result, separate=True))
        print(f"wrote the web app section of {DOC}")
    elif args.only == "sync" and sync_result is not None and DOC.exists():
        DOC.write_text(performance_doc.splice_sync(DOC.read_text(), sync_result))
        print(f"wrote the sync rows and section of {DOC}")
    else:
        print(f"--only {args.only}: {DOC.name} left unchanged")
    if failed:
        raise SystemExit("a benchmark check failed (see above)")


if __name__ == "__main__":
    main()
