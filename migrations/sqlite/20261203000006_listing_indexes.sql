-- Glint's own indexes (SQLite only), beside Glance's. SQLite plans without statistics, and with
-- Glance's indexes alone it may pick `ix_image_properties_deleted` (every live row matches)
-- for an image's properties, or `ix_images_deleted` for a listing, and scan whole tables: a
-- list of 1000 images took 175 ms and a walk of 1000 in pages of 20 took 4 s. With an index
-- on both of a query's equalities the choice is plain. Additive only: Glance ignores them.
CREATE INDEX glint_ix_images_listing ON images (deleted, created_at, id);
CREATE INDEX glint_ix_image_properties_live ON image_properties (image_id, deleted);
CREATE INDEX glint_ix_image_tags_live ON image_tags (image_id, deleted);
CREATE INDEX glint_ix_image_locations_live ON image_locations (image_id, deleted);
