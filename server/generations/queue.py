"""The generation queue: claims with leases, progress, completion, failure, the expiry sweep.

The ``generation`` table is the queue (docs/architecture.md §6); this module
is every transition a worker causes. docs/generations.md explains the design;
in short:

- **Lock order.** Every transaction that changes a generation locks its
  row, then its project's row (``jobs.locked``; docs/architecture.md §2),
  then changes it; the event's ``seq`` comes from the project's row. Outside
  writers' triggers take them in that order too, and a claim takes both with
  ``SKIP LOCKED`` (it never waits for one), so no two writers wait on each
  other in opposite orders.
- **Claim.** :func:`_ranked_projects` orders the projects that have queued
  jobs fairly: fewest running jobs first, then the one served longest ago,
  then the oldest waiting job. The claimer walks that list, taking each
  project's row with ``FOR UPDATE SKIP LOCKED`` and then its oldest queued
  job with ``FOR UPDATE SKIP LOCKED`` (in one short transaction per project),
  so concurrent claimers spread over projects instead of queueing on one;
  only when every candidate was busy does it wait for one. A job is claimed
  once: the status is re-checked under the locks. SQLite (embedded mode) has
  no row locks; its IMMEDIATE write transactions serialise the same code.
- **Leases.** A claim sets ``lease_expires_at``; every report renews it. A
  report on a job this worker no longer holds (canceled, reclaimed, lease
  expired) is a 409 :class:`LeaseLost`. :meth:`GenerationQueue.sweep` puts
  expired jobs back (or fails them for good past the maximum attempts, with
  one refund); claims and a periodic task in each server run it.
- **Events.** Every status change is a ``generation.*`` event with the whole
  entity (jobs.py); progress events are coalesced (progress.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from piccolo.engine.base import Engine

from server.db.engine import write_transaction
from server.errors import BadRequest, Conflict, NotFound
from server.events.log import EventRecord
from server.events.notify import Notifier
from server.generations import jobs
from server.generations.progress import ProgressEvents
from server.generations.service import refund
from server.generations.tables import Generation
from server.log import get_logger
from server.projects import resources
from server.projects.entities import room_entity
from server.projects.tables import Project, Room
from server.projects.validation import clean_json, clean_text
from server.timestamps import rfc3339, utc
from server.types import ProjectId

log = get_logger(__name__)

MAX_ERROR = 2000
MAX_STAGE = 64
CANDIDATE_PROJECTS = 8
SWEEP_BATCH = 100
NO_JOB = "no generation with this id"

# Projects with queued jobs, fairest first. ``served`` looks only at projects
# that have queued jobs (index generation_project_created), so its cost grows
# with those projects' history, not the whole table's.
_RANKED_PROJECTS_SQL = """
SELECT h.project_id AS project_id
FROM (
    SELECT project_id, MIN(created_at) AS head_at FROM generation
    WHERE status = 'queued' GROUP BY project_id
) AS h
JOIN project p ON p.id = h.project_id AND p.deleted_at IS NULL
LEFT JOIN (
    SELECT project_id,
           SUM(CASE WHEN status = 'running' THEN 1 ELSE 0 END) AS running,
           MAX(started_at) AS last_served
    FROM generation
    WHERE started_at IS NOT NULL
      AND project_id IN (SELECT project_id FROM generation WHERE status = 'queued')
    GROUP BY project_id
) AS s ON s.project_id = h.project_id
ORDER BY COALESCE(s.running, 0), s.last_served NULLS FIRST, h.head_at
LIMIT {}
"""


class LeaseLost(Conflict):
    """This worker does not hold the generation (any more): stop working on it (409)."""


@dataclass(frozen=True, slots=True)
class Owner:
    """Who works on a job: the service account (None: the in-process worker) and worker id."""

    account_id: uuid.UUID | None
    worker_id: str | None


class GenerationQueue:
    """Every worker-side transition of a generation; one per server process."""

    def __init__(
        self,
        engine: Engine[Any],
        *,
        lease_s: int,
        max_attempts: int,
        storage_dir: str,
        progress_interval_s: float = 0.2,
    ) -> None:
        self.engine = engine
        self.lease = timedelta(seconds=lease_s)
        self.max_attempts = max_attempts
        self.storage_dir = storage_dir
        self.progress_interval_s = progress_interval_s
        self._progress = ProgressEvents(engine, progress_interval_s)

    async def settle(self) -> None:
        """Wait until every pending trailing progress event has gone out."""
        await self._progress.settle()

    async def close(self) -> None:
        """Let pending trailing progress events go out (each is at most one interval away).

        They are awaited rather than cancelled: a task cancelled inside its write
        transaction could leave SQLite's write lock to the garbage collector.
        """
        await self.settle()

    # --- claim -----------------------------------------------------------------

    async def claim(self, notifier: Notifier, owner: Owner) -> dict[str, Any] | None:
        """Claim the fairest queued job for ``owner``; the job (with its room) or None."""
        await self.sweep(notifier)
        busy: list[ProjectId] = []
        for project_id in await self._ranked_projects():
            outcome = await self._claim_in(notifier, project_id, owner, wait=False)
            if outcome == "busy":
                busy.append(project_id)
            elif outcome is not None:
                return outcome
        for project_id in busy:  # every candidate was locked: now wait for one
            outcome = await self._claim_in(notifier, project_id, owner, wait=True)
            if isinstance(outcome, dict):
                return outcome
        return None

    async def _ranked_projects(self) -> list[ProjectId]:
        rows = await Generation.raw(_RANKED_PROJECTS_SQL, CANDIDATE_PROJECTS)
        return [jobs.project_id_of(row["project_id"]) for row in rows]

    async def _claim_in(
        self, notifier: Notifier, project_id: ProjectId, owner: Owner, *, wait: bool
    ) -> dict[str, Any] | Literal["busy"] | None:
        """Claim the oldest queued job of one project, in a transaction of its own."""
        postgres = self.engine.engine_type == "postgres"
        async with write_transaction(self.engine):
            project = Project.select(Project.id).where(Project.id == project_id)
            if postgres:
                project = project.lock_rows("UPDATE", skip_locked=not wait)
            if await project.first() is None:
                return "busy" if not wait else None
            job = (
                Generation.select()
                .where((Generation.project_id == project_id) & (Generation.status == "queued"))
                .order_by(Generation.created_at, Generation.id)
                .limit(1)
                .output(load_json=True)
            )
            if postgres:  # outside writers may hold a job's row: skip it, never wait
                job = job.lock_rows("UPDATE", skip_locked=True)
            row = await job.first()
            if row is None:
                return None
            now = datetime.now(UTC)
            version = int(row["version"]) + 1
            started_at = utc(row["started_at"]) or now
            queue_wait_ms = row["queue_wait_ms"]
            if queue_wait_ms is None:
                queue_wait_ms = jobs.ms(now - utc(row["created_at"]))
            await Generation.update(
                {
                    Generation.status: "running",
                    Generation.attempts: int(row["attempts"]) + 1,
                    Generation.progress: 0,
                    Generation.stage: None,
                    Generation.lease_owner: owner.worker_id,
                    Generation.lease_account_id: owner.account_id,
                    Generation.lease_expires_at: now + self.lease,
                    Generation.started_at: started_at,
                    Generation.queue_wait_ms: queue_wait_ms,
                    Generation.version: version,
                }
            ).where(Generation.id == row["id"])
            entity, event = await jobs.logged(row["id"], project_id, "generation.started", version)
            room = None
            if row["room_id"] is not None:
                room_row = (
                    await Room.select()
                    .where(Room.id == row["room_id"])
                    .output(load_json=True)
                    .first()
                )
                room = None if room_row is None else room_entity(room_row)
        await notifier.events_committed([event])
        log.info(
            "generation.claimed",
            generation_id=str(row["id"]),
            worker_id=owner.worker_id,
            attempt=entity["attempts"],
            queue_wait_ms=queue_wait_ms,
        )
        return {**entity, "room": room, "lease_expires_at": rfc3339(now + self.lease)}

    # --- reports ----------------------------------------------------------------

    async def progress(
        self,
        notifier: Notifier,
        generation_id: uuid.UUID,
        owner: Owner,
        *,
        progress: int,
        stage: str | None,
    ) -> dict[str, Any]:
        """Record progress (0..100) and renew the lease; the event may be coalesced."""
        if not 0 <= progress <= 100:
            raise BadRequest("progress: must be an integer 0..100", field="progress")
        if stage is not None:
            stage = clean_text("stage", stage, MAX_STAGE)
        event: EventRecord | None = None
        async with write_transaction(self.engine):
            row = await self._held(generation_id, owner)
            now = datetime.now(UTC)
            changed = progress != row["progress"] or (stage is not None and stage != row["stage"])
            values: dict[Any, Any] = {
                Generation.lease_expires_at: now + self.lease,
                Generation.stage_timings: self._timed(row, now),
            }
            version = int(row["version"])
            if changed:
                version += 1
                values.update(
                    {
                        Generation.progress: progress,
                        Generation.stage: stage if stage is not None else row["stage"],
                        Generation.version: version,
                    }
                )
            await Generation.update(values).where(Generation.id == generation_id)
            project_id = jobs.project_id_of(row["project_id"])
            if changed and self._progress.may_emit(generation_id):
                entity, event = await jobs.logged(
                    generation_id, project_id, "generation.progress", version
                )
                self._progress.emitted(generation_id, version)
            else:
                entity = await jobs.entity(generation_id)
        if event is not None:
            await notifier.events_committed([event])
        elif changed:
            self._progress.trail(notifier, generation_id, project_id)
        return entity

    async def complete(
        self, notifier: Notifier, generation_id: uuid.UUID, owner: Owner, *, result: dict[str, Any]
    ) -> dict[str, Any]:
        """Finish the job with its result (e.g. ``{url, width, height, asset_id}``)."""
        result = clean_json("result", result)
        async with write_transaction(self.engine):
            row = await self._held(generation_id, owner)
            project_id = jobs.project_id_of(row["project_id"])
            asset = result.get("asset_id")
            if asset is not None and not await jobs.is_resource(project_id, asset):
                raise BadRequest(
                    "result.asset_id: not a resource of this generation's project",
                    field="result",
                )
            now = datetime.now(UTC)
            version = int(row["version"]) + 1
            await Generation.update(
                {
                    Generation.status: "succeeded",
                    Generation.progress: 100,
                    Generation.result: result,
                    Generation.error: None,
                    Generation.finished_at: now,
                    Generation.run_ms: jobs.ms(now - (utc(row["started_at"]) or now)),
                    Generation.stage_timings: self._timed(row, now),
                    Generation.lease_owner: None,
                    Generation.lease_account_id: None,
                    Generation.lease_expires_at: None,
                    Generation.version: version,
                }
            ).where(Generation.id == generation_id)
            entity, event = await jobs.logged(
                generation_id, project_id, "generation.succeeded", version
            )
        self._progress.forget(generation_id)
        await notifier.events_committed([event])
        return entity

    async def fail(
        self,
        notifier: Notifier,
        generation_id: uuid.UUID,
        owner: Owner,
        *,
        error: str,
        retryable: bool,
    ) -> dict[str, Any]:
        """The worker gave up: back to the queue if retryable and attempts remain, else failed."""
        error = clean_text("error", error, MAX_ERROR)
        async with write_transaction(self.engine):
            row = await self._held(generation_id, owner)
            entity, event = await self._give_up(row, error, retryable=retryable)
        self._progress.forget(generation_id)
        await notifier.events_committed([event])
        return entity

    async def store_asset(
        self,
        generation_id: uuid.UUID,
        owner: Owner,
        *,
        content_type: str,
        data: bytes,
        metadata: dict[str, Any],
    ) -> dict[str, Any]:
        """Store a picture of the job as a project resource (counted against its storage)."""
        metadata = clean_json("metadata", metadata)
        # A first look without locks, so no file is written for a job this worker does
        # not hold; the transaction checks again under the lock.
        first = await Generation.select().where(Generation.id == generation_id).first()
        project_id = jobs.project_id_of(self._check_holder(first, owner)["project_id"])
        stored = await resources.write_file(self.storage_dir, project_id, content_type, data)
        async with write_transaction(self.engine):
            row = await self._held(generation_id, owner)
            await Generation.update(
                {Generation.lease_expires_at: datetime.now(UTC) + self.lease}
            ).where(Generation.id == generation_id)
            return await resources.record(
                project_id,
                stored,
                kind="generation",
                name=f"generation-{generation_id}",
                room_id=row["room_id"],
                metadata={**metadata, "generation_id": str(generation_id)},
            )

    # --- expiry -----------------------------------------------------------------

    async def sweep(self, notifier: Notifier) -> int:
        """Put jobs whose lease expired back in the queue (or fail them for good); how many.

        Jobs of deleted projects are canceled (and refunded) on the way.
        """
        await self._cancel_orphans(notifier)
        now = datetime.now(UTC)
        expired = (
            await Generation.select(Generation.id)
            .where((Generation.status == "running") & (Generation.lease_expires_at < now))
            .limit(SWEEP_BATCH)
        )
        done = 0
        for candidate in expired:
            events: list[EventRecord] = []
            async with write_transaction(self.engine):
                row = await jobs.locked(candidate["id"])
                expires = utc(row["lease_expires_at"]) if row else None
                if row is None or row["status"] != "running" or expires is None or expires >= now:
                    continue  # someone reported, finished or swept it meanwhile
                _, event = await self._give_up(row, "the worker's lease expired", retryable=True)
                events.append(event)
            self._progress.forget(candidate["id"])
            await notifier.events_committed(events)
            log.warning(
                "generation.lease_expired", generation_id=str(candidate["id"]), kind=event.kind
            )
            done += 1
        return done

    async def _cancel_orphans(self, notifier: Notifier) -> None:
        """Cancel and refund the unfinished jobs of deleted projects (nobody may see them)."""
        orphans = (
            await Generation.select(Generation.id)
            .where(
                Generation.status.is_in(["queued", "running"])
                & Generation.project_id.deleted_at.is_not_null()
            )
            .limit(SWEEP_BATCH)
        )
        for orphan in orphans:
            async with write_transaction(self.engine):
                row = await jobs.locked(orphan["id"])
                if row is None or row["status"] not in ("queued", "running"):
                    continue
                version = int(row["version"]) + 1
                await Generation.update(
                    {
                        Generation.status: "canceled",
                        Generation.error: "the project was deleted",
                        Generation.finished_at: datetime.now(UTC),
                        Generation.lease_owner: None,
                        Generation.lease_account_id: None,
                        Generation.lease_expires_at: None,
                        Generation.version: version,
                    }
                ).where(Generation.id == orphan["id"])
                await refund(row)
                _, event = await jobs.logged(
                    orphan["id"],
                    jobs.project_id_of(row["project_id"]),
                    "generation.canceled",
                    version,
                )
            self._progress.forget(orphan["id"])
            await notifier.events_committed([event])

    async def sweep_forever(
        self, notifier: Notifier, interval_s: float, stop: asyncio.Event
    ) -> None:
        """Sweep every ``interval_s`` until ``stop`` is set (errors are logged, never fatal)."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)
                return
            try:
                await self.sweep(notifier)
            except Exception:
                log.exception("generation.sweep_failed")

    # --- helpers ----------------------------------------------------------------

    async def _give_up(
        self, row: dict[str, Any], error: str, *, retryable: bool
    ) -> tuple[dict[str, Any], EventRecord]:
        """Requeue ``row`` (attempts remain and retryable) or fail it for good with a refund."""
        generation_id: uuid.UUID = row["id"]
        project_id = jobs.project_id_of(row["project_id"])
        now = datetime.now(UTC)
        version = int(row["version"]) + 1
        values: dict[Any, Any] = {
            Generation.error: error,
            Generation.stage_timings: self._timed(row, now),
            Generation.lease_owner: None,
            Generation.lease_account_id: None,
            Generation.lease_expires_at: None,
            Generation.version: version,
        }
        if retryable and int(row["attempts"]) < self.max_attempts:
            values.update(
                {Generation.status: "queued", Generation.progress: 0, Generation.stage: None}
            )
            await Generation.update(values).where(Generation.id == generation_id)
            return await jobs.logged(generation_id, project_id, "generation.queued", version)
        values.update(
            {
                Generation.status: "failed",
                Generation.finished_at: now,
                Generation.run_ms: jobs.ms(now - (utc(row["started_at"]) or now)),
            }
        )
        await Generation.update(values).where(Generation.id == generation_id)
        await refund(row)
        return await jobs.logged(generation_id, project_id, "generation.failed", version)

    async def _held(self, generation_id: uuid.UUID, owner: Owner) -> dict[str, Any]:
        """The locked row of a job ``owner`` holds a live lease on; 404 / 409 otherwise."""
        return self._check_holder(await jobs.locked(generation_id), owner)

    def _check_holder(self, row: dict[str, Any] | None, owner: Owner) -> dict[str, Any]:
        if row is None:
            raise NotFound(NO_JOB)
        if row["status"] != "running":
            self._progress.forget(row["id"])  # e.g. canceled while it ran
            raise LeaseLost(
                f"this worker does not hold the generation: it is {row['status']}",
                status_now=row["status"],
            )
        holder = row["lease_account_id"]
        if str(holder) != str(owner.account_id) or (
            owner.worker_id is not None and row["lease_owner"] != owner.worker_id
        ):
            raise LeaseLost("another worker holds this generation", status_now=row["status"])
        expires = utc(row["lease_expires_at"])
        if expires is None or expires < datetime.now(UTC):
            raise LeaseLost("this worker's lease expired", status_now=row["status"])
        return row

    def _timed(self, row: dict[str, Any], now: datetime) -> dict[str, int]:
        """Stage timings with the time since the last report added to the current stage.

        The last report (or the claim) renewed the lease, so it happened at
        ``lease_expires_at - lease``: no extra column is needed.
        """
        timings: dict[str, int] = dict(row["stage_timings"] or {})
        expires = utc(row["lease_expires_at"])
        if row["stage"] is not None and expires is not None:
            spent = jobs.ms(now - (expires - self.lease))
            timings[row["stage"]] = int(timings.get(row["stage"], 0)) + spent
        return timings
