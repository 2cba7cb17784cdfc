-- A claim is open while its fire runs (or waits to retry) and done once the fire has its
-- final outcome. Open claims whose lease ran out are taken over by another instance.
ALTER TABLE fire_claims ADD COLUMN done BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE fire_claims SET done = TRUE;
CREATE INDEX fire_claims_open ON fire_claims (done, lease_until);
