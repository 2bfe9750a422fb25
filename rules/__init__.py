"""Alert rules: a functional core over the track engine's output.

``rules.catalogue.RULES`` lists every rule, one pure function ``(Facts, RuleConfig) -> tuple[Alert, ...]``
each; ``evaluate(RuleInputs, RuleConfig)`` derives the shared facts (``rules.facts``: outings, which
order each trip belongs to) and runs every rule in isolation. ``rules.config`` holds an agency's
configuration (calendar as data, depots, forbidden zones, speed limits, thresholds); ``rules.alert`` the
alert values and their natural keys. The scoring against the simulator's ground truth is ``simulators.score``
(the simulator sits above the rules).
"""
