-- Webhooks: subscriptions, and a transactional outbox of deliveries.
-- Times are milliseconds since the Unix epoch (BIGINT on both backends), so
-- the dispatcher compares them with one clock, its own, in queries written
-- once for both backends.
CREATE TABLE webhook_subscriptions (
    id              TEXT COLLATE "C" PRIMARY KEY,
    url             TEXT NOT NULL,
    description     TEXT NOT NULL DEFAULT '',
    -- The signing secret (whsec_...): needed in clear to sign, never shown
    -- after creation.
    secret          TEXT NOT NULL,
    enabled         BOOLEAN NOT NULL DEFAULT TRUE,
    disabled_reason TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    -- Moves with every change (its ETag; If-Match compares it).
    version         BIGINT NOT NULL DEFAULT 1
);

-- The event types a subscription wants: `agreement.updated`, `agreement.*` or `*`.
CREATE TABLE webhook_events (
    subscription_id TEXT COLLATE "C" NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    event           TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (subscription_id, event)
);

-- Narrowing filters: a change matches when, for each field named, its value is one of those listed.
CREATE TABLE webhook_filters (
    subscription_id TEXT COLLATE "C" NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    field           TEXT COLLATE "C" NOT NULL CHECK (field IN ('partner', 'agreement')),
    value           TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (subscription_id, field, value)
);

-- One row per (change, subscription), or per test ping: what to send, and
-- how sending it went. `locked_until` is the claim of the instance sending
-- it; a claim that expires (the instance died) is taken again.
CREATE TABLE webhook_deliveries (
    id               BIGSERIAL PRIMARY KEY,
    subscription_id  TEXT COLLATE "C" NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    message_id       TEXT NOT NULL UNIQUE,
    event            TEXT NOT NULL,
    feed_seq         BIGINT,
    status           TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    created_at       BIGINT NOT NULL,
    next_attempt_at  BIGINT NOT NULL DEFAULT 0,
    first_attempt_at BIGINT,
    last_attempt_at  BIGINT,
    last_status      BIGINT,
    last_error       TEXT,
    locked_until     BIGINT,
    delivered_at     BIGINT
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (next_attempt_at, id) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_of ON webhook_deliveries (subscription_id, id);

-- The outbox: each history entry (a committed change, numbered in the feed)
-- queues one delivery per enabled subscription it matches, in the change's
-- own transaction, so a change is never committed without its deliveries.
-- Subscriptions made later do not get older changes.
CREATE FUNCTION history_to_webhooks() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    change_event TEXT := NEW.entity || '.' || CASE NEW.op
        WHEN 'create' THEN 'created' WHEN 'update' THEN 'updated'
        WHEN 'delete' THEN 'deleted' WHEN 'restore' THEN 'restored'
        WHEN 'load' THEN 'loaded' WHEN 'bulk_insert' THEN 'bulk_inserted'
        ELSE NEW.op END;
    change_agreement TEXT := COALESCE(NEW.agreement_id, CASE WHEN NEW.entity = 'agreement' THEN NEW.entity_id END);
BEGIN
    IF NEW.feed_seq IS NULL OR NOT EXISTS (SELECT 1 FROM webhook_subscriptions WHERE enabled) THEN
        RETURN NULL;
    END IF;
    INSERT INTO webhook_deliveries (subscription_id, message_id, event, feed_seq, created_at)
    SELECT s.id, 'msg_' || NEW.feed_seq || '_' || s.id, change_event, NEW.feed_seq,
           CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)
    FROM webhook_subscriptions s
    WHERE s.enabled
      AND EXISTS (SELECT 1 FROM webhook_events w WHERE w.subscription_id = s.id
                  AND w.event IN ('*', NEW.entity || '.*', change_event))
      AND (NOT EXISTS (SELECT 1 FROM webhook_filters f WHERE f.subscription_id = s.id AND f.field = 'partner')
           OR EXISTS (SELECT 1 FROM webhook_filters f WHERE f.subscription_id = s.id AND f.field = 'partner' AND f.value = NEW.partner_code))
      AND (NOT EXISTS (SELECT 1 FROM webhook_filters f WHERE f.subscription_id = s.id AND f.field = 'agreement')
           OR EXISTS (SELECT 1 FROM webhook_filters f WHERE f.subscription_id = s.id AND f.field = 'agreement' AND f.value = change_agreement));
    RETURN NULL;
END;
$$;

CREATE TRIGGER history_to_webhooks AFTER INSERT ON history
FOR EACH ROW EXECUTE FUNCTION history_to_webhooks();
