"""`exposure ingest` end to end on real SQLite and PostgreSQL: the policy table, formats and
containers, re-ingest idempotence, escalation, and the privacy scan."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from exposure.ingest.pipeline import Ingestor
from exposure.metrics import REGISTRY
from exposure.passwords.verifier import PasswordVerifier
from exposure.settings import load_settings
from exposure.store import ingest as ingest_queries
from exposure.store.models import Case as CaseRow
from exposure.store.models import Exposure, LeakedPassword, OutboxEvent, Sighting
from tests.cli import run_cli, run_script
from tests.conftest import environment, only_sqlite
from tests.integration.test_enrolment_store import _dump_everything
from tests.leakgen import (
    BROKER,
    CURRENT,
    HASHER,
    HEADER,
    OLD,
    Case,
    enrolment_csv,
    policy_cases,
    stealer_case_customer,
    stealer_zip,
    write_everything,
)
from tests.waiting import eventually


def _setup(database_url: str, tmp_path: Path) -> tuple[dict[str, str], list[Case], Path, Path]:
    cases = policy_cases()
    stealer = stealer_case_customer()
    env = environment(database_url, EXPOSURE_BROKER_DOMAINS=BROKER)
    (tmp_path / "customers.csv").write_text(enrolment_csv([*cases, stealer]), "utf-8")
    run_cli("enroll", str(tmp_path / "customers.csv"), env=env, cwd=tmp_path)
    dumps = tmp_path / "dumps"
    write_everything(dumps, cases)
    archive = tmp_path / "stealer-logs.zip"
    stealer_zip(archive, stealer.login_id)
    return env, cases, dumps, archive


def _exposures(env: dict[str, str], cwd: Path) -> list[dict[str, Any]]:
    out = run_cli("exposures", "--format", "jsonl", env=env, cwd=cwd).stdout
    return [json.loads(line) for line in out.splitlines()]


async def test_policy_table_formats_and_containers(database_url: str, tmp_path: Path) -> None:
    env, cases, dumps, archive = _setup(database_url, tmp_path)
    result = run_cli(
        "ingest", str(dumps), str(archive), "--source", "darkweb-batch", env=env, cwd=tmp_path
    )
    summary = json.loads(result.stdout)

    by_customer: dict[str, list[dict[str, Any]]] = {}
    for exposure in _exposures(env, tmp_path):
        by_customer.setdefault(exposure["customer_id"], []).append(exposure)
    for case in cases:
        found = by_customer.get(case.customer_id, [])
        assert len(found) == 1, (case.customer_id, found)
        assert (found[0]["action"], found[0]["password_status"]) == (case.action, case.status), case
        assert found[0]["source"] == "darkweb-batch"
    variant = by_customer["P08"][0]
    assert variant["identifier_kind"] == "email" and variant["site_domain"] == f"trade.{BROKER}"

    # The stealer machine: NOT_SAVED broker block and the broker session cookie are the same
    # exposure (customer, login_id, no password, broker host); two sightings.
    [stolen] = by_customer["S01"]
    assert stolen["action"] == "force_reset" and stolen["password_status"] == "absent"
    assert stolen["site_domain"] == f"trade.{BROKER}"
    assert stolen["occurrences"] == 2
    assert "revoke_sessions" in stolen["recommended_actions"]

    # Accounting: every file is listed with its decoder; the broken ones are reported.
    files = {f["name"]: f for result in summary["inputs"] for f in result["files"]}
    assert files["combo_utf16.txt"]["encoding"].startswith("utf-16")
    assert any(
        name.endswith("cp932_list.txt") and f["encoding"] == "cp932" for name, f in files.items()
    )
    assert summary["rejected"].get("bad_json") == 1
    problems = [p for result in summary["inputs"] for p in result["problems"]]
    assert any(p["name"].endswith("corrupt.zip") for p in problems)
    assert (
        summary["new_exposures"]["force_reset"] == sum(c.action == "force_reset" for c in cases) + 1
    )
    assert summary["lines"] >= sum(len(c.lines) for c in cases)


async def test_reingest_adds_sightings_only(
    database_url: str, tmp_path: Path, engine: AsyncEngine
) -> None:
    env, _, dumps, archive = _setup(database_url, tmp_path)
    first = json.loads(run_cli("ingest", str(dumps), str(archive), env=env, cwd=tmp_path).stdout)

    async def counts() -> tuple[int, int, int, int]:
        folded = json.loads(run_cli("corpus", "compact", env=env, cwd=tmp_path).stdout)
        assert folded["pending_digests"] == 0
        async with engine.connect() as conn:
            return (
                (await conn.execute(select(func.count()).select_from(Exposure))).scalar_one(),
                (await conn.execute(select(func.count()).select_from(OutboxEvent))).scalar_one(),
                (await conn.execute(select(func.count()).select_from(Sighting))).scalar_one(),
                (await conn.execute(select(func.sum(LeakedPassword.count)))).scalar_one(),
            )

    async def cases_and_events() -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:
        """Every case (who, state, action, what was announced, since when) and every case
        event (its webhook id, case and type)."""
        async with engine.connect() as conn:
            cases = (
                await conn.execute(
                    select(
                        CaseRow.case_id,
                        CaseRow.customer_id,
                        CaseRow.state,
                        CaseRow.action,
                        CaseRow.severity,
                        CaseRow.announced_action,
                        CaseRow.opened_at,
                        CaseRow.force_reset_at,
                    )
                )
            ).all()
            events = (
                await conn.execute(
                    select(OutboxEvent.event_id, OutboxEvent.case_id, OutboxEvent.event_type)
                )
            ).all()
        return {tuple(c) for c in cases}, {tuple(e) for e in events}

    exposures, events, sightings, corpus = await counts()
    assert events == first["events"] > 0
    cases_before, case_events_before = await cases_and_events()
    async with engine.connect() as conn:
        customers = (
            await conn.execute(select(func.count(func.distinct(Exposure.customer_id))))
        ).scalar_one()
    assert len(cases_before) == customers  # one incident per customer
    assert len(case_events_before) == events
    assert {case_id for _, case_id, _ in case_events_before} <= {c[0] for c in cases_before}
    second = json.loads(run_cli("ingest", str(dumps), str(archive), env=env, cwd=tmp_path).stdout)
    assert second["new_exposures"] == {"force_reset": 0, "notify": 0, "none": 0}
    assert second["events"] == 0 and second["escalations"] == 0
    assert second["verifications"] == 0 and second["cached_verdicts"] > 0  # argon2 once, ever
    after = await counts()
    assert after == (exposures, events, 2 * sightings, corpus)  # corpus counts a file once
    # No second case and no second event: the same cases, announcing the same, the same events.
    assert await cases_and_events() == (cases_before, case_events_before)
    occurrences = [e["occurrences"] for e in _exposures(env, tmp_path)]
    assert all(n % 2 == 0 for n in occurrences)


async def test_a_pair_seen_in_consecutive_batches_is_verified_once(
    database_url: str, tmp_path: Path, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batch N+1 is evaluated while batch N's transaction is still open: the verdicts that
    transaction is about to write count as known, so argon2 runs once for the pair."""
    env = environment(database_url, EXPOSURE_BROKER_DOMAINS=BROKER)
    customers = tmp_path / "customers.csv"
    customers.write_text(f"{HEADER}V01,repeat.me@example.jp,,,{HASHER.hash(CURRENT)}\n", "utf-8")
    run_cli("enroll", str(customers), env=env, cwd=tmp_path)
    dump = tmp_path / "repeats.txt"
    dump.write_text(f"repeat.me@example.jp:{CURRENT}\n" * 6 + "someone@example.org:x1\n", "utf-8")

    known_checks, record_checks = ingest_queries.known_checks, ingest_queries.record_checks
    looked_up = 0  # batches whose evaluation has read the recorded verdicts

    async def counted_known_checks(conn: AsyncConnection, keys: Any) -> Any:
        nonlocal looked_up
        found = await known_checks(conn, keys)
        looked_up += 1
        return found

    async def held_record_checks(conn: AsyncConnection, verdicts: Any) -> None:
        # The first matching batch (argon2 ran: a verdict to record) keeps its transaction
        # open until the second one has read the recorded verdicts: it cannot find this one.
        if verdicts and looked_up == 1:
            await eventually(lambda: looked_up >= 2, within=10, what="the next batch")
        await record_checks(conn, verdicts)

    monkeypatch.setattr(ingest_queries, "known_checks", counted_known_checks)
    monkeypatch.setattr(ingest_queries, "record_checks", held_record_checks)
    settings = load_settings(
        {**env, "EXPOSURE_INGEST_BATCH_EVENTS": "1"}, env_file=tmp_path / "absent.env"
    )
    async with PasswordVerifier(workers=1) as verifier:
        ingestor = Ingestor(engine, settings, await Ingestor.load_index(engine), verifier)
        summary = await ingestor.ingest(dump, source="manual")

    assert summary.matched_records == 6
    assert (summary.stats.verifications, summary.stats.cached_verdicts) == (1, 5)
    [exposure] = _exposures(env, tmp_path)
    assert (exposure["password_status"], exposure["action"]) == ("live", "force_reset")
    assert exposure["occurrences"] == 6


