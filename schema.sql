-- registryd catalog schema: the single source of truth.
-- The daemon embeds this exact text (compiled in by Package.swift through the link
-- Sources/Registry/Catalog/schema.sql) and applies it to a new database in one IMMEDIATE
-- transaction. PRAGMA user_version records the schema version (the daemon reads it from the
-- last line below); a database from a newer registryd is refused, never altered. An older
-- catalog is brought up to date by the steps in Catalog.migrations, each in its own transaction
-- (a test proves that migrating the previous schema gives exactly this one).
-- Times are seconds since 1970 (REAL, UTC).

-- One row per model name ever seen under the model root.
CREATE TABLE models (
    name        TEXT PRIMARY KEY NOT NULL,
    created_at  REAL NOT NULL
) STRICT;

-- One row per (model, version). A version number is bound to one artifact (sha256) forever:
-- different bytes under a known number go to `quarantine`, never here.
CREATE TABLE versions (
    model             TEXT    NOT NULL REFERENCES models(name),
    version           INTEGER NOT NULL CHECK (version > 0),
    sha256            TEXT,                -- NULL until hashed
    size              INTEGER,
    path              TEXT    NOT NULL,
    mtime             REAL,
    state             TEXT    NOT NULL CHECK (state IN (
                          'discovered', 'verifying', 'loading', 'ready', 'candidate', 'live',
                          'shadow', 'retired', 'failed', 'quarantined', 'missing')),
    reason            TEXT    NOT NULL DEFAULT '',
    manifest          TEXT,                -- the manifest.json as read, if any
    signature_status  TEXT    NOT NULL DEFAULT 'unsigned'
                          CHECK (signature_status IN ('unsigned', 'valid', 'invalid')),
    signature_key     TEXT,                -- the trusted key's name when valid
    first_seen        REAL    NOT NULL,
    updated_at        REAL    NOT NULL,
    PRIMARY KEY (model, version)
) STRICT;
CREATE INDEX versions_by_sha256 ON versions(sha256);

-- Bytes found under a known version number that differ from its recorded artifact.
CREATE TABLE quarantine (
    id        INTEGER PRIMARY KEY,
    model     TEXT    NOT NULL,
    version   INTEGER NOT NULL,
    sha256    TEXT    NOT NULL,
    size      INTEGER NOT NULL,
    path      TEXT    NOT NULL,
    seen_at   REAL    NOT NULL,
    reason    TEXT    NOT NULL,
    FOREIGN KEY (model, version) REFERENCES versions(model, version)
) STRICT;

-- Named pointers to versions: 'production', 'candidate', and any user-defined name.
CREATE TABLE aliases (
    model       TEXT    NOT NULL,
    alias       TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    updated_at  REAL    NOT NULL,
    PRIMARY KEY (model, alias),
    FOREIGN KEY (model, version) REFERENCES versions(model, version)
) STRICT;

-- The traffic policy of a model beyond its production alias (weighted split, shadow), as JSON.
CREATE TABLE routes (
    model       TEXT PRIMARY KEY NOT NULL REFERENCES models(name),
    spec        TEXT NOT NULL,
    updated_at  REAL NOT NULL
) STRICT;

-- Gradual rollouts: their plan, current step and the statistics of the step's window.
CREATE TABLE rollouts (
    id          INTEGER PRIMARY KEY,
    model       TEXT    NOT NULL REFERENCES models(name),
    version     INTEGER NOT NULL,
    baseline    INTEGER NOT NULL,
    plan        TEXT    NOT NULL,          -- JSON: steps, interval, gates
    step        INTEGER NOT NULL DEFAULT 0,
    state       TEXT    NOT NULL,
    window      TEXT    NOT NULL DEFAULT '{}',
    started_at  REAL    NOT NULL,
    updated_at  REAL    NOT NULL,
    FOREIGN KEY (model, version) REFERENCES versions(model, version)
) STRICT;

-- The audit trail: every control action and automatic transition. Append-only (the triggers
-- refuse UPDATE and DELETE) and hash-chained: `hash` is the SHA-256 of the previous row's hash
-- and this row's fields, so an edited or deleted row breaks the chain.
CREATE TABLE events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         REAL    NOT NULL,
    actor      TEXT    NOT NULL,          -- 'registryd', or 'uid=1000 gid=1000 pid=4242'
    action     TEXT    NOT NULL,
    model      TEXT,
    version    INTEGER,
    before     TEXT,
    after      TEXT,
    reason     TEXT    NOT NULL DEFAULT '',
    prev_hash  TEXT    NOT NULL,
    hash       TEXT    NOT NULL
) STRICT;
CREATE INDEX events_by_model ON events(model, at);

-- Serving statistics per model version and minute, aggregated in memory by the serving path
-- and flushed here in batches (every stats_flush_seconds, and at shutdown), never per request.
-- Rows older than stats_retention_hours are deleted at each flush.
CREATE TABLE serving_stats (
    model     TEXT    NOT NULL,
    version   INTEGER NOT NULL,
    minute    INTEGER NOT NULL,          -- floor(seconds since 1970 / 60)
    requests  INTEGER NOT NULL,
    errors    INTEGER NOT NULL,
    seconds   REAL    NOT NULL,          -- summed latency
    buckets   TEXT    NOT NULL,          -- JSON array: latency histogram counts (ServingStats.bounds)
    PRIMARY KEY (model, version, minute)
) STRICT;

CREATE TRIGGER events_are_append_only_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER events_are_append_only_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;

PRAGMA user_version = 2;
