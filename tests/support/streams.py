"""What stream tests share: the MQTT stream example made to lose, the verdict of a server that resumed nothing."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.locust_process import ROOT, LocustRun

MQTT_STREAM = ROOT / "examples" / "mqtt-stream.yaml"


def mqtt_stream_with_clean_starts(folder: Path) -> Path:
    """examples/mqtt-stream.yaml with clean starts (the broker keeps nothing), judged as one chain (resume: true)."""
    text = MQTT_STREAM.read_text()
    assert "clean_start: false" in text, "examples/mqtt-stream.yaml no longer sets clean_start: false"
    conversation = folder / "clean.yaml"
    conversation.write_text(text.replace("clean_start: false", "clean_start: true\nresume: true"))
    return conversation


def assert_lost_and_nothing_resumed(run: LocustRun, reconnects: int) -> None:
    """Exit 3, messages_lost failed, its words: what was lost in how many reconnects, and that none resumed."""
    assert run.exit_code == 3, run.output[-3000:]
    check = run.check("messages_lost")
    assert check["status"] == "fail" and check["observed"] > 0, check
    expected = (
        rf"\d+ messages? lost in {reconnects} reconnects; the server resumed 0 of {reconnects} sessions \(limit 0\)"
    )
    assert re.fullmatch(expected, check["detail"]), check["detail"]
