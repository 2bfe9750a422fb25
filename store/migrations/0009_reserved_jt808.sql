-- Placeholder so that 0010 has no gap on this branch: the jt808 branch owns migration 0009.
-- The lead deletes this file when jt808's 0009 is merged.
SELECT 1;
