"""``search-cli show STUDY``: print a saved front (by study name, results directory or front.json)."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("show", help="print the saved front of a search",
                              description="Print the Pareto front a search saved (devicefit-results/STUDY/front.json).")
    p.add_argument("study", metavar="STUDY", help="study name, its results directory, or a front.json path")
    p.add_argument("--json", action="store_true", help="print the saved front.json")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from search.cli.front_table import front_heading, front_table
    from search.results import load_front

    data = load_front(args.study)
    if args.json:
        print(json.dumps(data))
        return 0
    spec = data.get("spec", {})
    metric, direction = (data.get("metric") or [None, "max"]) + [None, "max"][len(data.get("metric") or []):]
    print(front_heading(len(data.get("front", [])), spec, metric, direction == "max"))
    print(front_table(data.get("front", []), metric))
    print(f"study {data.get('study')}: {data.get('trials')} trials, {data.get('full_evaluations')} full evaluations")
    print(f"from {data['results_path']}")
    return 0
