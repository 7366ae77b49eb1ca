from llmcap.cli import main

raise SystemExit(main())
