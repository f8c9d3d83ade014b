-- A filtered list in an order its filter's index does not give walked one
-- index past every row the other would skip, or sorted every match: the
-- partner's agreements in any order but id (a quarter of the store for the
-- largest partner: 60-140 ms at 100,000 agreements), and the timeline
-- (signing order, newest first) filtered by partner, status or kind (up to
-- 340 ms). One index per (filter, order) pair that a page is asked for
-- serves each from its first row to its limit.
CREATE INDEX agreements_partner_signed_sort ON agreements (partner_code, (COALESCE(signed_on, '0001-01-01')), id);
CREATE INDEX agreements_partner_title ON agreements (partner_code, title, id);
CREATE INDEX agreements_partner_updated ON agreements (partner_code, updated_at, id);
CREATE INDEX agreements_partner_partner_name ON agreements (partner_code, partner_name, id);
CREATE INDEX agreements_status_signed_sort ON agreements (status, (COALESCE(signed_on, '0001-01-01')), id);
CREATE INDEX agreements_kind_signed_sort ON agreements (kind, (COALESCE(signed_on, '0001-01-01')), id);
