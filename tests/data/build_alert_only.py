"""Writes ``diagnosis_alert_only.jsonl``: the dev and holdout incidents as they look when only the alert arrived.

    python3 tests/data/build_alert_only.py

Production does not always gather logs, deploys or metrics (no source configured, or the
source failed). Each dev/holdout case is copied with ``logs``, ``deploys`` and ``metrics``
emptied and ``sources`` saying ``missing``, and relabelled by a fixed rule (no judgement
per case, so the suite cannot be fitted):

- a ``noop``-only case stays ``noop`` (heartbeats, info, resolved: the alert says so);
- otherwise ``escalate`` is always acceptable (nothing was gathered; asking a human is right);
- ``rollback`` stays acceptable only when the alert's own annotations mention a deploy,
  release or rollout (a deploy stated in the alert counts as seen); otherwise it is removed;
- the other acting actions stay as labelled (the alert itself is about that workload).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

HERE = Path(__file__).parent
OUT = HERE / "diagnosis_alert_only.jsonl"
DEPLOY_WORDS = re.compile(r"deploy|release|rollout|rolled out|new version|upgrade", re.IGNORECASE)
MISSING = {"status": "missing", "detail": "not gathered (alert-only suite)"}


def relabel(accept: list[str], annotations: dict[str, str]) -> list[str]:
    if accept == ["noop"]:
        return ["noop"]
    stated = bool(DEPLOY_WORDS.search(" ".join(str(v) for v in annotations.values())))
    out = [a for a in accept if a != "rollback" or stated]
    if "escalate" not in out:
        out.append("escalate")
    return out


def main() -> None:
    lines = []
    for name in ("diagnosis_dev.jsonl", "diagnosis_holdout.jsonl"):
        for line in (HERE / name).read_text().splitlines():
            if not line.strip():
                continue
            case = json.loads(line)
            alert = case["context"]["alert"]
            lines.append({
                "id": f"alert-only-{case['id']}",
                "accept": relabel(case["accept"], alert.get("annotations") or {}),
                "derived_from": f"{name}:{case['id']}",
                "context": {"alert": alert, "logs": [], "deploys": [], "metrics": {},
                            "sources": {"logs": MISSING, "deploys": MISSING, "metrics": MISSING}},
            })
    OUT.write_text("".join(json.dumps(c) + "\n" for c in lines))
    print(f"{len(lines)} cases -> {OUT}")


if __name__ == "__main__":
    main()
