-- The reply budget belongs to one inbound message: a count on its journal
-- row, 0 when journaled and when requeued. The per-user counts go.
ALTER TABLE wxlink_journal ADD COLUMN budget_used bigint NOT NULL DEFAULT 0;
DROP TABLE wxlink_replies;
