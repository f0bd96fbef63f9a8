"""A real Prometheus (the Debian package's binary) for the telemetry tests: started in a pod's
namespace with a static scrape config, queried through its HTTP API."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.harness.netns import Pod


def prometheus_binary() -> str | None:
    return shutil.which("prometheus")


class Prometheus:
    def __init__(self, pod: Pod, workdir: Path, jobs: dict[str, list[str]], port: int = 9090):
        self.pod = pod
        self.url = f"http://{pod.ip}:{port}"
        workdir.mkdir(parents=True, exist_ok=True)
        config = {
            "global": {
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "evaluation_interval": "1s",
            },
            "scrape_configs": [
                {"job_name": job, "metrics_path": path, "static_configs": [{"targets": targets}]}
                for job, (path, *targets) in jobs.items()
            ],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        binary = prometheus_binary()
        assert binary is not None
        self.log = (workdir / "prometheus.log").open("w")
        self.process = pod.popen(
            [binary, f"--config.file={workdir / 'prometheus.yml'}",
             f"--storage.tsdb.path={workdir / 'data'}", f"--web.listen-address=0.0.0.0:{port}",
             "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.client = httpx.Client(base_url=self.url, timeout=10, trust_env=False)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.client.get("/-/ready").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError("prometheus did not become ready")

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector (or scalar) of `expr` now; raises on a PromQL error."""
        response = self.client.get("/api/v1/query", params={"query": expr})
        data = response.json()
        assert data.get("status") == "success", f"{expr}: {data.get('error')}"
        result = data["data"]["result"]
        if data["data"]["resultType"] == "scalar":
            return [{"metric": {}, "value": result}]
        return list(result)

    def label_values(self, label: str, match: str) -> list[str]:
        response = self.client.get(f"/api/v1/label/{label}/values", params={"match[]": match})
        data = response.json()
        assert data.get("status") == "success", data
        return list(data["data"])

    def targets_up(self) -> dict[str, str]:
        data = self.client.get("/api/v1/targets").json()["data"]["activeTargets"]
        return {t["scrapeUrl"]: t["health"] for t in data}

    def close(self) -> None:
        self.client.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()
