-- Upload claims name the node that made them (`<node id>/<uuid>`), so that a restarted node
-- resets its own interrupted uploads at once.
ALTER TABLE images ALTER COLUMN upload_claim TYPE VARCHAR(255);
