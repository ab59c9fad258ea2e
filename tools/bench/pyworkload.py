"""The CPython workload of the benchmark: stdlib-heavy work (json, re, hashlib, collections) over N
records, deterministic, printing a digest of what it computed so runs can be compared byte for byte.
Usage: python3.11 pyworkload.py [records]  (default 60000)."""
import collections
import hashlib
import json
import re
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 60000
records = [{"id": i, "user": "user%05d" % (i * 7919 % n), "email": "u%d@example.%s" % (i, ("org", "com", "net")[i % 3]),
            "tags": ["t%d" % (i % 13), "g%d" % (i % 7)], "score": (i * 2654435761) % 1000 / 10.0} for i in range(n)]
text = json.dumps(records)
back = json.loads(text)
email = re.compile(r"^u(\d+)@example\.(org|com|net)$")
by_domain = collections.Counter()
digest = hashlib.sha256()
for r in back:
    m = email.match(r["email"])
    by_domain[m.group(2)] += 1
    digest.update(hashlib.md5(r["user"].encode()).digest())
    digest.update(("%s:%.1f" % (",".join(r["tags"]), r["score"])).encode())
print(len(back), sorted(by_domain.items()), digest.hexdigest())
