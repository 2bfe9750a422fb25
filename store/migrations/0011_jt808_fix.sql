-- JT/T 808 fields of a fix (store/fixcolumns.py): the 0x0200 alarm and status words, fuel in litres.
ALTER TABLE position
    ADD COLUMN alarm_word  bigint CHECK (alarm_word BETWEEN 0 AND 4294967295),
    ADD COLUMN status_word bigint CHECK (status_word BETWEEN 0 AND 4294967295),
    ADD COLUMN fuel_l      real;

-- Alarms a supervisor acts on, raised from the alarm word (rules/alarms.py), one per episode.
ALTER TABLE alert DROP CONSTRAINT alert_kind_check;
ALTER TABLE alert ADD CONSTRAINT alert_kind_check CHECK (kind IN (
    'no_order', 'outside_window', 'off_hours', 'detour', 'wrong_destination', 'mileage_excess',
    'overnight_away', 'not_returned', 'forbidden_place', 'overspeed', 'silent_terminal',
    'mileage_padding', 'order_not_executed', 'fuel_card_elsewhere', 'fuel_over_tank',
    'fuel_consumption', 'maintenance_elsewhere',
    'alarm_emergency', 'alarm_power_cut', 'alarm_antenna_cut', 'alarm_illegal_ignition',
    'alarm_illegal_displacement', 'alarm_collision', 'alarm_rollover'));
ALTER TABLE alert DROP CONSTRAINT alert_anchor_check;
ALTER TABLE alert ADD CONSTRAINT alert_anchor_check CHECK (anchor IN (
    'trip', 'stop', 'gap', 'night', 'order', 'fuel_record', 'maintenance_record', 'alarm'));
