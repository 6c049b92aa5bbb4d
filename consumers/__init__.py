"""Long-running processes: inbound consumer, event relay, projection consumers, alert timer."""
