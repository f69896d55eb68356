from __future__ import annotations
from typing import Any
import odm
from odm import Filter

KEYS = ["$x", "a.b", 'q"q', "a\\b", "a\x08", "\x01c", "é", "", "_id", "$where"]

def test_scratch(target: Any) -> None:
    reg = target.registry()
    backend = odm.Backend(target.name, reg.backend)
    repo = backend.define_repository("scr2", {"hashKey": "email"})
    out = []
    for k in KEYS:
        res = []
        try:
            repo.save({"email": "1", "m": {k: 1, "z": [ {k: 2} ]}}); res.append("save")
            res.append(f"rt={repo.get_one({'email': '1'})['m'] == {k: 1, 'z': [{k: 2}]}}")
            res.append(f"eq={len(repo.get_all({'m': {k: 1, 'z': [{k: 2}]}}))}")
            res.append(f"any={len(repo.get_all(Filter().match_any('m', [{k: 1, 'z': [{k: 2}]}, 5])))}")
            repo.save({"m": {k: 3}}, {"email": "1"}); res.append(f"upd={repo.get_one({'email': '1'})['m']}")
            repo.save({"m": {k: 4}}, {"m": {k: 3}}); res.append(f"upd2={repo.get_one({'email': '1'})['m']}")
        except Exception as e:
            res.append(f"EXC {type(e).__name__}: {str(e)[:200]}")
        repo.delete_all()
        out.append(f"{k!r}: {' '.join(res)}")
    backend.shutdown()
    with open(f"/tmp/scr/n_{target.name}.txt", "w") as f:
        f.write("\n".join(out))
