"""``exposure exposures --since`` and the API's ``since`` mean the same thing: exposures FIRST
seen at or after a time given with a UTC offset; a time without one is refused by both."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.settings import Settings
from exposure.store.models import Exposure
from tests.cli import run_cli
from tests.conftest import environment
from tests.integration.test_api_support import (
    T0,
    add_customer,
    add_exposure,
    api_client,
    bearer,
    make_token,
)


async def test_cli_and_api_filter_since_alike(
    engine: AsyncEngine, settings: Settings, database_url: str, tmp_path: Path
) -> None:
    await add_customer(engine, "C1")
    old = await add_exposure(engine, "C1", first_seen=T0, kind="email")
    new = await add_exposure(engine, "C1", first_seen=T0 + timedelta(days=2), kind="phone")
    async with engine.begin() as conn:  # the old one was seen again recently
        await conn.execute(
            update(Exposure)
            .where(Exposure.exposure_id == old)
            .values(last_seen=T0 + timedelta(days=3))
        )
    since = (T0 + timedelta(days=1)).isoformat()  # 2025-05-13T00:00:00+00:00
    env = environment(database_url)
    listed = run_cli("exposures", "--format", "jsonl", "--since", since, env=env, cwd=tmp_path)
    cli_ids = [json.loads(line)["exposure_id"] for line in listed.stdout.splitlines()]
    token = await make_token(engine)
    async with api_client(settings, engine) as client:
        response = await client.get("/v1/exposures", params={"since": since}, headers=bearer(token))
        api_ids = [item["exposure_id"] for item in (await response.json())["exposures"]]
        bare = await client.get(
            "/v1/exposures", params={"since": "2025-05-13T00:00:00"}, headers=bearer(token)
        )
        assert bare.status == 400
    assert cli_ids == api_ids == [new]  # first seen since: the old one is not new
    refused = run_cli(
        "exposures", "--since", "2025-05-13T00:00:00", env=env, cwd=tmp_path, check=False
    )
    assert refused.returncode == 2
    assert "add a UTC offset (Z or +09:00)" in refused.stderr
    assert "Traceback" not in refused.stderr
