"""The kernel-mode session seed: a real `leakcollect --kernel --comm` session plus one plausible row in
each OOM and reclaim table (a test machine rarely has an OOM kill to record), compacted like the
others. Usage: kernel-session.py SESSION OUT"""
import os
import shutil
import sqlite3
import sys

src, dst = sys.argv[1], sys.argv[2]
for suffix in ("", "-wal"):
    if os.path.exists(src + suffix):
        shutil.copy(src + suffix, dst + suffix)
db = sqlite3.connect(dst)
db.execute("PRAGMA journal_mode = DELETE")
db.executescript("""
INSERT INTO oom_events VALUES (5000000000, 1700000000000000000, 4242, 4242, 'hog', 1000, 1200000, 1000000, 4000, 0, 2300,
    0, 1, '/system.slice/leaktest', 1073741824, 1073700000, 4242, 'hog', '{"MemFree": 1000, "MemAvailable": 2000}',
    '0.50 0.40 0.30 2/100 4242', 3, 1);
INSERT INTO oom_reaper VALUES (5000100000, 4242, 'wake'), (5000200000, 4242, 'finish');
INSERT OR REPLACE INTO reclaim_totals VALUES ('direct', 3, 4500000, 2000000, 96), ('memcg', 1, 100, 100, 1);
INSERT INTO reclaim_histogram VALUES ('direct', 20, 2), ('direct', 21, 1), ('memcg', -1, 1);
INSERT INTO reclaim_stallers VALUES ('direct', 4242, 'hog', 3, 4500000, 2000000);
INSERT INTO kswapd VALUES (0, 5, 4);
INSERT INTO shrinkers VALUES ('super_cache_scan', 2, 30000, 20000, 128);
""")
db.commit()
db.execute("PRAGMA page_size = 512")
db.execute("VACUUM")
db.close()
