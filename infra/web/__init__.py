"""The web edge (docs/web.md): read API, live SLA board, metrics and health, over HTTP."""
