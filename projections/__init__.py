"""Folds over incident events: SLA status, audit trail, escalation, availability, reports."""
