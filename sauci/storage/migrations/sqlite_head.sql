-- The head schema of a new SQLite store, as the migrations make it: written by
-- sauci.storage.migrations.sqlite_head.write_head(); do not edit by hand.

CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL,
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);

CREATE TABLE builds (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	repo TEXT NOT NULL,
	ref TEXT DEFAULT '' NOT NULL,
	sha TEXT DEFAULT '' NOT NULL,
	event TEXT DEFAULT 'manual' NOT NULL,
	status TEXT NOT NULL,
	reason TEXT,
	priority INTEGER DEFAULT '0' NOT NULL,
	params TEXT DEFAULT '{}' NOT NULL,
	author TEXT DEFAULT '' NOT NULL,
	message TEXT DEFAULT '' NOT NULL,
	pusher TEXT DEFAULT '' NOT NULL,
	old_sha TEXT DEFAULT '' NOT NULL,
	queued_at DOUBLE NOT NULL,
	started_at DOUBLE,
	finished_at DOUBLE,
	claimed_by TEXT
, reuse_from INTEGER, cancel_requested TEXT, runs_on TEXT DEFAULT '[]' NOT NULL, attempt INTEGER DEFAULT '1' NOT NULL, heartbeat_at DOUBLE, uuid TEXT DEFAULT '' NOT NULL);

CREATE TABLE steps (
	build_id INTEGER NOT NULL,
	name TEXT NOT NULL,
	position INTEGER DEFAULT '0' NOT NULL,
	status TEXT NOT NULL,
	reason TEXT,
	ended_by TEXT,
	exit_code INTEGER,
	signal INTEGER,
	attempt INTEGER DEFAULT '0' NOT NULL,
	allow_failure BOOLEAN DEFAULT 0 NOT NULL,
	needs TEXT DEFAULT '[]' NOT NULL,
	started_at DOUBLE,
	finished_at DOUBLE,
	log_bytes BIGINT DEFAULT '0' NOT NULL,
	log_path TEXT,
	CONSTRAINT pk_steps PRIMARY KEY (build_id, name),
	CONSTRAINT fk_steps_build_id_builds FOREIGN KEY(build_id) REFERENCES builds (id) ON DELETE CASCADE
);

CREATE TABLE log_chunks (
	build_id INTEGER NOT NULL,
	step TEXT NOT NULL,
	seq INTEGER NOT NULL,
	"offset" BIGINT NOT NULL,
	size INTEGER NOT NULL,
	data BLOB NOT NULL,
	CONSTRAINT pk_log_chunks PRIMARY KEY (build_id, step, seq),
	CONSTRAINT fk_log_chunks_build_id_builds FOREIGN KEY(build_id) REFERENCES builds (id) ON DELETE CASCADE
);

CREATE TABLE test_results (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	build_id INTEGER NOT NULL,
	step TEXT NOT NULL,
	name TEXT NOT NULL,
	classname TEXT DEFAULT '' NOT NULL,
	status TEXT NOT NULL,
	duration DOUBLE DEFAULT '0' NOT NULL,
	message TEXT DEFAULT '' NOT NULL,
	text TEXT DEFAULT '' NOT NULL,
	file TEXT DEFAULT '' NOT NULL,
	CONSTRAINT fk_test_results_build_id_builds FOREIGN KEY(build_id) REFERENCES builds (id) ON DELETE CASCADE
);

CREATE TABLE artifacts (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	build_id INTEGER NOT NULL,
	step TEXT NOT NULL,
	path TEXT NOT NULL,
	size BIGINT NOT NULL,
	sha256 TEXT DEFAULT '' NOT NULL,
	CONSTRAINT fk_artifacts_build_id_builds FOREIGN KEY(build_id) REFERENCES builds (id) ON DELETE CASCADE
);

CREATE TABLE events (
	id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
	kind TEXT NOT NULL,
	at DOUBLE NOT NULL,
	build_id INTEGER,
	actor TEXT DEFAULT '' NOT NULL,
	data TEXT DEFAULT '{}' NOT NULL
);

CREATE TABLE repos (
	id TEXT NOT NULL,
	location TEXT NOT NULL,
	hook TEXT DEFAULT 'none' NOT NULL,
	poll_interval DOUBLE,
	added_at DOUBLE NOT NULL,
	CONSTRAINT pk_repos PRIMARY KEY (id)
);

CREATE TABLE deliveries (
	id TEXT NOT NULL,
	at DOUBLE NOT NULL,
	CONSTRAINT pk_deliveries PRIMARY KEY (id)
);

CREATE TABLE workers (
	name TEXT NOT NULL,
	host TEXT DEFAULT '' NOT NULL,
	labels TEXT DEFAULT '[]' NOT NULL,
	slots INTEGER DEFAULT '1' NOT NULL,
	running TEXT DEFAULT '[]' NOT NULL,
	started_at DOUBLE DEFAULT '0' NOT NULL,
	heartbeat_at DOUBLE DEFAULT '0' NOT NULL,
	state TEXT DEFAULT 'online' NOT NULL, cpus DOUBLE DEFAULT '0' NOT NULL, memory BIGINT DEFAULT '0' NOT NULL,
	CONSTRAINT pk_workers PRIMARY KEY (name)
);

CREATE TABLE log_files (
	build_id INTEGER NOT NULL,
	step TEXT NOT NULL,
	path TEXT NOT NULL,
	start BIGINT DEFAULT '0' NOT NULL,
	size BIGINT DEFAULT '0' NOT NULL,
	CONSTRAINT pk_log_files PRIMARY KEY (build_id, step),
	CONSTRAINT fk_log_files_build_id_builds FOREIGN KEY(build_id) REFERENCES builds (id) ON DELETE CASCADE
);

CREATE VIRTUAL TABLE builds_search USING fts5(message, author, ref, sha, content='builds', content_rowid='id', tokenize='trigram');

CREATE INDEX ix_builds_repo_id ON builds (repo, id);

CREATE INDEX ix_builds_status_priority_id ON builds (status, priority DESC, id);

CREATE INDEX ix_builds_ref ON builds (ref);

CREATE INDEX ix_steps_build_id_position ON steps (build_id, position);

CREATE UNIQUE INDEX ix_log_chunks_build_id_step_offset ON log_chunks (build_id, step, "offset");

CREATE INDEX ix_test_results_build_id_id ON test_results (build_id, id);

CREATE INDEX ix_artifacts_build_id_id ON artifacts (build_id, id);

CREATE INDEX ix_events_build_id_id ON events (build_id, id);

CREATE INDEX ix_test_results_build_id_status_id ON test_results (build_id, status, id);

CREATE INDEX ix_builds_repo_status_times ON builds (repo, status, started_at, finished_at);

CREATE TRIGGER builds_search_ai AFTER INSERT ON builds BEGIN INSERT INTO builds_search (rowid, message, author, ref, sha) VALUES (new.id, new.message, new.author, new.ref, new.sha); END;

CREATE TRIGGER builds_search_ad AFTER DELETE ON builds BEGIN INSERT INTO builds_search (builds_search, rowid, message, author, ref, sha) VALUES ('delete', old.id, old.message, old.author, old.ref, old.sha); END;

CREATE TRIGGER builds_search_au AFTER UPDATE OF message, author, ref, sha ON builds BEGIN INSERT INTO builds_search (builds_search, rowid, message, author, ref, sha) VALUES ('delete', old.id, old.message, old.author, old.ref, old.sha); INSERT INTO builds_search (rowid, message, author, ref, sha) VALUES (new.id, new.message, new.author, new.ref, new.sha); END;

INSERT INTO alembic_version (version_num) VALUES ('0007');
