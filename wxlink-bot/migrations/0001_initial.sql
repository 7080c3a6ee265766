-- The PostgreSQL store's first schema: the same records as the SQLite store,
-- plus the runners that share the accounts. Times are milliseconds since the
-- Unix epoch, given by the runners; message ids are 64-bit unsigned values
-- stored bit-cast in bigint.

-- One row per account: its lease (owner, epoch, expiry), its cursor, the
-- counters that number its journal and id window, its push budget and its
-- throttle state. Every fenced write locks this row first.
CREATE TABLE wxlink_accounts (
    account         text PRIMARY KEY,
    owner           text,
    epoch           bigint  NOT NULL DEFAULT 0,
    expires_at      bigint  NOT NULL DEFAULT 0,
    cursor          text,
    next_key        bigint  NOT NULL DEFAULT 0,
    next_seen       bigint  NOT NULL DEFAULT 0,
    push_started    bigint  NOT NULL DEFAULT 0,
    push_used       bigint  NOT NULL DEFAULT 0,
    throttle_since  bigint,
    throttle_probe  bigint,
    throttle_failed bigint,
    -- The account file (bot token, base URL) that `wxlink accounts add`
    -- stored, as JSON; NULL for an account only a runtime registered.
    credentials     text
);

-- Claims look for free or expired leases.
CREATE INDEX wxlink_accounts_by_expiry ON wxlink_accounts (expires_at);

-- Inbound messages not acknowledged yet.
CREATE TABLE wxlink_journal (
    account     text    NOT NULL REFERENCES wxlink_accounts ON DELETE CASCADE,
    key         bigint  NOT NULL,
    message_id  bigint,
    sender      text    NOT NULL,
    json        text    NOT NULL,
    received_at bigint  NOT NULL,
    attempts    bigint  NOT NULL DEFAULT 0,
    last_error  text,
    replies     bigint[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (account, key)
);

-- Messages that failed too often; they keep their journal key.
CREATE TABLE wxlink_dead_letters (
    account     text    NOT NULL REFERENCES wxlink_accounts ON DELETE CASCADE,
    key         bigint  NOT NULL,
    message_id  bigint,
    sender      text    NOT NULL,
    json        text    NOT NULL,
    received_at bigint  NOT NULL,
    failed_at   bigint  NOT NULL,
    attempts    bigint  NOT NULL,
    last_error  text    NOT NULL,
    PRIMARY KEY (account, key)
);

-- The de-duplication window: the newest message ids per account, numbered
-- by arrival so that the oldest can be dropped.
CREATE TABLE wxlink_seen_ids (
    account text   NOT NULL REFERENCES wxlink_accounts ON DELETE CASCADE,
    id      bigint NOT NULL,
    seq     bigint NOT NULL,
    PRIMARY KEY (account, id)
);
CREATE INDEX wxlink_seen_ids_by_seq ON wxlink_seen_ids (account, seq);

-- The newest context token per user.
CREATE TABLE wxlink_contexts (
    account text   NOT NULL REFERENCES wxlink_accounts ON DELETE CASCADE,
    user_id text   NOT NULL,
    token   text   NOT NULL,
    seen_at bigint NOT NULL,
    PRIMARY KEY (account, user_id)
);

-- Replies sent to a user since their latest inbound message.
CREATE TABLE wxlink_replies (
    account text    NOT NULL REFERENCES wxlink_accounts ON DELETE CASCADE,
    user_id text    NOT NULL,
    used    bigint  NOT NULL,
    PRIMARY KEY (account, user_id)
);

-- Runner processes and their heartbeats: the live ones divide the accounts
-- among themselves.
CREATE TABLE wxlink_runners (
    owner        text   PRIMARY KEY,
    started_at   bigint NOT NULL,
    heartbeat_at bigint NOT NULL
);
