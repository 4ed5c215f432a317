"""Tweak checks end to end on real SQLite and PostgreSQL: each rule family against every hash
scheme, the budget, once ever (re-ingest and resume repeat nothing), the report's status, and
no tweak or password anywhere in the database, the logs or the outputs."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from passlib import hash as passlib_hash
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from exposure.clock import utcnow
from exposure.ingest import pipeline
from exposure.ingest.pipeline import Ingestor
from exposure.ingest.results import IngestResult
from exposure.passwords.tweaks import tweaks
from exposure.passwords.verifier import PasswordVerifier
from exposure.report.builder import produce_weekly_report
from exposure.report.weeks import IsoWeek
from exposure.settings import load_settings
from exposure.store import db
from exposure.store.models import OutboxEvent, TweakCheck
from tests.cli import run_cli
from tests.conftest import environment
from tests.integration.test_enrolment_store import _dump_everything
from tests.leakgen import BROKER, HASHER, HEADER

# (customer, leaked password, current password, rule family, how the current one is hashed)
FAMILIES = [
    ("T01", "Sakura!2024", "Sakura!2025", "increment_number", "argon2"),
    ("T02", "taro1234", "Taro1234", "first_letter_case", "bcrypt"),
    ("T03", "kenji88", "kenji88!", "append_symbol", "pbkdf2_sha256"),
    ("T04", "momiji55!", "momiji55", "delete_last", "sha512_crypt"),
    ("T05", "Kaede2", "Kaede1", "decrement_number", "scrypt"),
    ("T06", "hanako1990", "hanako1992", "year_step", "argon2"),
    ("T07", "Sakura2024!", "Sakura!2024", "move_symbols", "bcrypt"),
]
STALE = ("S01", "Kaede#1111-old", "Tsubaki$9090-new")  # no tweak of one is the other
LIVE = ("L01", "Ume&Live-5150", "Ume&Live-5150")

HASHERS = {
    "argon2": HASHER.hash,
    "bcrypt": lambda p: bcrypt.hashpw(p.encode(), bcrypt.gensalt(4)).decode(),
    "pbkdf2_sha256": passlib_hash.pbkdf2_sha256.using(rounds=1000).hash,
    "sha512_crypt": passlib_hash.sha512_crypt.using(rounds=1000).hash,
    "scrypt": passlib_hash.scrypt.using(rounds=4).hash,
}


class Killed(Exception):
    """Stands for a crash at a chosen moment."""


def _email(customer: str) -> str:
    return f"tweak.{customer.lower()}@example.jp"


def _enrol(env: dict[str, str], tmp_path: Path, rows: list[tuple[str, str, str]]) -> None:
    lines = [f"{c},{_email(c)},,,{HASHERS[scheme](current)}" for c, current, scheme in rows]
    (tmp_path / "customers.csv").write_text(HEADER + "\n".join(lines) + "\n", "utf-8")
    run_cli("enroll", str(tmp_path / "customers.csv"), env=env, cwd=tmp_path)


async def _ingest(
    database_url: str, tmp_path: Path, dump: Path, *, workers: int = 1, **env: str
) -> tuple[IngestResult, int]:
    """Ingest in this process; the summary and how many pairs the verifier hashed."""
    settings = load_settings(environment(database_url, **env), env_file=tmp_path / "absent.env")
    async with db.open_engine(database_url) as engine:
        async with PasswordVerifier(workers=workers) as verifier:
            ingestor = Ingestor(engine, settings, await Ingestor.load_index(engine), verifier)
            result = await ingestor.ingest(dump, source="manual")
    return result, verifier.verified


def _exposures(env: dict[str, str], cwd: Path) -> dict[str, dict[str, Any]]:
    out = run_cli("exposures", "--format", "jsonl", env=env, cwd=cwd).stdout
    return {item["customer_id"]: item for item in map(json.loads, out.splitlines())}


async def _events(engine: AsyncEngine) -> list[tuple[str, str]]:
    """(customer, event type) of every outbox event, in the order they were written."""
    async with engine.connect() as conn:
        rows = (await conn.execute(select(OutboxEvent.payload).order_by(OutboxEvent.id))).all()
    bodies = [json.loads(payload) for (payload,) in rows]
    return [(b["data"]["customer_id"], b["type"]) for b in bodies]


async def test_each_rule_family_against_each_scheme(
    database_url: str, tmp_path: Path, engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    env = environment(database_url, EXPOSURE_BROKER_DOMAINS=BROKER)
    _enrol(
        env,
        tmp_path,
        [(c, current, scheme) for c, _, current, _, scheme in FAMILIES]
        + [(STALE[0], STALE[2], "argon2"), (LIVE[0], LIVE[2], "bcrypt")],
    )
    leaks = [(c, leaked) for c, leaked, *_ in FAMILIES] + [STALE[:2], LIVE[:2]]
    dump = tmp_path / "combo.txt"
    dump.write_text("".join(f"{_email(c)}:{leaked}\n" for c, leaked in leaks), "utf-8")

    caplog.set_level(logging.DEBUG)
    result, _ = await _ingest(database_url, tmp_path, dump)

    found = _exposures(env, tmp_path)
    for customer, _, _, family, scheme in FAMILIES:
        exposure = found[customer]
        assert (exposure["password_status"], exposure["action"], exposure["severity"]) == (
            "tweaked",
            "force_reset",
            "critical",
        ), (family, scheme)
        assert "close variant of a leaked password" in exposure["reason"]
    assert (found["S01"]["password_status"], found["S01"]["action"]) == ("stale", "notify")
    assert found["L01"]["password_status"] == "live"
    assert (result.stats.tweak_checks, result.stats.tweaked) == (len(FAMILIES) + 1, len(FAMILIES))
    # Each tweaked exposure was written stale first, then raised: two events, in that order.
    events = await _events(engine)
    for customer, *_ in FAMILIES:
        mine = [kind for who, kind in events if who == customer]
        assert mine == ["exposure.notify", "exposure.force_reset"]
    async with engine.connect() as conn:
        checks = (await conn.execute(select(TweakCheck.tweaked, TweakCheck.guesses))).all()
    assert sorted(checks) == [(False, 20)] + [(True, 20)] * len(FAMILIES)

    # Nothing of a leaked password, a current one or any tweak of them is anywhere.
    secrets = {p for _, leaked, current, *_ in FAMILIES for p in (leaked, current)}
    secrets |= {STALE[1], STALE[2], LIVE[1]}
    secrets |= {t for _, leaked, *_ in FAMILIES for t in tweaks(leaked, 20)}
    secrets |= set(tweaks(STALE[1], 20))
    stored = await _dump_everything(database_url, tmp_path)
    outputs = (
        json.dumps(result.as_json())
        + caplog.text
        + run_cli("exposures", "--format", "jsonl", env=env, cwd=tmp_path).stdout
    )
    payloads = "".join(json.dumps(e) for e in await _events(engine))
    for secret in sorted(secrets):
        assert secret.encode() not in stored, secret
        assert secret not in outputs and secret not in payloads, secret


async def test_the_budget_bounds_the_guesses_and_zero_turns_tweaks_off(
    database_url: str, tmp_path: Path, engine: AsyncEngine
) -> None:
    leaked = "Sakura2024!"
    candidates = tweaks(leaked, 1000)
    position = candidates.index("Sakura!2024")  # the 8th most likely change
    env = environment(database_url)
    _enrol(env, tmp_path, [("B01", "Sakura!2024", "argon2")])
    dump = tmp_path / "combo.txt"
    dump.write_text(f"{_email('B01')}:{leaked}\n", "utf-8")

    off, verified = await _ingest(database_url, tmp_path, dump, EXPOSURE_TWEAK_GUESSES="0")
    assert (verified, off.stats.tweak_checks) == (1, 0)  # the first verification alone
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(TweakCheck))).scalar() == 0

    # One guess short: every guess within the budget is tried, none verifies.
    short, verified = await _ingest(
        database_url, tmp_path, dump, EXPOSURE_TWEAK_GUESSES=str(position)
    )
    assert (verified, short.stats.tweak_checks, short.stats.tweaked) == (position, 1, 0)
    assert _exposures(env, tmp_path)["B01"]["password_status"] == "stale"

    # The same budget again: checked already, nothing is verified.
    again, verified = await _ingest(
        database_url, tmp_path, dump, EXPOSURE_TWEAK_GUESSES=str(position)
    )
    assert (verified, again.stats.tweak_checks) == (0, 0)

    # A larger budget checks again, and the change is within it now.
    wider, verified = await _ingest(
        database_url, tmp_path, dump, EXPOSURE_TWEAK_GUESSES=str(position + 1)
    )
    assert (verified, wider.stats.tweaked) == (position + 1, 1)
    exposure = _exposures(env, tmp_path)["B01"]
    assert (exposure["password_status"], exposure["action"]) == ("tweaked", "force_reset")
    assert wider.stats.escalations == 1


async def test_broker_site_leaks_are_tweak_checked_first(
    database_url: str, tmp_path: Path, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = environment(database_url, EXPOSURE_BROKER_DOMAINS=BROKER)
    _enrol(env, tmp_path, [("P01", "Kiku$1234", "argon2"), ("P02", "Kiku$1234", "argon2")])
    dump = tmp_path / "urls.txt"
    dump.write_text(  # the broker-site leak comes second in the file
        f"https://shop.example/login:{_email('P01')}:Kiku$1233\n"
        f"https://trade.{BROKER}/login:{_email('P02')}:Kiku$1233\n",
        "utf-8",
    )
    order: list[str] = []
    real_run = pipeline.TweakChecks.run

    async def observed(self: Any, jobs: Any, on_answer: Any) -> None:
        order.extend(job.key[0] for job in jobs)
        await real_run(self, jobs, on_answer)

    monkeypatch.setattr(pipeline.TweakChecks, "run", observed)
    await _ingest(database_url, tmp_path, dump)
    assert order == ["P02", "P01"]
    events = await _events(engine)
    # The broker-site one: notify, then force_reset; the other too.
    assert [kind for who, kind in events if who == "P02"] == [
        "exposure.notify",
        "exposure.force_reset",
    ]
    # Both rise. (Their events' order is not the checks' order: answers that arrive while
    # the writer is busy are written in one transaction, customer by customer.)
    raised = sorted(who for who, kind in events if kind == "exposure.force_reset")
    assert raised == ["P01", "P02"]


async def test_a_resumed_run_repeats_no_verification(
    database_url: str,
    empty_database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Killed after every step of its batch committed but before the checkpoint covered it,
    the run is resumed: it re-reads the batch and finds every first verdict in
    ``password_checks`` and every tweak verdict in ``tweak_checks``, so it hashes nothing,
    sends nothing twice, and ends as an uninterrupted run does."""
    rows = [(c, current, scheme) for c, _, current, _, scheme in FAMILIES]
    rows += [(STALE[0], STALE[2], "argon2"), (LIVE[0], LIVE[2], "argon2")]
    leaks = [(c, leaked) for c, leaked, *_ in FAMILIES] + [STALE[:2], LIVE[:2]]
    dump = tmp_path / "combo.txt"
    dump.write_text("".join(f"{_email(c)}:{leaked}\n" * 2 for c, leaked in leaks), "utf-8")

    run_cli("db", "upgrade", env=environment(empty_database_url), cwd=tmp_path)
    states = []
    for url in (empty_database_url, database_url):
        _enrol(environment(url), tmp_path, rows)
    reference, reference_verified = await _ingest(empty_database_url, tmp_path, dump)

    real_save = pipeline.write_observations

    async def crash_at_the_checkpoint(conn: Any, observations: Any, **kwargs: Any) -> None:
        if kwargs["done"]:
            raise Killed  # as if killed: the batch's steps are in, its checkpoint not
        await real_save(conn, observations, **kwargs)

    monkeypatch.setattr(pipeline, "write_observations", crash_at_the_checkpoint)
    with pytest.raises(Killed):
        await _ingest(database_url, tmp_path, dump)
    monkeypatch.setattr(pipeline, "write_observations", real_save)
    resumed, resumed_verified = await _ingest(database_url, tmp_path, dump)

    assert resumed.resumed and resumed_verified == 0
    assert (resumed.stats.verifications, resumed.stats.tweak_checks) == (0, 0)
    assert reference_verified > len(leaks)  # the reference did hash: first ones and tweaks
    for url in (empty_database_url, database_url):
        async with db.open_engine(url) as engine:
            states.append((await _events(engine), _exposures(environment(url), tmp_path)))
    (ref_events, ref_exposures), (events, exposures) = states
    assert sorted(events) == sorted(ref_events)  # no event twice, none missing
    project = ("password_status", "action", "occurrences")
    assert {c: [e[k] for k in project] for c, e in exposures.items()} == {
        c: [e[k] for k in project] for c, e in ref_exposures.items()
    }
    assert reference.stats.tweaked == len(FAMILIES)


