"""capacity: the pure modelling core of llmcap (records → summaries → curves → quota plans)."""

__all__: list[str] = []
