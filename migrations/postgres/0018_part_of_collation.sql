-- A pledge's part_of names another pledge's id, which is TEXT COLLATE "C",
-- but part_of has the database's default collation, so `part_of = id` (a
-- pledge's parts, read with it since an agreement is read in one
-- statement) compares in "C" and could not use the part_of index: it read
-- every pledge. The index now holds part_of in "C", as the ids are. (The
-- column itself cannot change type: the rollup views read it.)
DROP INDEX pledges_part_of;
CREATE INDEX pledges_part_of ON pledges (part_of COLLATE "C");
DROP INDEX pledges_versions_part_of;
CREATE INDEX pledges_versions_part_of ON pledges_versions (part_of COLLATE "C", rev_from, rev_to);
