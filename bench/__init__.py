"""bench: the I/O side of llmcap (providers, load strategies, records) and the emulator."""

__all__: list[str] = []
