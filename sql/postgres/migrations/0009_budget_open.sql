-- Migration 0009 splits SQLite's budget ledger into open and closed reservations so that an
-- AI step writes fewer pages there (docs/adr/0006-budgets.md). PostgreSQL keeps
-- budget_ledger and budget_totals as they are; this step only keeps the two engines'
-- migration numbers in step, and records the design where psql shows it.
COMMENT ON TABLE budget_ledger IS
    'Owner budget reservations: open, then settled or expired. Running totals in budget_totals (migration 0006).';
