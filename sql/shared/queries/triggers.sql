-- name: ClaimScheduleSlot :execrows
-- One row per (key, slot): the caller that inserts it owns the slot.
INSERT INTO schedule_slots (key, slot, claimed_by, claimed_at)
VALUES (sqlc.arg(key), sqlc.arg(slot), sqlc.arg(claimed_by), sqlc.arg(claimed_at))
ON CONFLICT (key, slot) DO NOTHING;

-- name: ReleaseScheduleSlot :execrows
DELETE FROM schedule_slots
WHERE key = sqlc.arg(key) AND slot = sqlc.arg(slot) AND claimed_by = sqlc.arg(claimed_by);

-- name: DeleteScheduleSlotsBefore :execrows
DELETE FROM schedule_slots WHERE slot < sqlc.arg(before);

-- name: PutSchedule :one
INSERT INTO workflow_schedules (owner_id, workflow, id, cron, time_zone, payload, enabled, misfire_policy,
                                misfire_grace_s, next_at, created_at, updated_at)
VALUES (sqlc.arg(owner_id), sqlc.arg(workflow), sqlc.arg(id), sqlc.arg(cron), sqlc.arg(time_zone), sqlc.arg(payload),
        sqlc.arg(enabled), sqlc.arg(misfire_policy), sqlc.arg(misfire_grace_s), sqlc.narg(next_at), sqlc.arg(now), sqlc.arg(now))
ON CONFLICT (owner_id, workflow, id) DO UPDATE SET cron = excluded.cron, time_zone = excluded.time_zone,
    payload = excluded.payload, enabled = excluded.enabled, misfire_policy = excluded.misfire_policy,
    misfire_grace_s = excluded.misfire_grace_s, next_at = excluded.next_at, updated_at = excluded.updated_at
RETURNING *;

-- name: GetSchedule :one
SELECT * FROM workflow_schedules
WHERE owner_id = sqlc.arg(owner_id) AND workflow = sqlc.arg(workflow) AND id = sqlc.arg(id);

-- name: ListSchedules :many
SELECT * FROM workflow_schedules
WHERE owner_id = sqlc.arg(owner_id) AND workflow = sqlc.arg(workflow) ORDER BY id LIMIT sqlc.arg(max_rows);

-- name: DeleteSchedule :execrows
DELETE FROM workflow_schedules
WHERE owner_id = sqlc.arg(owner_id) AND workflow = sqlc.arg(workflow) AND id = sqlc.arg(id);

-- name: DueSchedules :many
SELECT * FROM workflow_schedules
WHERE enabled = TRUE AND next_at IS NOT NULL AND next_at <= sqlc.arg(now)
ORDER BY next_at LIMIT sqlc.arg(max_rows);

-- name: AdvanceSchedule :execrows
-- Only from the next_at the scheduler read: a PUT in between (which sets its own) wins.
UPDATE workflow_schedules SET next_at = sqlc.narg(next_at)
WHERE owner_id = sqlc.arg(owner_id) AND workflow = sqlc.arg(workflow) AND id = sqlc.arg(id)
  AND next_at = sqlc.arg(from_next_at);

-- name: InsertTrigger :exec
INSERT INTO workflow_triggers (id, owner_id, workflow, sealed, created_at, rolled_at)
VALUES (sqlc.arg(id), sqlc.arg(owner_id), sqlc.arg(workflow), sqlc.arg(sealed), sqlc.arg(created_at), sqlc.arg(created_at));

-- name: GetTrigger :one
SELECT * FROM workflow_triggers WHERE id = sqlc.arg(id);

-- name: ListTriggers :many
SELECT * FROM workflow_triggers
WHERE owner_id = sqlc.arg(owner_id) AND workflow = sqlc.arg(workflow) ORDER BY created_at, id LIMIT sqlc.arg(max_rows);

-- name: RollTrigger :one
UPDATE workflow_triggers SET sealed = sqlc.arg(sealed), rolled_at = sqlc.arg(rolled_at)
WHERE id = sqlc.arg(id) AND owner_id = sqlc.arg(owner_id) AND workflow = sqlc.arg(workflow)
RETURNING *;

-- name: DeleteTrigger :execrows
DELETE FROM workflow_triggers
WHERE id = sqlc.arg(id) AND owner_id = sqlc.arg(owner_id) AND workflow = sqlc.arg(workflow);
