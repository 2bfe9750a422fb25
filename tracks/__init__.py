"""Track engine: pure functions over numpy columns (clean → split → measure → match → conform → usage)."""
