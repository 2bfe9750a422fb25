-- jt808_terminal_known --
-- A registered terminal bound to a vehicle (a JT/T 808 phone number is its terminal id).
SELECT EXISTS (SELECT 1 FROM terminal WHERE terminal_id = %(terminal_id)s AND vehicle_id IS NOT NULL);

-- jt808_register --
INSERT INTO jt808_terminal AS j (terminal_id, auth_code, province, city, maker, model, device_id, plate)
VALUES (%(terminal_id)s, %(auth_code)s, %(province)s, %(city)s, %(maker)s, %(model)s, %(device_id)s, %(plate)s)
ON CONFLICT (terminal_id) DO UPDATE
SET auth_code = excluded.auth_code, registered_at = now(), province = excluded.province, city = excluded.city,
    maker = excluded.maker, model = excluded.model, device_id = excluded.device_id, plate = excluded.plate;

-- jt808_auth_codes --
SELECT terminal_id, auth_code FROM jt808_terminal;

-- jt808_auth_code --
SELECT auth_code FROM jt808_terminal WHERE terminal_id = %(terminal_id)s;

-- jt808_authenticated --
UPDATE jt808_terminal
SET authenticated_at = now(), imei = coalesce(nullif(%(imei)s, ''), imei),
    firmware = coalesce(nullif(%(firmware)s, ''), firmware)
WHERE terminal_id = %(terminal_id)s;

-- jt808_unregister --
DELETE FROM jt808_terminal WHERE terminal_id = %(terminal_id)s;
