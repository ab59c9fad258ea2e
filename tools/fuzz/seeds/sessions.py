"""Seeds for the session and blob fuzzers from real sessions: each session compacted (checkpointed,
rollback journal, vacuumed), a few with cells of the wrong type (the crash class of issue 12), and
every distinct packed blob with its decoder's selector byte (tools/fuzz/Harness/BlobTarget.swift).
Usage: sessions.py SESSION_OUT BLOB_OUT SESSION..."""
import os
import shutil
import sqlite3
import sys

BLOBS = [  # (selector, query)
    (0, "SELECT data FROM live_chunks"),
    (1, "SELECT history_blob FROM intervals"),
    (2, "SELECT outstanding_blob FROM intervals"),
    (3, "SELECT lifetimes_blob FROM stack_totals"),
    (4, "SELECT lines_blob FROM locations"),
    (5, "SELECT data FROM stack_tree WHERE first = 1"),
]

WRONG_TYPES = [
    ("counter-text", "UPDATE counters SET value = 'abc'"),
    ("totals-blob", "UPDATE stack_totals SET bytes = X'0102'"),
    ("live-text", "UPDATE live_chunks SET data = 'not a blob'"),
    ("meta-blob", "UPDATE meta SET value = X'00ff' WHERE key = (SELECT min(key) FROM meta)"),
]


def compact(src, dst, edit=None):
    for suffix in ("", "-wal"):
        if os.path.exists(src + suffix):
            shutil.copy(src + suffix, dst + suffix)
    db = sqlite3.connect(dst)
    db.execute("PRAGMA journal_mode = DELETE")
    if edit:
        db.execute(edit)
        db.commit()
    # Small pages make a small file: the fuzzer mutates and rewrites every byte of it each run.
    db.execute("PRAGMA page_size = 512")
    db.execute("VACUUM")
    db.close()


def main():
    session_out, blob_out, sessions = sys.argv[1], sys.argv[2], sys.argv[3:]
    seen = set()
    for path in sessions:
        name = os.path.splitext(os.path.basename(path))[0]
        compact(path, os.path.join(session_out, name))
        for tag, edit in WRONG_TYPES if name == "demo" else []:
            compact(path, os.path.join(session_out, f"{name}-{tag}"), edit)
        db = sqlite3.connect(path)
        for selector, query in BLOBS:
            rows = [r[0] for r in db.execute(query) if r[0] is not None]
            for blob in rows[:24]:
                data = bytes([selector]) + bytes(blob)
                if data in seen or len(data) > 4096:
                    continue
                seen.add(data)
                with open(os.path.join(blob_out, f"{name}-{selector}-{len(seen)}"), "wb") as f:
                    f.write(data)
        db.close()


main()
