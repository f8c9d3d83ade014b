-- Ukrainian display names: an area's name in Ukrainian, and an agreement's
-- official Ukrainian title where a source gives one (never a machine
-- translation). NULL: none known yet; readers then get the English one.
ALTER TABLE areas ADD COLUMN name_uk TEXT;
ALTER TABLE agreements ADD COLUMN title_uk TEXT;
