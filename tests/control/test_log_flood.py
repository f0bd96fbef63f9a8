"""Log flooding and forging over ADS: a proxy that NACKs again and again with a huge message full
of newlines gets one escaped, bounded log line, not one per NACK; syncz keeps a bounded message."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from control.cli.control_process import ControlPlane
from control.plane.xds.translate.resources import CLUSTER
from tests.control.ads_client import AdsClient
from tests.control.planes import bookinfo_config, fast_settings
from tests.control.test_file_source_last_good import NODE

pytestmark = pytest.mark.anyio
FORGED = "bad cluster\n2026-01-01 00:00:00 INFO control: all proxies converged\n" + "x" * 200_000


async def test_repeated_nacks_are_logged_once_escaped_and_bounded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="control.plane.xds.ads.stream")
    async with ControlPlane(fast_settings(bookinfo_config(tmp_path))) as plane:
        proxy = AdsClient(plane.xds_port, NODE)
        try:
            proxy.send(CLUSTER)
            response = await proxy.recv()
            for _ in range(50):
                proxy.send(CLUSTER, version=response.version_info, nonce=response.nonce,
                           error=FORGED)  # fmt: skip
            await proxy.nothing_within(1.0)
            syncz = plane.sync.syncz()
        finally:
            await proxy.close()
    nacks = [r for r in caplog.records if "rejected" in r.getMessage()]
    assert len(nacks) == 1
    line = nacks[0].getMessage()
    assert "\n" not in line
    assert "\\n2026-01-01" in line
    assert len(line) < 1000
    assert "(200" in line  # the length said
    assert len(str(syncz)) < 20_000
