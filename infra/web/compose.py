"""Building the web application from the settings: the one place `slatrail web` and
`slatrail serve --http` wire it (tokens file, read side, limits, board, metrics, health)."""

from __future__ import annotations

from slatrail.infra.bootstrap import Container
from slatrail.infra.errors import UsageError
from slatrail.infra.web.app import WebContext
from slatrail.infra.web.tokens import TokenFile


def web_context(container: Container, *, from_read_model: bool) -> WebContext:
    s = container.settings
    tokens = TokenFile(s.tokens_file)
    if not len(tokens):
        raise UsageError(
            f"no tokens in {s.tokens_file} (SLATRAIL_TOKENS_FILE): every endpoint but /livez "
            "and /readyz needs one; create one with `slatrail tokens add NAME --role auditor`"
        )
    container.app  # noqa: B018 - open the store before the request threads share it
    if from_read_model:
        container.read_models  # noqa: B018
    return WebContext(
        container,
        tokens,
        from_read_model=from_read_model,
        rate_per_s=s.web_rate_per_s,
        rate_burst=s.web_rate_burst,
        request_timeout_s=s.web_request_timeout_s,
    )
