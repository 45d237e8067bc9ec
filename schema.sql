-- The Payments API schema: the one source of truth, safe to apply again (idempotent).
-- Applied by `flask --app app init-db` (and by `make run`). MySQL 8 or MariaDB 10.6+.

CREATE TABLE IF NOT EXISTS users (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    name        VARCHAR(100)    NOT NULL,
    -- Binary: addresses are lower-cased before storage, and josé@ is not jose@.
    email       VARCHAR(254)    NOT NULL COLLATE utf8mb4_bin,
    phone       VARCHAR(32)     NULL,
    country     VARCHAR(64)     NULL,
    created_at  DATETIME        NOT NULL,
    updated_at  DATETIME        NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY users_email (email)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Card numbers and CVCs are stored only as AES-256-GCM ciphertexts (key version, nonce,
-- tag, ciphertext). The last four digits, brand and keyed fingerprint are kept in clear so
-- that reads and lists never decrypt. The CVC is erased when a payment leaves `pending`.
CREATE TABLE IF NOT EXISTS payments (
    id                  BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    user_id             BIGINT UNSIGNED NOT NULL,
    amount              DECIMAL(16, 4)  NOT NULL,
    currency            CHAR(3)         NOT NULL,
    payment_method      VARCHAR(16)     NOT NULL,
    card_no_encrypted   VARBINARY(64)   NULL,
    card_last4          CHAR(4)         NULL,
    card_brand          VARCHAR(16)     NULL,
    card_fingerprint    CHAR(64)        NULL,
    card_expiry         DATE            NULL,
    card_cvc_encrypted  VARBINARY(64)   NULL,
    status              VARCHAR(16)     NOT NULL,
    description         VARCHAR(255)    NULL,
    created_at          DATETIME        NOT NULL,
    updated_at          DATETIME        NOT NULL,
    PRIMARY KEY (id),
    KEY payments_user_id (user_id, id),
    KEY payments_status (status, id),
    KEY payments_card_fingerprint (card_fingerprint, id),
    -- Payments are financial records: a user who has any cannot be deleted.
    CONSTRAINT payments_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE RESTRICT
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Idempotency-Key records, so that a retried POST is answered, not repeated, across
-- workers and restarts. `key_hash` is an HMAC of the endpoint and key, and `request_hash` an
-- HMAC of the body, each under a key derived from the fingerprint key: no card data is stored
-- here, and none can be recovered from it, even from a key a client filled with card data.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key_hash        BINARY(32)      NOT NULL,
    request_hash    BINARY(32)      NOT NULL,
    response_status SMALLINT        NULL,
    response_body   MEDIUMTEXT      NULL,
    location        VARCHAR(255)    NULL,
    created_at      DATETIME        NOT NULL,
    PRIMARY KEY (key_hash),
    KEY idempotency_keys_created_at (created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- A check value (an HMAC of a fixed label under the key) of every card key the data here was
-- written with, by variable and version (0 for the fingerprint key). The API refuses to serve with
-- keys whose check values differ, so a server started with another .env cannot write card data
-- that the first keys cannot decrypt, or fingerprint the same card differently. It reveals
-- nothing about the keys.
CREATE TABLE IF NOT EXISTS card_key_checks (
    variable        VARCHAR(32)      NOT NULL,
    version         TINYINT UNSIGNED NOT NULL,
    check_value     BINARY(32)       NOT NULL,
    created_at      DATETIME         NOT NULL,
    PRIMARY KEY (variable, version)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- API keys for the operator's back-end services. Only a SHA-256 of each key is stored; the key
-- itself is shown once, when it is made. Rows are never deleted (a key is revoked instead), so an
-- empty table means a new database. `scopes` is space-separated; `last_used_at` is to the minute.
CREATE TABLE IF NOT EXISTS api_keys (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    name            VARCHAR(100)    NOT NULL,
    prefix          VARCHAR(32)     NOT NULL,
    key_hash        BINARY(32)      NOT NULL,
    scopes          VARCHAR(255)    NOT NULL,
    created_at      DATETIME        NOT NULL,
    last_used_at    DATETIME        NULL,
    expires_at      DATETIME        NULL,
    revoked_at      DATETIME        NULL,
    PRIMARY KEY (id),
    UNIQUE KEY api_keys_key_hash (key_hash)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- When each change of the stored data's format was first applied to this database. The API
-- reads these to know how long to keep understanding the format that came before.
CREATE TABLE IF NOT EXISTS schema_upgrades (
    name        VARCHAR(64)     NOT NULL,
    applied_at  DATETIME        NOT NULL,
    PRIMARY KEY (name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Idempotency-Key hashes became keyed (HMAC); plain SHA-256 ones are looked up for 24 hours more.
INSERT IGNORE INTO schema_upgrades (name, applied_at) VALUES ('keyed-idempotency-hashes', UTC_TIMESTAMP());

-- The history of every payment and user: one row per change, written in the change's transaction.
-- `data` is the object as the API returned it then (JSON: the card masked, never a CVC); `actor`
-- the credential that made the change (JSON). Append-only: the triggers below refuse UPDATE, and
-- DELETE except by `flask --app app purge-events`, which names the cutoff in @events_purge_before.
CREATE TABLE IF NOT EXISTS events (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    type        VARCHAR(40)     NOT NULL,
    object_type VARCHAR(16)     NOT NULL,
    object_id   BIGINT UNSIGNED NOT NULL,
    created_at  DATETIME        NOT NULL,
    actor       VARCHAR(255)    NOT NULL,
    request_id  VARCHAR(64)     NULL,
    data        TEXT            NOT NULL,
    PRIMARY KEY (id),
    KEY events_object (object_id, id),
    KEY events_type (type, id),
    KEY events_created_at (created_at, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TRIGGER IF NOT EXISTS events_refuse_update BEFORE UPDATE ON events FOR EACH ROW
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'events are append-only: UPDATE is refused';

DELIMITER $$
CREATE TRIGGER IF NOT EXISTS events_refuse_delete BEFORE DELETE ON events FOR EACH ROW
BEGIN
    IF @events_purge_before IS NULL OR OLD.created_at >= @events_purge_before THEN
        SIGNAL SQLSTATE '45000'
            SET MESSAGE_TEXT = 'events are append-only: DELETE is refused (purge old ones with flask --app app purge-events)';
    END IF;
END$$
DELIMITER ;

-- Where webhooks go. `secret` (and `previous_secret`, still signed with until it expires after a
-- rotation) is AES-256-GCM under WEBHOOK_SECRET_KEYS, since the worker reads it back to sign.
-- `event_types` is comma-separated, or `*` for every type. `failing_since` is when deliveries to
-- the endpoint started failing without a success since; past WEBHOOK_DISABLE_AFTER_DAYS the
-- worker disables it.
CREATE TABLE IF NOT EXISTS webhook_endpoints (
    id                          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    url                         VARCHAR(2048)   NOT NULL,
    description                 VARCHAR(255)    NULL,
    event_types                 VARCHAR(1024)   NOT NULL,
    enabled                     TINYINT(1)      NOT NULL,
    disabled_reason             VARCHAR(255)    NULL,
    secret                      VARBINARY(128)  NOT NULL,
    previous_secret             VARBINARY(128)  NULL,
    previous_secret_expires_at  DATETIME        NULL,
    failing_since               DATETIME        NULL,
    created_at                  DATETIME        NOT NULL,
    updated_at                  DATETIME        NOT NULL,
    PRIMARY KEY (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- The transactional outbox: one row per event and endpoint, written by the trigger below in the
-- event's own transaction, so a delivery exists exactly when its change committed. The worker
-- claims due rows with FOR UPDATE SKIP LOCKED and leases them by moving `next_attempt_at` past the
-- lease (`leased_by` says who); a worker that dies leaves the row due again when the lease ends.
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id               BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    event_id         BIGINT UNSIGNED NOT NULL,
    endpoint_id      BIGINT UNSIGNED NOT NULL,
    status           VARCHAR(16)     NOT NULL,
    attempts         INT UNSIGNED    NOT NULL DEFAULT 0,
    next_attempt_at  DATETIME(3)     NOT NULL,
    leased_by        VARCHAR(64)     NULL,
    created_at       DATETIME(3)     NOT NULL,
    finished_at      DATETIME(3)     NULL,
    PRIMARY KEY (id),
    KEY webhook_deliveries_due (status, next_attempt_at),
    KEY webhook_deliveries_endpoint (endpoint_id, id),
    KEY webhook_deliveries_event (event_id, endpoint_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Every attempt to send a delivery: when, the response's status code (NULL when none came) and
-- what went wrong, in words that never quote the response body.
CREATE TABLE IF NOT EXISTS webhook_attempts (
    id            BIGINT UNSIGNED   NOT NULL AUTO_INCREMENT,
    delivery_id   BIGINT UNSIGNED   NOT NULL,
    attempted_at  DATETIME(3)       NOT NULL,
    status_code   SMALLINT UNSIGNED NULL,
    error         VARCHAR(255)      NULL,
    duration_ms   INT UNSIGNED      NOT NULL,
    PRIMARY KEY (id),
    KEY webhook_attempts_delivery (delivery_id, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Fan an event out to every enabled endpoint subscribed to its type, in the event's transaction
-- and with no round trip of its own. Pings go only to the endpoint they test (written by the API).
CREATE TRIGGER IF NOT EXISTS events_queue_webhooks AFTER INSERT ON events FOR EACH ROW
    INSERT INTO webhook_deliveries (event_id, endpoint_id, status, next_attempt_at, created_at)
    SELECT NEW.id, webhook_endpoints.id, 'pending', UTC_TIMESTAMP(3), UTC_TIMESTAMP(3)
    FROM webhook_endpoints
    WHERE NEW.type <> 'ping' AND webhook_endpoints.enabled = 1
      AND (webhook_endpoints.event_types = '*' OR FIND_IN_SET(NEW.type, webhook_endpoints.event_types) > 0);
