"""Log any training loop into Argus's run store through a running ``serve``; the Training
console then shows it beside Argus's own runs (curves, compare, the completion webhook).

    from argus_core.runs.client import RunLogger
    run = RunLogger("http://127.0.0.1:8000", "my model", settings={"lr": 3e-3})
    for step in range(steps):
        ...
        run.log(step, epoch, train_loss=loss)      # sent in batches of ``every`` rows
    run.finish("completed")                        # or "failed", error="..."

Only the standard library: copy this file next to any training script.
"""

from __future__ import annotations

import json
import urllib.request


class RunLogger:
    def __init__(self, url: str, name: str, settings: dict | None = None, dataset: str = "",
                 token: str | None = None, every: int = 50) -> None:
        self.url, self.token, self.every, self.rows = url.rstrip("/"), token, every, []
        self.id = self._post("/api/v1/runs", {"name": name, "settings": settings or {}, "dataset": dataset})["id"]

    def log(self, step: int, epoch: int = 0, **values: float) -> None:
        self.rows.append({"step": step, "epoch": epoch, "values": {k: float(v) for k, v in values.items()}})
        if len(self.rows) >= self.every:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self._post(f"/api/v1/runs/{self.id}/metrics", self.rows)
            self.rows = []

    def finish(self, status: str = "completed", error: str | None = None, model_id: str | None = None) -> dict:
        self.flush()
        fields = {k: v for k, v in (("error", error), ("model_id", model_id)) if v}
        return self._post(f"/api/v1/runs/{self.id}/status", {"status": status, **fields})

    def _post(self, path: str, payload) -> dict:
        headers = {"content-type": "application/json", **({"authorization": f"Bearer {self.token}"} if self.token
                                                          else {})}
        request = urllib.request.Request(self.url + path, data=json.dumps(payload).encode(), headers=headers)
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read())
