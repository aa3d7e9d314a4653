"""The WeChat simulator's account for local runs: the templates the notifications rules use.

``python -m deploy.simulator_config var/wechat-sim.json`` writes a config for
``python -m wechat_simulator --config``; on the real account these templates are set up by hand
in the WeChat console, with the ids put into rules.yaml.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from services.notifications.rules import load_rules

RULES = Path(__file__).resolve().parent.parent / "services" / "notifications" / "rules.yaml"
CALLBACK_TOKEN = "gonghui-sim-token"  # the simulator's default: signs its pushes to us


def simulator_config() -> dict[str, object]:
    rules = load_rules(RULES.read_text(encoding="utf-8"))
    return {
        "callback_token": CALLBACK_TOKEN,
        "auto_create_users": True,
        "templates": [
            {"template_id": t.template_id, "keys": list(t.keys)} for t in rules.templates.values()
        ],
    }


def write(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(simulator_config(), ensure_ascii=False, indent=2))
    return path


if __name__ == "__main__":
    print(write(Path(sys.argv[1] if len(sys.argv) > 1 else "var/wechat-sim.json")))
