-- The schema of codensm-server before PRAGMA user_version (version 0), as
-- tools/server/store.c created it at commit f84394a: the migration tests
-- build an old database from it.
CREATE TABLE IF NOT EXISTS projects( id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, plan TEXT NOT NULL, ingest_hash BLOB NOT NULL, dashboard_hash BLOB NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS functions( id INTEGER PRIMARY KEY, project INTEGER NOT NULL, name TEXT NOT NULL, department TEXT NOT NULL, value_weight REAL NOT NULL, file TEXT, line INTEGER, first_seen REAL, last_seen REAL, in_inventory INTEGER NOT NULL DEFAULT 0, calls_total INTEGER NOT NULL DEFAULT 0, UNIQUE(project, name));
CREATE TABLE IF NOT EXISTS buckets( project INTEGER NOT NULL, bucket_start INTEGER NOT NULL, function INTEGER NOT NULL, calls INTEGER NOT NULL, errors INTEGER NOT NULL, total_ms REAL NOT NULL, self_ms REAL NOT NULL, max_ms REAL NOT NULL, value REAL NOT NULL, estimated INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(project, bucket_start, function)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS buckets_by_function ON buckets(project, function, bucket_start);
CREATE TABLE IF NOT EXISTS hist( project INTEGER NOT NULL, bucket_start INTEGER NOT NULL, function INTEGER NOT NULL, b INTEGER NOT NULL, count INTEGER NOT NULL, PRIMARY KEY(project, bucket_start, function, b)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS hist_by_function ON hist(project, function, bucket_start);
CREATE TABLE IF NOT EXISTS edges( project INTEGER NOT NULL, bucket_start INTEGER NOT NULL, caller TEXT NOT NULL, callee TEXT NOT NULL, calls INTEGER NOT NULL, PRIMARY KEY(project, bucket_start, caller, callee)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS incidents( id INTEGER PRIMARY KEY, project INTEGER NOT NULL, chain_hash BLOB NOT NULL, kind TEXT NOT NULL, signal INTEGER NOT NULL, chain TEXT NOT NULL, function TEXT NOT NULL, count INTEGER NOT NULL, first_seen REAL NOT NULL, last_seen REAL NOT NULL, UNIQUE(project, chain_hash));
CREATE INDEX IF NOT EXISTS incidents_by_time ON incidents(project, last_seen);
CREATE TABLE IF NOT EXISTS batches( project INTEGER NOT NULL, batch_id TEXT NOT NULL, received_at REAL NOT NULL, PRIMARY KEY(project, batch_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS usage( project INTEGER NOT NULL, month TEXT NOT NULL, calls INTEGER NOT NULL, overage INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(project, month)) WITHOUT ROWID;

