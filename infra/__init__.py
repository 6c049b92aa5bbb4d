"""The edges: event store wiring, Kafka clients, wire codecs, settings, logging, CLI."""