async def test_lines_metric_counts_each_line_once_across_a_resume(
    database_url: str, tmp_path: Path, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resumed run starts from the lines its checkpoint had counted, not from zero."""
    folder = tmp_path / "leaks"
    folder.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (folder / name).write_text("".join(f"u{i}@{name}.example:pw{i}\n" for i in range(5)))
    settings = load_settings(
        environment(database_url, EXPOSURE_INGEST_BATCH_EVENTS="1"),
        env_file=tmp_path / "absent.env",
    )
    save_checkpoint = ingest_queries.save_checkpoint

    async def killed_before_the_last_commit(*args: Any, done: bool) -> None:
        if done:
            raise RuntimeError("killed")
        await save_checkpoint(*args, done=done)

    def lines_metric() -> float:
        return REGISTRY.get_sample_value("exposure_ingest_lines_total") or 0.0

    before = lines_metric()
    async with PasswordVerifier(workers=1) as verifier:
        monkeypatch.setattr(ingest_queries, "save_checkpoint", killed_before_the_last_commit)
        with pytest.raises(RuntimeError, match="killed"):
            await Ingestor(engine, settings, None, verifier).ingest(folder, source="manual")
        assert lines_metric() - before == 15  # every member ended; the last commit did not
        monkeypatch.setattr(ingest_queries, "save_checkpoint", save_checkpoint)
        summary = await Ingestor(engine, settings, None, verifier).ingest(folder, source="manual")
    assert summary.resumed and summary.stats.lines == 15
    assert lines_metric() - before == 15


async def test_variant_then_strict_escalates_once(
    database_url: str, tmp_path: Path, engine: AsyncEngine
) -> None:
    env = environment(database_url, EXPOSURE_BROKER_DOMAINS=BROKER)
    (tmp_path / "c.csv").write_text(enrolment_csv(policy_cases()[7:8]), "utf-8")  # P08, no hash
    run_cli("enroll", str(tmp_path / "c.csv"), env=env, cwd=tmp_path)
    site = f"https://trade.{BROKER}/login"
    (tmp_path / "a.txt").write_text(f"{site}:hinatavariant@gmail.com:{OLD}\n")
    (tmp_path / "b.txt").write_text(f"{site}:hinata.variant@gmail.com:{OLD}\n")
    run_cli("ingest", str(tmp_path / "a.txt"), env=env, cwd=tmp_path)
    # The security team dismissed the weak (variant-only) notify...
    async with engine.begin() as conn:
        await conn.execute(update(Exposure).values(state="dismissed", resolution="dismissed"))
    escalated = json.loads(run_cli("ingest", str(tmp_path / "b.txt"), env=env, cwd=tmp_path).stdout)
    assert escalated["escalations"] == 1 and escalated["events"] == 1
    [exposure] = _exposures(env, tmp_path)
    assert exposure["action"] == "force_reset" and exposure["match_strength"] == "strict"
    assert exposure["state"] == "open"  # ...and the stronger evidence reopened it
    async with engine.connect() as conn:
        types = (
            (await conn.execute(select(OutboxEvent.event_type).order_by(OutboxEvent.id)))
            .scalars()
            .all()
        )
    assert types == ["exposure.notify", "exposure.force_reset"]


async def test_outbox_payload_follows_the_contract(
    database_url: str, tmp_path: Path, engine: AsyncEngine
) -> None:
    env, _, dumps, _ = _setup(database_url, tmp_path)
    run_cli("ingest", str(dumps), env=env, cwd=tmp_path)
    async with engine.connect() as conn:
        payloads = [
            json.loads(p) for p in (await conn.execute(select(OutboxEvent.payload))).scalars()
        ]
    assert payloads
    for body in payloads:
        assert body["type"] in {"exposure.force_reset", "exposure.notify"}
        assert body["type"] == f"exposure.{body['data']['action']}"
        assert set(body["data"]) >= {
            "exposure_id",
            "customer_id",
            "action",
            "severity",
            "password_status",
            "identifier_kind",
            "leak_type",
            "site_domain",
            "source",
            "first_seen",
            "reason",
            "recommended_actions",
        }
        assert "http" not in json.dumps(body)  # never a link
    live = [b for b in payloads if b["data"]["password_status"] == "live"]
    assert live and all(b["data"]["severity"] == "critical" for b in live)
    assert all("reset_password" in b["data"]["recommended_actions"] for b in live)


async def test_nothing_plaintext_in_database_logs_or_output(
    database_url: str, tmp_path: Path
) -> None:
    env, cases, dumps, archive = _setup(database_url, tmp_path)
    result = run_cli("-v", "ingest", str(dumps), str(archive), env=env, cwd=tmp_path)
    listing = run_cli("exposures", "--format", "csv", env=env, cwd=tmp_path)
    table = run_cli("exposures", env=env, cwd=tmp_path)
    output = result.stdout + result.stderr + listing.stdout + listing.stderr + table.stdout
    dump = await _dump_everything(database_url, tmp_path)
    if database_url.startswith("sqlite"):  # the scan covers the spooled corpus digests too
        assert list((tmp_path / "exposure.db-corpus").glob("*.sha1"))
    secrets = {CURRENT, OLD, "invented-session-value", "someone.else@example.org", "unrelated-pw"}
    for case in [*cases, stealer_case_customer()]:
        secrets |= {case.email, case.email.lower(), case.login_id, case.login_id.lower()}
    secrets |= {
        "hinatavariant@gmail.com",
        "hotaruvariant+kabu@googlemail.com",
        "nobody.json@example.jp",
    }
    for secret in secrets:
        assert secret.encode() not in dump, "plaintext found in the database"
        assert secret not in output, "plaintext found in the command output or logs"
    assert "P01" in listing.stdout  # the scan does read the listing


async def test_format_override_and_bad_path(database_url: str, tmp_path: Path) -> None:
    env = environment(database_url)
    odd = tmp_path / "odd.dat"
    odd.write_text("someone@example.jp:pw\n")
    forced = json.loads(
        run_cli("ingest", str(odd), "--format", "combo", env=env, cwd=tmp_path).stdout
    )
    assert forced["records"] == 1 and forced["files"] == 1
    # The override really replaces detection: read as JSON lines, the same line is rejected.
    misread = json.loads(
        run_cli("ingest", str(odd), "--format", "jsonl", env=env, cwd=tmp_path).stdout
    )
    assert misread["records"] == 0 and misread["rejected"] == {"bad_json": 1}
    missing = run_cli("ingest", str(tmp_path / "nope.txt"), env=env, cwd=tmp_path, check=False)
    assert missing.returncode == 2 and "does not exist" in missing.stderr


@only_sqlite  # the process boundary is under test here, not the database
def test_the_real_script_keeps_the_summary_alone_on_stdout(
    database_url: str, tmp_path: Path
) -> None:
    """Through the installed console script and ``python -m exposure``, in child processes:
    the summary is the whole of stdout, log lines go to stderr, an error is one line on
    stderr with exit status 2."""
    env = environment(database_url)
    dump = tmp_path / "leak.txt"
    dump.write_text("someone@example.jp:pw\n")
    result = run_script("-v", "ingest", str(dump), env=env, cwd=tmp_path)
    assert json.loads(result.stdout)["records"] == 1  # one JSON document, nothing else
    logged = result.stderr.splitlines()
    assert logged and all(" INFO " in line or " DEBUG " in line for line in logged)
    missing = subprocess.run(
        [sys.executable, "-m", "exposure", "ingest", str(tmp_path / "nope.txt")],
        env={"PATH": os.environ.get("PATH", ""), **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (missing.returncode, missing.stdout) == (2, "")
    assert "does not exist" in missing.stderr and "Traceback" not in missing.stderr
