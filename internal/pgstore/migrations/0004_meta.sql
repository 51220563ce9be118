-- What the database was last opened with: the reminder policy its due_at
-- column was computed under (response times, update cadences, the merge
-- grace). A start under another policy computes due_at again.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
