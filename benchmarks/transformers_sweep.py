"""Run bufferlint's `transformers` runtime recipe on every model class transformers ships, and
print a Markdown table: per model, which module classes own buffers that come out wrong
(garbage: they depend on uninitialized memory; differ: stable but not what an eager build
holds), which come out right, and which models could not be built and why; then totals.

    python benchmarks/transformers_sweep.py                      # MODEL_MAPPING_NAMES
    python benchmarks/transformers_sweep.py --all                # every auto-mapping class
    python benchmarks/transformers_sweep.py --findings lint.json # beside bufferlint's findings
    python benchmarks/transformers_sweep.py --load results.json  # re-render a saved run

Each model is one `bufferlint.runtime.check` job: built from its default config shrunk by
`bufferlint.runtime.hf.tiny_configs`, in worker processes (one per core, each importing
transformers once) with a per-model timeout. `--findings FILE` reads bufferlint's JSON output
(`bufferlint PATH --output-format json`: items with `class_name`, `filename`, `buffers`,
`code`) and lists the findings on classes the runtime found right (false alarms) and the
wrong classes no finding names.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bufferlint.runtime import RuntimeSettings, RuntimeTarget, check  # noqa: E402


def model_classes(every: bool) -> list[tuple[str, str]]:
    """(model type, class name) for each model class, e.g. ("llama", "LlamaModel"); the class is
    imported as `transformers.<name>`, whose lazy module finds its modeling module."""
    from transformers.models.auto import modeling_auto

    mappings = [modeling_auto.MODEL_MAPPING_NAMES]
    if every:
        mappings = [
            getattr(modeling_auto, name)
            for name in sorted(dir(modeling_auto))
            if name.endswith("MAPPING_NAMES") and isinstance(getattr(modeling_auto, name), dict)
        ]
    seen: dict[str, str] = {}
    for mapping in mappings:
        for model_type, names in mapping.items():
            for name in [names] if isinstance(names, str) else names:
                seen.setdefault(name, model_type)
    return sorted(((model_type, name) for name, model_type in seen.items()), key=lambda c: c[1])


def run(classes: list[tuple[str, str]], timeout: float, jobs: int | None) -> list[dict]:
    targets = [
        RuntimeTarget(
            path=name, module="transformers", import_root=str(ROOT), class_name=name, buffers=()
        )
        for _, name in classes
    ]
    settings = RuntimeSettings(recipe="transformers", timeout=timeout, jobs=jobs)
    return check(targets, settings)


def short(owner: str) -> str:
    """`transformers.models.llama.modeling_llama:LlamaRotaryEmbedding` -> the class name."""
    return owner.rpartition(":")[2]


def classify(result: dict) -> dict[str, Any]:
    """Per model: the owning classes of wrong (garbage/differ) and right buffers."""
    owners = result.get("owners", {})
    wrong: dict[str, dict[str, list[str]]] = collections.defaultdict(dict)
    right: dict[str, list[str]] = collections.defaultdict(list)
    for name, judged in {**result.get("buffers", {}), **result.get("extra_buffers", {})}.items():
        owner = owners.get(name, "?:?")
        if judged["ok"] is False:
            kind = "garbage" if judged["reason"] == "depends on uninitialized memory" else "differ"
            wrong[owner].setdefault(kind, []).append(name)
        elif judged["ok"] is True:
            right[owner].append(name)
    return {"wrong": wrong, "right": {o: n for o, n in right.items() if o not in wrong}}


def why(result: dict) -> str:
    """A short reason a model was not judged."""
    text = result.get("error") or result.get("reason") or result["summary"]
    text = text.replace("|", "\\|").split("; provide a factory")[0]
    return text if len(text) <= 160 else text[:157] + "..."


def table(classes: list[tuple[str, str]], results: list[dict]) -> tuple[str, dict]:
    lines = [
        "| model | verdict | wrong buffers (owner class: garbage/differ) | right (owner classes) "
        "| not built: why |",
        "|---|---|---|---|---|",
    ]
    wrong_classes: dict[str, dict[str, set[str]]] = collections.defaultdict(
        lambda: collections.defaultdict(set)
    )
    right_classes: set[str] = set()
    failures: collections.Counter[str] = collections.Counter()
    built = 0
    for (_, name), result in zip(classes, results, strict=True):
        verdict = result["verdict"]
        if verdict in ("confirmed", "refuted"):
            built += 1
            sorted_out = classify(result)
            wrong = "; ".join(
                f"{short(o)}: " + ", ".join(f"{k} {' '.join(v)}" for k, v in kinds.items())
                for o, kinds in sorted(sorted_out["wrong"].items())
            )
            for owner, kinds in sorted_out["wrong"].items():
                for kind in kinds:
                    wrong_classes[owner][kind].add(name)
            right_classes.update(sorted_out["right"])
            right = ", ".join(sorted({short(o) for o in sorted_out["right"]})) or "-"
            lines.append(f"| {name} | {verdict} | {wrong or '-'} | {right} | |")
        else:
            reason = why(result)
            failures[result.get("stage", verdict)] += 1
            lines.append(f"| {name} | {verdict} | | | {reason} |")
    # A class wrong in one model and right in another counts as wrong.
    right_only = right_classes - set(wrong_classes)
    totals = {
        "models": len(results),
        "built": built,
        "not_built": len(results) - built,
        "not_built_by_stage": dict(failures),
        "classes_right": len(right_only),
        "classes_wrong": len(wrong_classes),
        "wrong": {
            owner: {kind: sorted(models) for kind, models in kinds.items()}
            for owner, kinds in sorted(wrong_classes.items())
        },
        "right": sorted(right_only),
    }
    return "\n".join(lines), totals


def render_totals(totals: dict, seconds: float | None) -> str:
    out = [
        "",
        f"**Totals**: {totals['models']} model classes; {totals['built']} built and judged, "
        f"{totals['not_built']} not built "
        f"({', '.join(f'{k}: {v}' for k, v in sorted(totals['not_built_by_stage'].items()))}).",
        f"Module classes owning buffers: {totals['classes_wrong']} wrong, "
        f"{totals['classes_right']} right.",
    ]
    for owner, kinds in totals["wrong"].items():
        for kind, models in kinds.items():
            shown = ", ".join(models[:8]) + (
                f" and {len(models) - 8} more" if len(models) > 8 else ""
            )
            out.append(f"- wrong ({kind}): `{owner}` in {len(models)} models: {shown}")
    if seconds is not None:
        out.append(f"\nSweep time: {seconds:.0f} s on {os.cpu_count()} CPUs.")
    return "\n".join(out)


def _module_of(filename: str) -> str:
    """`.../site-packages/transformers/models/llama/modeling_llama.py` -> its dotted name."""
    parts = Path(filename).with_suffix("").parts
    if "transformers" in parts:
        parts = parts[len(parts) - 1 - parts[::-1].index("transformers") :]
    return ".".join(parts)


def compare(findings_path: Path, totals: dict) -> str:
    """Findings against the runtime: false alarms, and wrong classes without a finding."""
    items = json.loads(findings_path.read_text())
    by_class: dict[str, list[dict]] = collections.defaultdict(list)
    for item in items:
        if item.get("class_name") and item.get("code", "").startswith("BL0"):
            key = f"{_module_of(item['filename'])}:{item['class_name']}"
            by_class[key].append(item)
    right, wrong = set(totals["right"]), set(totals["wrong"])
    false_alarms = sorted(k for k in by_class if k in right)
    confirmed = sorted(k for k in by_class if k in wrong)
    missed = sorted(k for k in wrong if k not in by_class)
    unjudged = sorted(k for k in by_class if k not in right and k not in wrong)

    def names(item: dict) -> str:
        return ", ".join(
            b if isinstance(b, str) else str(b.get("name", b)) for b in item["buffers"]
        )

    out = [
        "",
        f"### Findings ({sum(len(v) for v in by_class.values())} on {len(by_class)} classes) "
        "against the runtime",
        "",
        "| class | finding | runtime |",
        "|---|---|---|",
    ]
    for key in false_alarms:
        for item in by_class[key]:
            out.append(f"| {key} | {item['code']} {names(item)} | right: false alarm |")
    for key in confirmed:
        for item in by_class[key]:
            out.append(f"| {key} | {item['code']} {names(item)} | wrong: confirmed |")
    for key in missed:
        out.append(f"| {key} | none | wrong: missed |")
    out += [
        "",
        f"False alarms: {len(false_alarms)} classes; confirmed: {len(confirmed)}; wrong classes "
        f"without a finding: {len(missed)}; findings on classes no built model judged: "
        f"{len(unjudged)}.",
    ]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--all", action="store_true", help="every class of every auto mapping")
    parser.add_argument("--limit", type=int, help="only the first N classes")
    parser.add_argument("--only", help="comma-separated class names")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per model")
    parser.add_argument("--jobs", type=int, help="worker processes (default: one per core)")
    parser.add_argument("--findings", type=Path, help="bufferlint JSON output to compare with")
    parser.add_argument("--save", type=Path, help="write the raw results here (JSON)")
    parser.add_argument("--load", type=Path, help="render results saved with --save")
    args = parser.parse_args()
    seconds = None
    if args.load:
        saved = json.loads(args.load.read_text())
        classes = [tuple(c) for c in saved["classes"]]
        results = saved["results"]
    else:
        classes = model_classes(args.all)
        if args.only:
            wanted = set(args.only.split(","))
            classes = [c for c in classes if c[1] in wanted]
        classes = classes[: args.limit] if args.limit else classes
        started = time.perf_counter()
        results = run(classes, args.timeout, args.jobs)
        seconds = time.perf_counter() - started
        if args.save:
            args.save.write_text(json.dumps({"classes": classes, "results": results}))
    text, totals = table(classes, results)
    print(text)
    print(render_totals(totals, seconds))
    if args.findings:
        print(compare(args.findings, totals))


if __name__ == "__main__":
    main()
