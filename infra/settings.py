"""All settings in one place: CLI flags override `SLATRAIL_*` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SLATRAIL_", extra="ignore")

    store: str = "sqlite:///slatrail.db"
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
    topic_partitions: int = 4
    group_inbound: str = "slatrail-inbound"
    group_projections: str = "slatrail-projections"
    read_model: str | None = None
    log_level: str = "info"
    log_format: str = "auto"
