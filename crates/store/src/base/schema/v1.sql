-- Version 1: the station's first schema. Frozen: later versions add migrations, never edit.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- Official administrative units (reference data from the provincial server).
CREATE TABLE units (
    code        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    unit_type   TEXT NOT NULL,
    parent_code TEXT REFERENCES units(code),
    latitude    REAL,
    longitude   REAL,
    area_km2    REAL
) STRICT;
CREATE INDEX units_parent ON units(parent_code);

CREATE TABLE officers (
    id         TEXT PRIMARY KEY,
    unit_code  TEXT NOT NULL REFERENCES units(code),
    full_name  TEXT NOT NULL,
    rank       TEXT,
    phone      TEXT,
    active     INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

CREATE TABLE hamlets (
    id          TEXT PRIMARY KEY,
    unit_code   TEXT NOT NULL REFERENCES units(code),
    kind        TEXT NOT NULL CHECK (kind IN ('thon','buon','lang','ban','ap','to_dan_pho')),
    name        TEXT NOT NULL,
    name_key    TEXT NOT NULL, -- text::identity_key(name): one hamlet, one key
    households  INTEGER CHECK (households >= 0),
    population  INTEGER CHECK (population >= 0),
    remote      INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    UNIQUE (unit_code, name_key)
) STRICT;

CREATE TABLE roster_people (
    id          TEXT PRIMARY KEY,
    unit_code   TEXT NOT NULL REFERENCES units(code),
    hamlet_id   TEXT REFERENCES hamlets(id),
    full_name   TEXT NOT NULL,
    name_key    TEXT NOT NULL, -- text::identity_key(full_name)
    role        TEXT NOT NULL,
    phone       TEXT,
    note        TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;
CREATE INDEX roster_people_hamlet ON roster_people(hamlet_id, name_key);

CREATE TABLE online_groups (
    id              TEXT PRIMARY KEY,
    hamlet_id       TEXT NOT NULL REFERENCES hamlets(id),
    platform        TEXT NOT NULL,
    name            TEXT NOT NULL,
    url             TEXT,
    admin_person_id TEXT REFERENCES roster_people(id),
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
) STRICT;

CREATE TABLE group_member_counts (
    id         TEXT PRIMARY KEY,
    group_id   TEXT NOT NULL REFERENCES online_groups(id),
    counted_on TEXT NOT NULL,
    members    INTEGER NOT NULL CHECK (members >= 0),
    UNIQUE (group_id, counted_on)
) STRICT;

-- The unit's own pages and accounts on social networks.
CREATE TABLE channels (
    id         TEXT PRIMARY KEY,
    unit_code  TEXT NOT NULL REFERENCES units(code),
    platform   TEXT NOT NULL,
    name       TEXT NOT NULL,
    url        TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

CREATE TABLE channel_metrics (
    id                 TEXT PRIMARY KEY,
    channel_id         TEXT NOT NULL REFERENCES channels(id),
    recorded_on        TEXT NOT NULL,
    followers          INTEGER NOT NULL CHECK (followers >= 0),
    posts              INTEGER NOT NULL CHECK (posts >= 0),
    views              INTEGER NOT NULL CHECK (views >= 0),
    questions_answered INTEGER NOT NULL CHECK (questions_answered >= 0),
    UNIQUE (channel_id, recorded_on)
) STRICT;

CREATE TABLE tips (
    id              TEXT PRIMARY KEY,
    unit_code       TEXT NOT NULL REFERENCES units(code),
    register_no     TEXT NOT NULL,
    register_year   INTEGER NOT NULL,
    register_device INTEGER NOT NULL,
    register_seq    INTEGER NOT NULL,
    received_at     TEXT NOT NULL,
    category        TEXT NOT NULL CHECK (category IN ('crime_denunciation','crime_report','security_order','admin_question','ordnance','misinformation','other')),
    channel         TEXT NOT NULL CHECK (channel IN ('in_person','phone','zalo','facebook','vneid','letter','hotline','other')),
    status          TEXT NOT NULL CHECK (status IN ('received','verifying','transferred','resolved','closed','rejected')),
    urgency         TEXT NOT NULL CHECK (urgency IN ('normal','urgent','critical')),
    content         TEXT NOT NULL CHECK (length(content) > 0),
    hamlet_id       TEXT REFERENCES hamlets(id),
    address         TEXT,
    latitude        REAL,
    longitude       REAL,
    received_by     TEXT REFERENCES officers(id),
    assigned_to     TEXT REFERENCES officers(id),
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (unit_code, register_year, register_device, register_seq),
    UNIQUE (unit_code, register_no)
) STRICT;
CREATE INDEX tips_received ON tips(received_at);
CREATE INDEX tips_status ON tips(status, received_at);
CREATE INDEX tips_category ON tips(category, received_at);

-- Reporter identity, kept apart from the tip so that it can be withheld, encrypted under
-- its own key and left out of what travels.
CREATE TABLE tip_reporters (
    tip_id     TEXT PRIMARY KEY REFERENCES tips(id),
    name       TEXT,
    phone      TEXT,
    id_number  TEXT,
    address    TEXT,
    secret     INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE tip_actions (
    id          TEXT PRIMARY KEY,
    tip_id      TEXT NOT NULL REFERENCES tips(id),
    at          TEXT NOT NULL,
    kind        TEXT NOT NULL,
    from_status TEXT,
    to_status   TEXT,
    note        TEXT,
    officer_id  TEXT REFERENCES officers(id)
) STRICT;
CREATE INDEX tip_actions_tip ON tip_actions(tip_id, at);

-- Register numbers: the last number one laptop (device) handed out in a unit and year.
CREATE TABLE register_counters (
    unit_code TEXT NOT NULL,
    year      INTEGER NOT NULL,
    device_no INTEGER NOT NULL,
    last_seq  INTEGER NOT NULL,
    PRIMARY KEY (unit_code, year, device_no)
) STRICT;

-- The outbox: one row per create, update or delete, written in the same transaction.
CREATE TABLE changes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    change_id  TEXT NOT NULL UNIQUE,
    hlc        TEXT NOT NULL,
    entity     TEXT NOT NULL,
    entity_id  TEXT NOT NULL,
    op         TEXT NOT NULL CHECK (op IN ('insert','update','delete')),
    data       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    acked_at   TEXT
) STRICT;
CREATE INDEX changes_pending ON changes(seq) WHERE acked_at IS NULL;
CREATE INDEX changes_entity ON changes(entity, entity_id);

-- Search: folded text (no diacritics, đ → d), one document per tip, hamlet, person, unit.
CREATE TABLE search_docs (
    doc    INTEGER PRIMARY KEY,
    kind   TEXT NOT NULL,
    ref_id TEXT NOT NULL,
    label  TEXT NOT NULL,
    detail TEXT NOT NULL,
    UNIQUE (kind, ref_id)
) STRICT;
CREATE VIRTUAL TABLE search_fts USING fts5(title, body, tokenize = 'unicode61 remove_diacritics 2');
