"""All settings in one place: CLI flags override `SLATRAIL_*` environment variables.

A pydantic model that reads its fields from the environment itself (`SLATRAIL_<FIELD>`, any
case) rather than a pydantic-settings class: importing pydantic-settings costs more than a
whole single-incident command (docs/decisions.md, "Settings without pydantic-settings").
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

ENV_PREFIX = "SLATRAIL_"


def environment_values(fields: Any, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The `SLATRAIL_*` variables naming one of `fields`, by field name (names in any case)."""
    environ = dict(os.environ) if environ is None else environ
    wanted = {f"{ENV_PREFIX}{name}".upper(): name for name in fields}
    return {wanted[key.upper()]: value for key, value in environ.items() if key.upper() in wanted}


MAX_REPORT_WORKERS = 64  # `report --workers` and SLATRAIL_REPORT_WORKERS


class Settings(BaseModel):
    """Keyword arguments (the CLI's flags) win over the environment, which wins over defaults."""

    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _from_environment(cls, given: Any) -> Any:
        if not isinstance(given, dict):
            return given
        return {**environment_values(cls.model_fields), **given}

    store: str = "sqlite:///slatrail.db"
    # PostgreSQL store / read models: give up connecting after this many seconds, naming the
    # cause (refused, timeout, authentication failed). Applies to each connection attempt.
    store_connect_timeout_s: float = Field(default=5.0, gt=0, le=600)
    contracts: Path | None = None
    kafka_bootstrap: str | None = None
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    topic_inbound: str = "incidents.inbound"
    topic_events: str = "incidents.events"
    topic_rejected: str = "incidents.rejected"
    topic_alerts: str = "incidents.alerts"
    topic_retry: str = "incidents.retry"
    topic_checkpoints: str = "incidents.checkpoints"
    # The Merkle log's signed checkpoints (docs/audit.md §9). The private key file is written
    # by `slatrail keys init` (mode 0600) and never logged; auditors hold the verifier key.
    signing_key: Path = Path("slatrail-signing.key")
    verifier_key: str | None = None
    checkpoint_origin: str = "slatrail.local/incidents"
    checkpoint_interval_s: float = Field(default=300.0, gt=0)
    # A checkpoint says "every event recorded by <known-at> is in me"; known-at is this much
    # before the checkpoint is made, so a batch being committed meanwhile is not back-dated.
    checkpoint_settle_s: float = Field(default=5.0, ge=0, le=3600)
    # A message whose incident does not exist yet is parked this long before its dead letter.
    park_timeout_s: float = 300.0
    topic_partitions: int = 4
    group_inbound: str = "slatrail-inbound"
    group_projections: str = "slatrail-projections"
    group_alerts: str = "slatrail-alert-timer"
    read_model: str | None = None
    # Kafka client tuning (see docs/streaming.md); the defaults suit a production broker.
    kafka_client_id: str = "slatrail"
    kafka_session_timeout_ms: int = 10_000
    kafka_heartbeat_interval_ms: int = 3_000
    kafka_max_poll_interval_ms: int = 300_000
    kafka_request_timeout_ms: int = 30_000
    kafka_delivery_timeout_ms: int = 120_000
    kafka_max_message_bytes: int = 16 * 1024 * 1024
    kafka_batch_size: int = 500
    kafka_fetch_max_wait_ms: int = 25
    kafka_check_crcs: bool | None = None  # None: only with the C `crc32c` module installed
    topic_replication_factor: int = 1
    topic_create: bool = True
    # longest wait between reads of the store; on SQLite a commit wakes the relay within 2 ms
    relay_poll_interval_s: float = 0.1
    health_interval_s: float = 10.0
    serve_processes: bool = True  # one child process per worker; `serve --threads`: one process
    # The web API and board (docs/web.md): bearer tokens (hashed) in this file, per-token
    # rate limit, request limits, readiness bound.
    tokens_file: Path = Path("slatrail-tokens.json")
    web_listen: str = "127.0.0.1:8080"
    web_rate_per_s: float = Field(default=20.0, gt=0)
    web_rate_burst: int = Field(default=60, gt=0)
    web_request_timeout_s: float = Field(default=10.0, gt=0, le=600)
    web_ready_lag_s: float = Field(default=30.0, gt=0)
    # `report` for many customers: at most this many worker processes, each taking whole
    # customers (and never more than the CPUs or the customers; 1: in-process). docs/decisions.md
    report_workers: int = Field(default=4, ge=1, le=MAX_REPORT_WORKERS)
    log_level: str = "info"
    log_format: str = "auto"
