-- Placeholder so that 0011 has no gap on this branch: the import-core branch owns migration 0010.
-- The lead deletes this file when import-core's 0010 is merged.
SELECT 1;
