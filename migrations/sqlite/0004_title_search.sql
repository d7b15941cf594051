-- Trigram index of the lower-cased titles, for ListIncidents' query filter
-- (a substring of 3 characters or more). Case-sensitive on purpose: both the
-- titles and the queries are already folded (Rust's Unicode lower-casing), so
-- a match is exactly what instr() on title_key would find. The row id is the
-- incident's number, which VACUUM (and so `incidentd backup`) never renumbers.
CREATE VIRTUAL TABLE incidents_title_search USING fts5(title_key, tokenize = 'trigram case_sensitive 1');
INSERT INTO incidents_title_search (rowid, title_key) SELECT number, title_key FROM incidents;
