-- Room on each page of `files` for the updates that change no indexed column (a
-- completion's claim, its lease's extension, an ingest's lease): with it such an update
-- stays on its page as a heap-only tuple and writes none of the table's indexes;
-- without it a freshly filled page has no room and every claim writes a new tuple into
-- each of them. Pages written from now on keep 15% free (existing pages keep theirs
-- until rewritten).
ALTER TABLE files SET (fillfactor = 85);
