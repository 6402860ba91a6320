-- The upload that holds an image in `saving`: a token only that upload knows, and when it last
-- proved alive. Another node resets an upload whose heartbeat stopped (its node died); the
-- token keeps a reset or finished upload from touching a newer one's claim.
ALTER TABLE images ADD COLUMN upload_claim VARCHAR(36);
ALTER TABLE images ADD COLUMN upload_heartbeat TIMESTAMP;
