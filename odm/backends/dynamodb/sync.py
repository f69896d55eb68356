"""Create and evolve DynamoDB tables from a TableSpec: keys, billing, GSIs, LSIs and TTL.

``sync`` is idempotent: it creates a missing table (on-demand billing unless
capacities are given), adds missing GSIs one UpdateTable at a time, enables
TTL, and waits for ACTIVE after each change. A different key schema (or a
changed index, or a new LSI, which DynamoDB cannot add later) raises
SchemaMismatch before anything is changed. Unique indexes get a guard table and
guards for existing items (``guard_sync``), refused before any change when items clash.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import botocore.exceptions as bexc

from ...errors import BackendUnavailable, SchemaMismatch
from ...expressions.nodes import Path
from ...ops import Op
from ...schema import SecondaryIndexSpec, TableSpec
from ..base import Action, SyncPlan
from .guard_sync import GuardSync
from .planner.compiler import all_secondary, key_type
from .retry import Sleep

if TYPE_CHECKING:
    from .repository import DynamoRepository

#: How long sync waits for a table or index to become ACTIVE.
WAIT_SECONDS = 300.0


def _key_schema(hash_key: Path, range_key: Path | None) -> list[dict[str, str]]:
    out = [{"AttributeName": hash_key.parts[0], "KeyType": "HASH"}]
    if range_key is not None:
        out.append({"AttributeName": range_key.parts[0], "KeyType": "RANGE"})
    return out


def _projection(sec: SecondaryIndexSpec) -> dict[str, Any]:
    if sec.projection == "ALL":
        return {"ProjectionType": "ALL"}
    if sec.projection == "KEYS_ONLY":
        return {"ProjectionType": "KEYS_ONLY"}
    return {"ProjectionType": "INCLUDE", "NonKeyAttributes": list(sec.projection)}


def _throughput(read: int | None, write: int | None) -> dict[str, int]:
    return {"ReadCapacityUnits": int(read or 1), "WriteCapacityUnits": int(write or 1)}


class TableSync:
    """What ``sync`` does for one repository."""

    def __init__(self, repo: DynamoRepository, plan: SyncPlan | None = None) -> None:
        self.repo = repo
        #: ``odm sync``'s plan: what exists is recorded there; a dry run only reads.
        self.plan = plan
        self.dry = plan is not None and plan.dry_run
        self.spec: TableSpec = repo.spec
        self.table = repo.table
        self.call = repo.backend.call_op
        self.provisioned = self.spec.read_capacity is not None or self.spec.write_capacity is not None

    # -- definitions ------------------------------------------------------------------------
    def attr_type(self, path: Path) -> str:
        return key_type(self.spec, path) or "S"

    def definitions(self, paths: list[Path]) -> list[dict[str, str]]:
        seen: dict[str, str] = {}
        for p in paths:
            seen.setdefault(p.parts[0], self.attr_type(p))
        return [{"AttributeName": n, "AttributeType": t} for n, t in seen.items()]

    def gsi_definition(self, sec: SecondaryIndexSpec) -> dict[str, Any]:
        assert sec.hash_key is not None
        out: dict[str, Any] = {"IndexName": sec.name, "KeySchema": _key_schema(sec.hash_key, sec.range_key),
                               "Projection": _projection(sec)}
        if self.provisioned:
            out["ProvisionedThroughput"] = _throughput(sec.read_capacity or self.spec.read_capacity,
                                                       sec.write_capacity or self.spec.write_capacity)
        return out

    def lsi_definition(self, sec: SecondaryIndexSpec) -> dict[str, Any]:
        return {"IndexName": sec.name, "KeySchema": _key_schema(self.spec.hash_key, sec.range_key),
                "Projection": _projection(sec)}

    def index_paths(self, sec: SecondaryIndexSpec) -> list[Path]:
        return [p for p in (sec.hash_key, sec.range_key) if p is not None]

    # -- the steps ----------------------------------------------------------------------------
    def describe(self, name: str | None = None) -> Op[dict[str, Any] | None]:
        try:
            return (yield from self.call("describe_table", TableName=name or self.table))["Table"]  # type: ignore[no-any-return]
        except Exception as exc:
            if "does not exist" in str(exc):
                return None
            raise

    def run(self) -> Op[list[Action]]:
        table = yield from self.describe()
        secondary = all_secondary(self.spec)
        gsis = [s for s in secondary if not s.local]
        lsis = [s for s in secondary if s.local]
        actions: list[Action] = []
        guards = GuardSync(self)
        ttl_now: dict[str, Any] = {}  # a new table has no TTL yet
        if table is None:
            plan = yield from guards.check(fresh=True)
            actions.append((yield from self.create(gsis, lsis)))
            if not self.dry:
                table = yield from self.wait()
        else:
            missing = self.check(table, gsis, lsis)
            ttl_now = yield from self.ttl_state()  # refuses TTL on another attribute before any change
            plan = yield from guards.check(fresh=False)  # refuses clashing unique values before any change
            if self.plan is not None:
                self.plan.have("table exists", self.spec.name, self.table)
                self.plan.exists += [Action("GSI exists", f"{self.spec.name}.{sec.name}",
                                            ", ".join(p.dotted for p in self.index_paths(sec)))
                                     for sec in gsis if sec not in missing]
            for sec in missing:
                actions.append((yield from self.add_gsi(sec)))
        actions += yield from self.ttl(ttl_now)
        actions += yield from guards.apply(plan, self.plan)
        return actions

    def create(self, gsis: list[SecondaryIndexSpec], lsis: list[SecondaryIndexSpec]) -> Op[Action]:
        spec = self.spec
        paths = list(spec.key_paths)
        for sec in (*gsis, *lsis):
            paths += self.index_paths(sec)
        req: dict[str, Any] = {"TableName": self.table, "KeySchema": _key_schema(spec.hash_key, spec.range_key),
                               "AttributeDefinitions": self.definitions(paths)}
        if self.provisioned:
            req["BillingMode"] = "PROVISIONED"
            req["ProvisionedThroughput"] = _throughput(spec.read_capacity, spec.write_capacity)
        else:
            req["BillingMode"] = "PAY_PER_REQUEST"
        if gsis:
            req["GlobalSecondaryIndexes"] = [self.gsi_definition(s) for s in gsis]
        if lsis:
            req["LocalSecondaryIndexes"] = [self.lsi_definition(s) for s in lsis]
        try:
            if not self.dry:
                yield from self.call("create_table", **req)
        except bexc.ClientError as exc:  # created concurrently: fine if it matches
            if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
                raise
        billing = "provisioned" if self.provisioned else "on-demand"
        extra = "".join(f", {'LSI' if s.local else 'GSI'} {s.name}" for s in (*gsis, *lsis))
        return Action("created table", self.spec.name, f"{billing}{extra}")

    def check(self, table: dict[str, Any], gsis: list[SecondaryIndexSpec], lsis: list[SecondaryIndexSpec]) -> list[SecondaryIndexSpec]:
        """Refuse what cannot be reconciled; return the GSIs to add. Changes nothing."""
        types = {d["AttributeName"]: d["AttributeType"] for d in table.get("AttributeDefinitions", [])}
        spec = self.spec

        def shown(schema: list[dict[str, str]]) -> str:
            return ", ".join(f"{k['KeyType'].lower()} {k['AttributeName']} ({types.get(k['AttributeName'], '?')})"
                             for k in schema)

        want = _key_schema(spec.hash_key, spec.range_key)
        have = table.get("KeySchema", [])
        want_types = {p.parts[0]: self.attr_type(p) for p in spec.key_paths}
        if have != want or any(types.get(n) != t for n, t in want_types.items()):
            declared = ", ".join(f"{k['KeyType'].lower()} {k['AttributeName']} ({want_types[k['AttributeName']]})"
                                 for k in want)
            raise SchemaMismatch(f"The DynamoDB table '{self.table}' (model table '{spec.name}') exists with key "
                                 f"[{shown(have)}], but the definition declares [{declared}]; migrate the data or use "
                                 "another name. Nothing was changed.")
        existing_gsis = {g["IndexName"]: g for g in table.get("GlobalSecondaryIndexes", [])}
        existing_lsis = {g["IndexName"]: g for g in table.get("LocalSecondaryIndexes", [])}
        missing: list[SecondaryIndexSpec] = []
        for sec in gsis:
            assert sec.hash_key is not None
            found = existing_gsis.get(sec.name)
            if found is None:
                clash = [p.parts[0] for p in self.index_paths(sec) if p.parts[0] in types and types[p.parts[0]] != self.attr_type(p)]
                if clash:
                    raise SchemaMismatch(f"The GSI '{sec.name}' on '{self.table}' would key attribute '{clash[0]}' as "
                                         f"{self.attr_type(sec.hash_key)}, but the table already defines it as "
                                         f"{types[clash[0]]}. Nothing was changed.")
                missing.append(sec)
            elif found["KeySchema"] != _key_schema(sec.hash_key, sec.range_key):
                raise SchemaMismatch(f"The GSI '{sec.name}' on '{self.table}' exists with key [{shown(found['KeySchema'])}], "
                                     "which differs from the definition; drop it or rename the index. Nothing was changed.")
        for sec in lsis:
            found = existing_lsis.get(sec.name)
            if found is None:
                raise SchemaMismatch(f"The LSI '{sec.name}' is missing on the existing table '{self.table}', and DynamoDB "
                                     "adds local secondary indexes only when a table is created; recreate the table "
                                     "or declare a GSI instead. Nothing was changed.")
            if found["KeySchema"] != _key_schema(spec.hash_key, sec.range_key):
                raise SchemaMismatch(f"The LSI '{sec.name}' on '{self.table}' exists with key [{shown(found['KeySchema'])}], "
                                     "which differs from the definition. Nothing was changed.")
        return missing

    def add_gsi(self, sec: SecondaryIndexSpec) -> Op[Action]:
        keys = ", ".join(p.dotted for p in self.index_paths(sec))
        if self.dry:
            return Action("created GSI", f"{self.spec.name}.{sec.name}", keys)
        yield from self.call("update_table", TableName=self.table, AttributeDefinitions=self.definitions(self.index_paths(sec)),
                  GlobalSecondaryIndexUpdates=[{"Create": self.gsi_definition(sec)}])
        yield from self.wait()
        return Action("created GSI", f"{self.spec.name}.{sec.name}", keys)

    def ttl_state(self) -> Op[dict[str, Any]]:
        """The existing table's TTL setting (``TimeToLiveDescription``), read before any change.

        DynamoDB keeps one TTL attribute per table and will not enable it while it is being
        disabled: either case is refused here, so neither a sync nor its dry-run plan gets
        half-way (GSIs added) before DynamoDB refuses the TTL.
        """
        attr = self.spec.ttl_attribute
        if not attr:
            return {}
        desc: dict[str, Any] = (yield from self.call("describe_time_to_live", TableName=self.table)).get("TimeToLiveDescription", {})
        status, current = desc.get("TimeToLiveStatus"), desc.get("AttributeName")
        where = f"The DynamoDB table '{self.table}' (model table '{self.spec.name}')"
        if status in ("ENABLED", "ENABLING") and current != attr:
            raise SchemaMismatch(f"{where} has TTL on the attribute '{current}', but the definition declares it on '{attr}'; "
                                 "DynamoDB keeps one TTL attribute per table: disable TTL on the table (DynamoDB takes up "
                                 "to an hour) or declare Meta.ttl on that attribute. Nothing was changed.")
        if status == "DISABLING":
            raise SchemaMismatch(f"{where} is disabling its TTL, and DynamoDB refuses to enable TTL again until that ends "
                                 "(up to an hour): run sync again later. Nothing was changed.")
        return desc

    def ttl(self, now: dict[str, Any]) -> Op[list[Action]]:
        """Enable TTL unless ``now`` (from ``ttl_state``; empty for a new table) has it on already."""
        attr = self.spec.ttl_attribute
        if not attr:
            return []
        if not now and not self.dry:  # a table just created, perhaps by a concurrent sync that enabled TTL already
            now = yield from self.ttl_state()
        if now.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):  # on this attribute: ttl_state refused any other
            if self.plan is not None:
                self.plan.have("TTL enabled", self.spec.name, f"on {attr}")
            return []
        if not self.dry:
            yield from self.call("update_time_to_live", TableName=self.table,
                                 TimeToLiveSpecification={"Enabled": True, "AttributeName": attr})
        return [Action("enabled TTL", self.spec.name, f"on {attr}, epoch seconds")]

    def wait(self, name: str | None = None) -> Op[dict[str, Any]]:
        """Poll until the table (or table ``name``) and all its GSIs are ACTIVE."""
        deadline = time.monotonic() + WAIT_SECONDS
        delay = 0.05
        while True:
            table = yield from self.describe(name)
            if table is not None and table.get("TableStatus") == "ACTIVE" and all(
                    g.get("IndexStatus") == "ACTIVE" for g in table.get("GlobalSecondaryIndexes", [])):
                return table
            if time.monotonic() > deadline:
                raise BackendUnavailable(f"The DynamoDB table '{name or self.table}' did not become ACTIVE within "
                                         f"{WAIT_SECONDS:.0f}s at {self.repo.backend.where}.")
            yield Sleep(delay)
            delay = min(delay * 2, 2.0)
