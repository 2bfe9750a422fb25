-- Placeholder so that 0012 has no gap on this branch: the jt808 branch owns migration 0011.
-- The lead deletes this file when jt808's 0011 is merged.
SELECT 1;
