"""Import doors: reference data, provider records, the calendar, thresholds and roads from files
(CSV, XLSX, GeoJSON, .osm.pbf) or JSON, through one validation path (kinds → read → parse → run)."""
