"""Pure model of slatrail: incidents, lifecycle rules, contracts, calendars, SLA clocks."""
