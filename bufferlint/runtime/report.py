"""Result dicts: verdicts, one-line summaries, merging ranks, and the readable report.

Pure data, no torch: the parent process uses it to report timeouts and crashes too.
"""

from __future__ import annotations

from typing import Any

Result = dict[str, Any]

FACTORY_HINT = (
    "provide a factory in pyproject.toml: [tool.bufferlint.runtime.factories] "
    '"{key}" = "pkg.mod:make_tiny" (a function returning a small instance)'
)
# The reason of a buffer whose values are right but whose device the CPU stand-in for a
# second device could not judge (bufferlint.runtime.standin).
NOT_JUDGED = "device not judged"
# A rank that saw garbage outranks one that crashed: the garbage is the finding.
_SEVERITY = {"confirmed": 3, "error": 2, "unconfirmed": 1, "refuted": 0}


def failure(
    verdict: str, stage: str, message: str, *, recipe: str, devices: int, device: str, **extra: Any
) -> Result:
    """A result for a class that never got as far as being judged."""
    result: Result = {
        "verdict": verdict,
        "recipe": recipe,
        "devices": devices,
        "device": device,
        "stage": stage,
        "error" if verdict == "error" else "reason": message,
        "buffers": {},
        **extra,
    }
    result["summary"] = summarize(result)
    return result


def verdict_of(buffers: dict[str, dict[str, Any]]) -> str:
    """confirmed if any named buffer is wrong; unconfirmed if one never existed to be judged."""
    if any(b["ok"] is False for b in buffers.values()):
        return "confirmed"
    if any(b["ok"] is None for b in buffers.values()):
        return "unconfirmed"
    return "refuted"


def suffix(result: Result) -> str:
    """How the verdict was reached, ending every summary: `(recipe fsdp, cpu, 2 ranks)`."""
    ranks = result.get("devices", 1)
    where = f"{result['device']}, {ranks} ranks" if ranks > 1 else result["device"]
    return f"(recipe {result['recipe']}, {where})"


def summarize(result: Result) -> str:
    """The one line a text report shows for this class."""
    verdict = result["verdict"]
    buffers: dict[str, dict[str, Any]] = result.get("buffers", {})
    if verdict == "error":
        return f"{result['error']} {suffix(result)}"
    if verdict == "unconfirmed" and "reason" in result:
        return f"{result['reason']} {suffix(result)}"
    if verdict == "refuted":
        names = ", ".join(buffers) or "no buffers"
        return f"{names} rebuilt correctly {suffix(result)}"
    wrong = [b for b in buffers.values() if b["ok"] is False]
    unjudged = [n for n, b in buffers.items() if b["ok"] is None]
    if verdict == "unconfirmed" and {buffers[n]["reason"] for n in unjudged} == {NOT_JUDGED}:
        line = buffers[unjudged[0]]["message"]  # the device stand-in could not run
        if len(unjudged) > 1:
            line += f" (also: {', '.join(unjudged[1:])})"
    elif verdict == "unconfirmed":
        absent = ", ".join(unjudged)
        line = f"{absent}: not a buffer of the module as built ({result.get('built_with')})"
    else:
        line = wrong[0]["message"]
        if len(wrong) > 1:
            others = [n for n, b in buffers.items() if b["ok"] is False and b is not wrong[0]]
            line += f" (also wrong: {', '.join(others)})"
    if rank_note := result.get("rank_note"):
        line += f"; {rank_note}"
    return f"{line} {suffix(result)}"


def merge_ranks(per_rank: list[Result], recipe: str) -> Result:
    """Rank 0's view of a multi-rank check: the worst verdict, per-rank detail, and where ranks
    disagree. Agreement proves little (DDP broadcasts rank 0's buffers), disagreement a lot."""
    worst = max(per_rank, key=lambda r: _SEVERITY[r["verdict"]])
    merged: Result = {**worst, "devices": len(per_rank), "recipe": recipe}
    merged["ranks"] = [
        {
            "rank": rank,
            "device": r.get("rank_device", r["device"]),
            "verdict": r["verdict"],
            **({"error": r["error"]} if "error" in r else {}),
            "buffers": {
                name: {"ok": b["ok"], "reason": b["reason"], "digest": b.get("digest")}
                for name, b in r.get("buffers", {}).items()
            },
        }
        for rank, r in enumerate(per_rank)
    ]
    merged["disagreement"] = disagreements(per_rank)
    bad = [str(rank) for rank, r in enumerate(per_rank) if r["verdict"] == worst["verdict"]]
    if len(bad) < len(per_rank):
        merged["rank_note"] = f"{worst['verdict']} on rank {', '.join(bad)} only"
    merged["summary"] = summarize(merged)
    return merged


def disagreements(per_rank: list[Result]) -> list[str]:
    """Buffers whose verdict or materialized bytes differ between ranks."""
    notes = []
    if len({r["verdict"] for r in per_rank}) > 1:
        notes.append(
            "verdict: " + ", ".join(f"rank {i} {r['verdict']}" for i, r in enumerate(per_rank))
        )
    names = sorted({n for r in per_rank for n in r.get("buffers", {})})
    for name in names:
        seen = [r.get("buffers", {}).get(name) for r in per_rank]
        oks = [b["ok"] if b else None for b in seen]
        digests = [b.get("digest") if b else None for b in seen]
        if len(set(oks)) > 1:
            notes.append(f"{name}: " + ", ".join(f"rank {i} ok={ok}" for i, ok in enumerate(oks)))
        elif len(set(digests)) > 1:
            notes.append(f"{name}: values differ between ranks")
    return notes


def format_values(values: Any) -> str:
    """Short numbers for humans: 4 significant digits, nan/inf as words."""
    if isinstance(values, list):
        return "[" + ", ".join(format_values(v) for v in values) + "]"
    if isinstance(values, float):
        return repr(float(f"{values:.4g}"))
    return str(values)


def format_report(result: Result) -> str:
    """Multi-line report used by `assert_materializes` and the torchrun entry point."""
    lines = [f"{result.get('target', 'module')}: {result['verdict'].upper()}: {result['summary']}"]
    if built := result.get("built_with"):
        lines.append(f"  built with {built}")
    sections = (("", result.get("buffers", {})), ("other buffer ", result.get("extra_buffers", {})))
    for label, buffers in sections:
        for name, b in buffers.items():
            state = {True: "ok", False: "WRONG", None: "absent"}[b["ok"]]
            lines.append(f"  {label}{name}: {state}: {b.get('message') or b['reason']}")
    lines += [f"  note: {note}" for note in result.get("notes", [])]
    lines += [f"  tried: {attempt}" for attempt in result.get("attempts", [])]
    lines += [f"  ranks disagree: {d}" for d in result.get("disagreement", [])]
    return "\n".join(lines)
