"""``sync`` for unique indexes: the guard table, and guards for the items that already exist.

:meth:`GuardSync.check` runs before ``sync`` changes anything: it scans the model's table and
the guards, and raises ``SchemaMismatch`` when live items already share a unique value, so a
refused sync leaves tables, indexes and guards as they were. A guard naming an owner that no
longer holds its value (a bypassing tool changed the owner) is an orphan, not a clash: apply()
hands it to the item now holding the value. Every sync scans (a read of the whole table):
items written by a tool that bypasses the guards, or while the index was not declared, are
caught the next time the index is synced.
:meth:`GuardSync.apply` then creates ``<table>.unique`` (hash key ``guard``, billed like the
table), claims the guards that are missing (each claim
conditioned on the item still holding its value) and removes guards no live item holds, so
a sync whose guards are all in place writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import botocore.exceptions as bexc

from ...errors import ConfigError, SchemaMismatch
from ...ops import Op
from ..base import Action, SyncPlan
from .guards import GUARD, OF, OWNER, Guards, Value
from .planner.compiler import Context
from .transact import Unit, Write, run_one

if TYPE_CHECKING:
    from .sync import TableSync

MAX_TABLE_NAME = 255


#: guard key -> (index name, item key, unique value, item) of the live item that holds it.
Holders = dict[str, tuple[str, tuple[Any, ...], Value, dict[str, Any]]]


@dataclass
class GuardPlan:
    """What apply() starts from: whether the guard table exists, who holds which value, the stored
    guards, and those naming an owner that no longer holds their value (orphans, to replace)."""

    exists: bool
    holders: Holders = field(default_factory=dict)
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: guard key -> the owner item read back (None when gone), which no longer holds the value.
    orphans: dict[str, dict[str, Any] | None] = field(default_factory=dict)


class GuardSync:
    def __init__(self, table_sync: TableSync) -> None:
        self.ts = table_sync
        self.repo = table_sync.repo
        self.guards: Guards = self.repo.guards
        self.call = self.repo.backend.call_op
        self.table = self.guards.table

    # -- check (changes nothing) -----------------------------------------------------------------
    def check(self, fresh: bool) -> Op[GuardPlan | None]:
        if not self.guards:
            return None
        if len(self.table) > MAX_TABLE_NAME:
            raise ConfigError(f"The unique indexes of '{self.repo.spec.name}' need the guard table '{self.table}', "
                              f"longer than DynamoDB's {MAX_TABLE_NAME} characters; shorten the table name.")
        desc = yield from self.ts.describe(self.table)
        if desc is not None:
            types = {d["AttributeName"]: d["AttributeType"] for d in desc.get("AttributeDefinitions", [])}
            if desc.get("KeySchema") != [{"AttributeName": GUARD, "KeyType": "HASH"}] or types.get(GUARD) != "S":
                raise SchemaMismatch(f"The table '{self.table}' exists but is not a unique-guard table (hash key "
                                     f"'{GUARD}', a string); rename it: the unique indexes of '{self.repo.spec.name}' "
                                     "keep their guards there. Nothing was changed.")
        plan = GuardPlan(desc is not None, {} if fresh else (yield from self._holders()))
        if plan.exists and plan.holders:
            plan.stored = {g[GUARD]["S"]: g for g in (yield from self._scan(self.table))}
            yield from self._orphans(plan)
        return plan

    def _orphans(self, plan: GuardPlan) -> Op[None]:
        """Guards of held values that name another owner: orphans when that owner no longer holds the
        value (a tool changed it bypassing the guards), else a clash, refused before any change."""
        clashes: list[str] = []
        for g, (name, key, value, _) in plan.holders.items():
            have = plan.stored.get(g)
            if have is None or have.get(OWNER, {}).get("S") == self.guards.owner(key) or OF not in have:
                continue
            owner = (yield from self.call("get_item", TableName=self.repo.table, Key=have[OF]["M"],
                                          ConsistentRead=True)).get("Item")
            if self._holds(owner, g):
                other = self.repo.spec.key_of(self.repo._doc(owner)) if owner is not None else ()
                clashes.append(f"{self.guards.label(name, value)} is held by {self.repo.key_label(other)} (its guard) "
                               f"and {self.repo.key_label(key)}")
            else:
                plan.orphans[g] = owner
        if clashes:
            raise SchemaMismatch(f"Cannot enforce the unique indexes of '{self.repo.spec.name}': stored items "
                                 f"share values: {'; '.join(clashes[:10])}. Make the values unique first. "
                                 "Nothing was changed.")

    def _holds(self, item: dict[str, Any] | None, g: str) -> bool:
        """The item is live and holds the guarded value."""
        return item is not None and self.repo._live(self.repo._doc(item)) and any(
            self.guards.key(n, v) == g for n, v in self.guards.values(item).items())

    def _scan(self, table: str) -> Op[list[dict[str, Any]]]:
        items: list[dict[str, Any]] = []
        start: dict[str, Any] | None = None
        while True:
            kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
            if start:
                kwargs["ExclusiveStartKey"] = start
            resp = yield from self.call("scan", **kwargs)
            items += resp.get("Items", [])
            start = resp.get("LastEvaluatedKey")
            if not start:
                return items

    def _holders(self) -> Op[Holders]:
        """Who holds each unique value among live items; values held twice are refused."""
        spec, repo = self.repo.spec, self.repo
        out: Holders = {}
        clashes: list[str] = []
        for item in (yield from self._scan(repo.table)):
            doc = repo._doc(item)
            if not repo._live(doc):
                continue
            key = spec.key_of(doc)
            for name, value in self.guards.values(item).items():
                g = self.guards.key(name, value)
                held = out.get(g)
                if held is not None:
                    clashes.append(f"{self.guards.label(name, value)} is held by {repo.key_label(held[1])} and "
                                   f"{repo.key_label(key)}")
                else:
                    out[g] = (name, key, value, item)
        if clashes:
            shown = "; ".join(clashes[:10]) + (f"; ... ({len(clashes)} in all)" if len(clashes) > 10 else "")
            raise SchemaMismatch(f"Cannot enforce the unique indexes of '{spec.name}': stored items already share "
                                 f"values: {shown}. Make the values unique first. Nothing was changed.")
        return out

    # -- apply -------------------------------------------------------------------------------------
    def apply(self, plan: GuardPlan | None, sync_plan: SyncPlan | None = None) -> Op[list[Action]]:
        if plan is None:
            return []
        if sync_plan is not None and sync_plan.dry_run:
            return self._planned(plan, sync_plan)
        actions: list[Action] = []
        if not plan.exists:
            actions.append((yield from self._create()))
        stored = (plan.stored or {g[GUARD]["S"]: g for g in (yield from self._scan(self.table))}) if plan.exists else {}
        claimed = 0
        for g, (name, key, value, item) in plan.holders.items():
            have = stored.get(g)
            want_expiry = self.guards.expiry(item)
            if have is not None and have.get(OWNER, {}).get("S") == self.guards.owner(key) and \
                    self.guards.expiry(have) == want_expiry:
                continue
            if have is not None and g in plan.orphans:
                claimed += yield from self._replace(name, key, value, item, have, plan.orphans[g])
            else:
                claimed += yield from self._claim(name, key, value, item)
        removed = 0
        for g, guard in stored.items():
            if g not in plan.holders:
                removed += yield from self._remove_stale(g, guard)
        if claimed or removed or not plan.exists:
            names = ", ".join(ix.name for ix in self.guards.indexes)
            actions.append(Action("built unique guards", f"{self.repo.spec.name} ({names})",
                                  f"{claimed} claimed, {removed} stale removed"))
        return actions

    def _planned(self, plan: GuardPlan, sync_plan: SyncPlan) -> list[Action]:
        """What apply() would do, without a write (``odm sync --dry-run``)."""
        names = ", ".join(ix.name for ix in self.guards.indexes)
        if plan.exists:
            sync_plan.have("table exists", self.table, "unique guards for " + names)
        missing = sum(1 for g, (_, key, _, item) in plan.holders.items()
                      if (have := plan.stored.get(g)) is None or have.get(OWNER, {}).get("S") != self.guards.owner(key)
                      or self.guards.expiry(have) != self.guards.expiry(item))
        actions = [] if plan.exists else [Action("created table", self.table, "unique guards for " + names)]
        if missing or not plan.exists:
            actions.append(Action("built unique guards", f"{self.repo.spec.name} ({names})", f"{missing} to claim"))
        return actions

    def _create(self) -> Op[Action]:
        req: dict[str, Any] = {"TableName": self.table, "KeySchema": [{"AttributeName": GUARD, "KeyType": "HASH"}],
                               "AttributeDefinitions": [{"AttributeName": GUARD, "AttributeType": "S"}]}
        spec = self.repo.spec
        if self.ts.provisioned:
            req["BillingMode"] = "PROVISIONED"
            req["ProvisionedThroughput"] = {"ReadCapacityUnits": int(spec.read_capacity or 1),
                                            "WriteCapacityUnits": int(spec.write_capacity or 1)}
        else:
            req["BillingMode"] = "PAY_PER_REQUEST"
        try:
            yield from self.call("create_table", **req)
        except bexc.ClientError as exc:  # created concurrently
            if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
                raise
        yield from self.ts.wait(self.table)
        return Action("created table", self.table, "unique guards for " + ", ".join(ix.name for ix in self.guards.indexes))

    def _claim(self, name: str, key: tuple[Any, ...], value: Value, item: dict[str, Any]) -> Op[int]:
        """Claim the guard if the item still holds the value; another holder by now is a clash."""
        ctx = Context()
        check = {"TableName": self.repo.table, "Key": self.repo.key_av(key),
                 "ConditionExpression": self.guards.unchanged(ctx, self.repo.hash_name, item)[0], **ctx.attributes()}
        claim = self.guards.claim(name, value, key, self.guards.expiry(item))
        refusal = yield from run_one(self.repo.backend, Unit(key, [Write("ConditionCheck", check), claim]))
        if refusal is not None and refusal.write.role == "claim":
            raise SchemaMismatch(f"While building the guards of '{self.repo.spec.name}', "
                                 f"{self.guards.label(name, value)} was taken by another write; resolve the clash "
                                 "and run sync again.")
        # A failed item check: the item changed meanwhile, and the writer that changed it claimed its own guards.
        return int(refusal is None)

    def _replace(self, name: str, key: tuple[Any, ...], value: Value, item: dict[str, Any],
                 guard: dict[str, Any], owner: dict[str, Any] | None) -> Op[int]:
        """Hand an orphaned guard to the item that holds its value, in one transaction conditioned on
        the holder, the guard and its old owner all being as read (else another writer acted first)."""
        ctx = Context()
        holder = {"TableName": self.repo.table, "Key": self.repo.key_av(key),
                  "ConditionExpression": self.guards.unchanged(ctx, self.repo.hash_name, item)[0], **ctx.attributes()}
        ctx2 = Context()
        old = {"TableName": self.repo.table, "Key": guard[OF]["M"],
               "ConditionExpression": self.guards.unchanged(ctx2, self.repo.hash_name, owner)[0], **ctx2.attributes()}
        claim = self.guards.claim(name, value, key, self.guards.expiry(item))
        ctx3 = Context()
        claim.request = {**claim.request, "ConditionExpression": f"{ctx3.name(OWNER)} = {ctx3.value(guard[OWNER])}",
                         **ctx3.attributes()}
        refusal = yield from run_one(self.repo.backend, Unit(key, [Write("ConditionCheck", holder),
                                                                   Write("ConditionCheck", old, "owner"), claim]))
        if refusal is not None and refusal.write.role != "item":
            raise SchemaMismatch(f"While building the guards of '{self.repo.spec.name}', "
                                 f"{self.guards.label(name, value)} or the item its guard named changed; "
                                 "run sync again.")
        return int(refusal is None)

    def _remove_stale(self, g: str, guard: dict[str, Any]) -> Op[int]:
        """Delete a guard no live item holds (left by a dropped index or table, or a bypassing tool)."""
        if OF not in guard:
            return 0
        key_av = guard[OF]["M"]
        item = (yield from self.call("get_item", TableName=self.repo.table, Key=key_av, ConsistentRead=True)).get("Item")
        if item is not None and self.repo._live(self.repo._doc(item)) and any(
                self.guards.key(n, v) == g for n, v in self.guards.values(item).items()):
            return 0  # written after the scan: it is held
        ctx = Context()
        check = {"TableName": self.repo.table, "Key": key_av,
                 "ConditionExpression": self.guards.unchanged(ctx, self.repo.hash_name, item)[0], **ctx.attributes()}
        ctx2 = Context()
        drop = {"TableName": self.table, "Key": {GUARD: {"S": g}},
                "ConditionExpression": f"{ctx2.name(OWNER)} = {ctx2.value(guard[OWNER])}", **ctx2.attributes()}
        key = tuple(key_av.values())
        refusal = yield from run_one(self.repo.backend, Unit(key, [Write("ConditionCheck", check), Write("Delete", drop)]))
        return int(refusal is None)
