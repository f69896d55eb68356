from __future__ import annotations
import traceback
from typing import Any
import odm
from odm import Filter

NAMES = ["a'b", 'a"b', "a\\b", "a\x08", "a.b", "$x", "x$", "a[0]", "a b", "\x01ctl", "é", "𝄞", "e\u0301", "x"*300, "x"*70000, "", "a\x00b", "_id", "id", "#0", ":v", "a->b", "a}b", "a*b", "%", "a\\"]

def test_scratch(target: Any) -> None:
    reg = target.registry()
    backend = odm.Backend(target.name, reg.backend)
    repo = backend.define_repository("scr", {"hashKey": "email"})
    out = []
    for n in NAMES:
        res = []
        try:
            repo.save({"email": "1", n: "v"}); res.append("save1")
            repo.save({"email": "2", n + "x": "v"}); res.append("save2")
            g = repo.get_all({n: "v"}); res.append(f"get={[d['email'] for d in g]}")
            got = repo.get_one({"email": "1"}); res.append(f"roundtrip={n in got}")
            g = repo.get_all(Filter().match_any(n, ["v"])); res.append(f"any={[d['email'] for d in g]}")
            g = repo.get_all(Filter().match_pattern(n, "v")); res.append(f"pat={[d['email'] for d in g]}")
            g = repo.get_all(order=n); res.append(f"order={len(g)}")
            repo.save({n: "w"}, {n: "v"}); res.append(f"upd={repo.get_one({'email':'1'}).get(n)}")
            repo.save({n: None}, {"email": "1"}); res.append(f"unset={n in repo.get_one({'email':'1'})}")
            repo.save({n: "z"}, {"email": "1"})
            res.append(f"del={repo.delete_all({n: 'z'})}")
        except Exception as e:
            res.append(f"EXC {type(e).__name__}: {str(e)[:150]}")
        repo.delete_all()
        out.append(f"{n[:12]!r}: {' '.join(res)}")
    backend.shutdown()
    with open(f"/tmp/scr/{target.name}.txt", "w") as f:
        f.write("\n".join(out))
