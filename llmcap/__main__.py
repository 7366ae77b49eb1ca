from llmcap import console

raise SystemExit(console())
