"""DynamoDB: the connection (boto3's low-level client) and error translation.

dbInfo: ``endpoint``, ``awsRegion`` (default us-east-1), ``credentials`` (an
AWS shared-credentials file), ``awsSecretKeyId``/``awsSecretAccessKey``/
``awsSessionToken`` (else boto3's default chain) and ``tablePrefix``. Keys
never appear in reprs or errors. See docs/backends/dynamodb.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from time import perf_counter
from typing import Any, ClassVar

import boto3
import botocore.exceptions as bexc
from botocore.config import Config

from ... import logs
from ...errors import BackendUnavailable, ConfigError, ODMError, QueryError
from ...ops import Op
from ...redaction import SECRETS, watch
from ...transaction import TransactionState, in_transaction
from ..base import Backend, Features, Repository
from ..names import TableNameRule
from .codec import MAX_DIGITS, MAX_ITEM_BYTES, DynamoCodec
from .repository import DynamoRepository
from .retry import THROTTLED, TRANSIENT, Call, RetryPolicy, Sleep, may_have_landed, repeatable, throttled
from .transact import MAX_ACTIONS, DynamoTransaction

#: Codes the repositories handle themselves.
PASS_THROUGH = frozenset({"ConditionalCheckFailedException", "TransactionCanceledException", "ResourceInUseException"})
_REQUESTS = logs.requests_logger("dynamodb")
#: Loggers of the client's stack, filtered so DEBUG logs never show a token, key or signature.
DRIVER_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer")
#: The same secrets are masked in the ODM's own records (odm.logs).
WATCHED = (*DRIVER_LOGGERS, "odm")


class DynamoFeatures(Features):
    # Order only by the range key of the table/index a Query runs on.
    supports_arbitrary_order = False
    max_number = 9.99e125  # a float below DynamoDB's limit (about 1e126) that its N text holds
    min_number = 1e-130  # smaller non-zero magnitudes are refused (ValidationError) before any request
    max_decimal_digits = MAX_DIGITS  # 38, DynamoDB's N
    empty_string_index_keys = False
    float_increments_in_decimal = True  # ADD on an N attribute is decimal arithmetic
    max_item_bytes = MAX_ITEM_BYTES  # 400 KB, checked before any request (names and values, UTF-8)
    # A transaction() block is one TransactWriteItems sent at its end: 100 actions (4 MB), checked
    # as they are collected; reads inside the block see the items as stored before it.
    transactions = True
    max_transaction_items = MAX_ACTIONS
    transaction_survives_errors = True  # a failed operation's writes are dropped from the block
    index_projections = True  # a KEYS_ONLY/INCLUDE GSI/LSI serves a query whose reads fit its projection


_LOADERS: dict[Any, Any] = {}


def _shared_loader(session: Any) -> None:
    """Give ``session`` the process's botocore data loader (one per AWS data path): it keeps the
    parsed service model, which each new session would read and parse again (about 0.25 s per
    Registry instead of 0.015 s)."""
    from botocore.loaders import create_loader

    path = session.get_config_variable("data_path")
    loader = _LOADERS.get(path)
    if loader is None:
        loader = _LOADERS[path] = create_loader(path)
    session.register_component("data_loader", loader)


class DynamoBackend(Backend):
    name: ClassVar[str] = "dynamodb"
    features = DynamoFeatures
    repository_class = DynamoRepository
    codec: ClassVar[DynamoCodec] = DynamoCodec()
    info_keys = {"endpoint": "text", "awsRegion": "text", "region": "text", "credentials": "text",
                 "awsSecretKeyId": "text", "awsSecretAccessKey": "text", "awsSessionToken": "text", "tablePrefix": "text"}
    #: The seed's one dbInfo also carries MongoDB's keys (docs/configuration.md).
    shared_info_keys = frozenset({"host", "database", "user", "pass"})
    table_names = TableNameRule(
        "a DynamoDB table name, tablePrefix included, is 3 to 255 characters of A-Z, a-z, 0-9, '_', '-' and '.'",
        allowed="[A-Za-z0-9_.-]", min_length=3, max_bytes=255)

    def __init__(self, info: dict[str, Any]) -> None:
        super().__init__(info)
        self.endpoint: str | None = info.get("endpoint") or None
        self.region: str = info.get("awsRegion") or info.get("region") or "us-east-1"
        prefix = info.get("tablePrefix") or ""
        if not isinstance(prefix, str):
            raise ConfigError(f"The dynamodb backend's dbInfo key 'tablePrefix' must be a string, not {type(prefix).__name__}.")
        self.prefix = prefix
        #: How often one request is repeated when DynamoDB throttles or cannot be reached.
        self.retry = RetryPolicy()
        watch(WATCHED, [str(info.get(k) or "") for k in ("awsSecretAccessKey", "awsSessionToken")])
        self.client = self._client(info)
        self._closed = False
        # The async client (aiobotocore), opened on first async use inside the running loop.
        self._aclient: Any = None
        self._aloop: asyncio.AbstractEventLoop | None = None
        self._aopening: asyncio.Task[Any] | None = None
        self._astack: contextlib.AsyncExitStack | None = None

    def _client(self, info: dict[str, Any]) -> Any:
        import botocore.session

        core = botocore.session.Session()
        _shared_loader(core)
        path = self._credentials_file(info)
        if path:
            core.set_config_variable("credentials_file", path)
        session = boto3.Session(botocore_session=core, **self._keys(info))
        # One attempt per botocore call: self.retry repeats them (see retry.py for why).
        config = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=60,
                        max_pool_connections=20)
        try:
            return session.client("dynamodb", endpoint_url=self.endpoint, region_name=self.region, config=config)
        except ValueError as exc:
            raise ConfigError(f"The dynamodb backend's dbInfo key 'endpoint' ({self.endpoint!r}) is not a valid URL.") from exc

    @staticmethod
    def _credentials_file(info: dict[str, Any]) -> str | None:
        path = info.get("credentials")
        if path:
            import os

            if not os.path.isfile(path):
                raise ConfigError(f"The dynamodb backend's dbInfo key 'credentials' names {path!r}, which is not a file.")
        return path or None

    @staticmethod
    def _keys(info: dict[str, Any]) -> dict[str, Any]:
        """Explicit credentials from dbInfo (empty: the credentials file or boto3's default chain)."""
        kwargs: dict[str, Any] = {}
        key_id, secret = info.get("awsSecretKeyId"), info.get("awsSecretAccessKey")
        if key_id or secret:
            if not (key_id and secret):
                raise ConfigError("The dynamodb backend needs both dbInfo keys 'awsSecretKeyId' and 'awsSecretAccessKey' "
                                  "(or neither, to use the credentials file or boto3's default chain).")
            kwargs = {"aws_access_key_id": key_id, "aws_secret_access_key": secret}
            if info.get("awsSessionToken"):
                kwargs["aws_session_token"] = info["awsSessionToken"]
        return kwargs

    # -- the drivers: a request (retry.Call or retry.Sleep) sent sync or async ----------------------
    def send(self, request: Any) -> Any:
        if type(request) is Call:
            if _REQUESTS.isEnabledFor(logs.DEBUG):
                return self._logged_send(request)
            return getattr(self.client, request.op)(**request.kwargs)
        if type(request) is Sleep:
            time.sleep(request.seconds)
            return None
        raise TypeError(f"DynamoDB cannot send {request!r}.")

    async def asend(self, request: Any) -> Any:
        if type(request) is Call:
            client = self._aclient
            if client is None or self._aloop is not asyncio.get_running_loop():
                client = await self._async_client()
            if _REQUESTS.isEnabledFor(logs.DEBUG):
                return await self._logged_asend(client, request)
            return await getattr(client, request.op)(**request.kwargs)
        if type(request) is Sleep:
            await asyncio.sleep(request.seconds)
            return None
        raise TypeError(f"DynamoDB cannot send {request!r}.")

    def _logged_send(self, request: Call) -> Any:
        """``send`` with DEBUG on: the call (asking for its consumed capacity), timed and logged."""
        kwargs = logs.dynamodb_kwargs(request.op, request.kwargs)
        start = perf_counter()
        try:
            response = getattr(self.client, request.op)(**kwargs)
        except BaseException as exc:
            logs.dynamodb_request(_REQUESTS, request.op, kwargs, None, start, exc)
            raise
        logs.dynamodb_request(_REQUESTS, request.op, kwargs, response, start)
        return response

    async def _logged_asend(self, client: Any, request: Call) -> Any:
        kwargs = logs.dynamodb_kwargs(request.op, request.kwargs)
        start = perf_counter()
        try:
            response = await getattr(client, request.op)(**kwargs)
        except BaseException as exc:
            logs.dynamodb_request(_REQUESTS, request.op, kwargs, None, start, exc)
            raise
        logs.dynamodb_request(_REQUESTS, request.op, kwargs, response, start)
        return response

    async def _async_client(self) -> Any:
        """The aiobotocore client of the running loop, opened once (concurrent first calls share the opening)."""
        loop = asyncio.get_running_loop()
        if self._aloop is not loop:
            # A client of an earlier loop cannot be used (nor closed) here: forget it.
            self._aclient, self._astack, self._aloop = None, None, loop
            self._aopening = loop.create_task(self._open_async())
        assert self._aopening is not None
        return await asyncio.shield(self._aopening)

    async def _open_async(self) -> Any:
        try:
            from aiobotocore.config import AioConfig
            from aiobotocore.session import AioSession
        except ImportError as exc:  # pragma: no cover - the dynamodb extra installs it
            raise ConfigError("The async DynamoDB driver needs aiobotocore: pip install 'microkubes-odm[dynamodb]'.") from exc
        session = AioSession()
        _shared_loader(session)
        path = self._credentials_file(self.info)
        if path:
            session.set_config_variable("credentials_file", path)
        config = AioConfig(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=60,
                           max_pool_connections=20)
        stack = contextlib.AsyncExitStack()
        try:
            client = await stack.enter_async_context(session.create_client(
                "dynamodb", endpoint_url=self.endpoint, region_name=self.region, config=config, **self._keys(self.info)))
        except BaseException as exc:
            self._aloop = self._aopening = None
            await stack.aclose()
            if isinstance(exc, ValueError):
                raise ConfigError(f"The dynamodb backend's dbInfo key 'endpoint' ({self.endpoint!r}) is not a valid URL.") from exc
            raise
        self._aclient, self._astack = client, stack
        return client

    @property
    def where(self) -> str:
        return self.endpoint or f"DynamoDB in {self.region}"

    def call(self, op: str, *, write: bool = False, key: tuple[Any, ...] | None = None, **kwargs: Any) -> Any:
        """:meth:`call_op` run with the sync driver."""
        return self.run(self.call_op(op, write=write, key=key, **kwargs))

    def call_op(self, op: str, *, write: bool = False, key: tuple[Any, ...] | None = None, **kwargs: Any) -> Op[Any]:
        """One client call (an operation yielding :class:`Call`), repeated under :attr:`retry`, with
        driver errors translated.

        Conditional failures and cancelled transactions whose reasons are not all retryable pass
        through for the repository to interpret. A write that :func:`repeatable` refuses to send
        twice and whose answer was lost is BackendUnavailable saying so; ``key`` (the item's key)
        names it there.
        """
        SECRETS.attach()  # botocore creates some loggers lazily: filter those too
        repeat = repeatable(op, kwargs)
        try:
            return (yield from self.retry.attempts(Call(op, kwargs), repeat_unanswered=repeat))
        except bexc.ClientError as exc:
            if not repeat and str(exc.response.get("Error", {}).get("Code", "")) in TRANSIENT:
                raise self._unanswered(op, kwargs, key) from exc
            translated = self._translate(op, exc, kwargs, write)
            if translated is exc:
                raise
            raise translated from exc
        except (bexc.ConnectionError, bexc.HTTPClientError) as exc:
            if not repeat and may_have_landed(exc):
                raise self._unanswered(op, kwargs, key) from exc
            raise BackendUnavailable(f"DynamoDB at {self.where} cannot be reached ({type(exc).__name__}); "
                                     f"gave up on {op}.") from exc
        except (bexc.NoCredentialsError, bexc.PartialCredentialsError) as exc:
            raise ConfigError(f"No AWS credentials for DynamoDB at {self.where}: set dbInfo 'credentials' (a shared "
                              "credentials file) or 'awsSecretKeyId'/'awsSecretAccessKey', or configure boto3's chain.") from exc
        except bexc.ParamValidationError as exc:
            raise QueryError(f"Invalid DynamoDB {op} request: {exc}") from exc
        except bexc.BotoCoreError as exc:  # anything else from the driver, still translated
            raise ODMError(f"DynamoDB at {self.where} failed {op}: {type(exc).__name__}.") from exc

    def _unanswered(self, op: str, kwargs: dict[str, Any], key: tuple[Any, ...] | None) -> BackendUnavailable:
        """A write that must not be sent twice and whose outcome is unknown (answer lost, timed out, or a 5xx)."""
        table = kwargs.get("TableName") or ", ".join(_tables(kwargs)) or "?"
        item = f" (key {key[0]!r})" if key and len(key) == 1 else f" (key {key!r})" if key else ""
        return BackendUnavailable(
            f"DynamoDB at {self.where} lost the answer to {op} on '{table}'{item}: the write may or may not "
            "have been applied. It was not sent again, since a second copy could apply it twice or be "
            "refused by the first; read the item to see which.")

    def _translate(self, op: str, exc: bexc.ClientError, kwargs: dict[str, Any], write: bool) -> Exception:
        """The public error for a refused request (``exc`` itself when the repository interprets it)."""
        err = exc.response.get("Error", {})
        code, message = err.get("Code", ""), err.get("Message", "")
        table = kwargs.get("TableName") or ", ".join(_tables(kwargs)) or "?"
        if code == "TransactionCanceledException" and throttled(exc):
            reasons = sorted({str(r.get("Code")) for r in exc.response.get("CancellationReasons") or []} - {"None"})
            return BackendUnavailable(f"DynamoDB at {self.where} kept cancelling {op} on '{table}' "
                                      f"({', '.join(reasons)}) for {self.retry.throttled_attempts} attempts; "
                                      "nothing of it was written; retry later.")
        if throttled(exc) or code in THROTTLED or code in TRANSIENT:
            return BackendUnavailable(f"DynamoDB at {self.where} kept refusing {op} on '{table}' ({code}) for "
                                      f"{self.retry.throttled_attempts} attempts; raise the table's capacity or "
                                      "retry later.")
        if code in PASS_THROUGH:
            return exc
        if code == "ResourceNotFoundException":
            return QueryError(f"The DynamoDB table '{table}' (or its index) does not exist at {self.where}; "
                              "run registry.sync() to create it.")
        if code == "ValidationException":
            if write:
                from ...errors import ValidationError

                return ValidationError({"_schema": [f"DynamoDB refused the item: {message}"]})
            return QueryError(f"DynamoDB refused the {op} request on '{table}': {message}")
        if code in ("UnrecognizedClientException", "InvalidSignatureException", "AccessDeniedException",
                    "ExpiredTokenException", "MissingAuthenticationTokenException"):
            return ConfigError(f"DynamoDB at {self.where} refused the credentials ({code}); check the dbInfo "
                               "credentials or the AWS credential chain.")
        return ODMError(f"DynamoDB at {self.where} failed {op} on '{table}': {code}: {message}")

    def stored_table_name(self, name: str) -> str:
        return self.prefix + name

    def transaction_state(self, is_async: bool, snapshot: bool = False) -> TransactionState:
        if snapshot:
            raise QueryError("DynamoDB has no snapshot reads across requests (features.snapshot_transactions is "
                             "False): registry.transaction(snapshot=True) cannot be used; reads inside a "
                             "transaction block see the stored items as they are at each read.")
        return DynamoTransaction(self, is_async)

    def get_many_op(self, wanted: Sequence[tuple[Repository, tuple[Any, ...]]]) -> Op[list[dict[str, Any] | None]]:
        """One ``TransactGetItems``: the items as they all were at one moment (100 at most)."""
        limit = self.features.max_transaction_items
        if limit is not None and len(wanted) > limit:
            raise QueryError(f"get_many reads at most {limit} items on DynamoDB (TransactGetItems' limit), "
                             f"not {len(wanted)}; split the keys.")
        out: list[dict[str, Any] | None] = [None] * len(wanted)
        asked: list[tuple[int, DynamoRepository]] = []
        items: list[dict[str, Any]] = []
        for pos, (repo, key) in enumerate(wanted):
            assert isinstance(repo, DynamoRepository)
            if repo._storable_key(key):  # else no item can have it: None, without asking
                asked.append((pos, repo))
                items.append({"Get": {"TableName": repo.table, "Key": repo.key_av(key)}})
        if not items:
            return out
        resp = yield from self.call_op("transact_get_items", TransactItems=items)
        for (pos, repo), answer in zip(asked, resp.get("Responses") or [], strict=False):
            item = answer.get("Item")
            if item is not None:
                doc = repo._doc(item)
                out[pos] = doc if repo._live(doc) else None
        return out

    def defers_writes(self) -> bool:
        """Whether a write run here is collected by an open transaction (sent at its end, not now)."""
        return in_transaction(self)

    def ping(self) -> None:
        """``ListTables`` with ``Limit=1``: reaches the endpoint and checks the credentials."""
        self.call("list_tables", Limit=1)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            close = getattr(self.client, "close", None)
            if close is not None:
                close()

    async def aclose(self) -> None:
        """Close the async client (in the loop that opened it) and the sync one."""
        stack, opening = self._astack, self._aopening
        self._aclient = self._astack = self._aopening = self._aloop = None
        try:
            if stack is None and opening is not None and not opening.done():
                with contextlib.suppress(Exception):
                    await opening  # closed below, once open
                stack, self._astack, self._aclient = self._astack, None, None
            if stack is not None:
                await stack.aclose()
        finally:
            self.close()

    def __repr__(self) -> str:
        return f"<DynamoBackend endpoint={self.endpoint!r} region={self.region!r} prefix={self.prefix!r}>"


def _tables(kwargs: dict[str, Any]) -> list[str]:
    """The tables a batch or transaction request touches, in order, for error messages."""
    names = list(kwargs.get("RequestItems") or ())
    for action in kwargs.get("TransactItems") or ():
        for body in action.values():
            if isinstance(body, dict) and body.get("TableName") not in names:
                names.append(body["TableName"])
    return names
