from __future__ import annotations
import datetime, decimal
from typing import Any
import odm
from odm import Filter

CASES = [
 ("save set", lambda r: r.save({"email": "x", "v": {"a", 2}})),
 ("save dt1", lambda r: r.save({"email": "x", "v": datetime.datetime(1,1,1)})),
 ("save dt1aware", lambda r: r.save({"email": "x", "v": datetime.datetime(1,1,1, tzinfo=datetime.timezone.utc)})),
 ("save dtmax", lambda r: r.save({"email": "x", "v": datetime.datetime(9999,12,31,23,59)})),
 ("save nul", lambda r: r.save({"email": "x", "v": "\x00nul"})),
 ("save sur", lambda r: r.save({"email": "x", "v": "\ud800"})),
 ("save time", lambda r: r.save({"email": "x", "v": datetime.time(1)})),
 ("get nan list", lambda r: r.get_all({"v": [float("nan")]})),
 ("get snan", lambda r: r.get_all({"v": decimal.Decimal("sNaN")})),
 ("get 2**70", lambda r: r.get_all({"v": 2**70})),
 ("get time", lambda r: r.get_all({"v": datetime.time(1)})),
 ("get object", lambda r: r.get_all({"v": object()})),
 ("get nul", lambda r: r.get_all({"v": "\x00"})),
 ("get sur", lambda r: r.get_all({"v": "\udc00"})),
 ("get sorting", lambda r: r.get_all(sorting=1)),
 ("match_any 5", lambda r: r.get_all(Filter().match_any("v", 5))),
 ("pattern nul", lambda r: r.get_all(Filter().match_pattern("v", "\x00%"))),
 ("get dt1", lambda r: r.get_all({"v": datetime.datetime(1,1,1)})),
 ("get set", lambda r: r.get_all({"v": {"a", 2}})),
 ("get 2**64 list", lambda r: r.get_all({"v": [2**64]})),
 ("get dict intkey", lambda r: r.get_all({"v": {1: 2}})),
 ("save dict intkey", lambda r: r.save({"email": "y", "v": {1: 2}})),
 ("notfound", lambda r: r.get_one({"email": "nope"})),
]

def test_scratch(target: Any) -> None:
    reg = target.registry()
    backend = odm.Backend(target.name, reg.backend)
    repo = backend.define_repository("scr3", {"hashKey": "email"})
    out = []
    for label, fn in CASES:
        try:
            res = fn(repo)
            out.append(f"{label}: OK {str(res)[:80]}")
        except Exception as e:
            out.append(f"{label}: {type(e).__name__}: {str(e)[:160]}")
        repo.delete_all()
    backend.shutdown()
    with open(f"/tmp/scr/v_{target.name}.txt", "w") as f:
        f.write("\n".join(out))