async def test_tweaked_is_its_own_status_in_the_report_and_the_cli(
    database_url: str, tmp_path: Path, engine: AsyncEngine
) -> None:
    env = environment(database_url)
    customer, leaked, current, _, scheme = FAMILIES[0]
    _enrol(env, tmp_path, [(customer, current, scheme), (LIVE[0], LIVE[2], "argon2")])
    dump = tmp_path / "combo.txt"
    dump.write_text(f"{_email(customer)}:{leaked}\n{_email(LIVE[0])}:{LIVE[1]}\n", "utf-8")
    await _ingest(database_url, tmp_path, dump)

    table = run_cli("exposures", env=env, cwd=tmp_path).stdout
    assert "tweaked" in table and "live" in table
    texts = {}
    for lang in ("en", "ja"):
        settings = load_settings(
            environment(database_url, EXPOSURE_REPORT_DIR=str(tmp_path / "reports")),
            env_file=tmp_path / "absent.env",
        )
        week = IsoWeek.containing(utcnow(), settings.timezone)  # the week in progress
        produced = await produce_weekly_report(engine, settings, week=week, lang=lang)
        figures = produced.report.data
        assert figures.by_password_status["tweaked"] == 1
        assert figures.by_password_status["live"] == 1
        assert figures.headline.live_credentials == 1  # tweaked is counted apart
        texts[lang] = produced.report.html
    assert "Tweaked (a close variant is current)" in texts["en"]
    assert "類似（漏えいパスワードの変形が現在のパスワード）" in texts["ja"]
    assert 'data-password-status="tweaked"' in texts["ja"]
