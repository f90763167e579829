-- Running totals of owners' budgets per period, so a reservation reads and updates
-- two rows instead of summing the ledger. period is 'D' and the UTC day
-- ('D2026-11-25') or 'M' and the UTC month ('M2026-11') of the ledger rows' created_at.
-- spent_nanos is the settled spending; reserved_nanos the open reservations' amounts,
-- expired or not until ExpireOwnerReservations marks them so.
CREATE TABLE budget_totals (
    owner_id       TEXT    NOT NULL,
    period         TEXT    NOT NULL,
    spent_nanos    INTEGER  NOT NULL DEFAULT 0,
    reserved_nanos INTEGER  NOT NULL DEFAULT 0,
    PRIMARY KEY (owner_id, period)
);

-- Backfill from the existing ledger.
INSERT INTO budget_totals (owner_id, period, spent_nanos, reserved_nanos)
SELECT owner_id, 'D' || period_day,
       CAST(COALESCE(SUM(CASE WHEN state = 'settled' THEN spent_nanos ELSE 0 END), 0) AS INTEGER),
       CAST(COALESCE(SUM(CASE WHEN state = 'open' THEN reserved_nanos ELSE 0 END), 0) AS INTEGER)
FROM budget_ledger
GROUP BY owner_id, period_day
UNION ALL
SELECT owner_id, 'M' || period_month,
       CAST(COALESCE(SUM(CASE WHEN state = 'settled' THEN spent_nanos ELSE 0 END), 0) AS INTEGER),
       CAST(COALESCE(SUM(CASE WHEN state = 'open' THEN reserved_nanos ELSE 0 END), 0) AS INTEGER)
FROM budget_ledger
GROUP BY owner_id, period_month;

-- The ledger is now only summed for usage per model; leaving state out of its owner
-- index spares every settle an index update.
DROP INDEX budget_ledger_owner_period;
CREATE INDEX budget_ledger_owner_month ON budget_ledger (owner_id, period_month);
