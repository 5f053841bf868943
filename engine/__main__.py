from mlci.engine.cli import main

raise SystemExit(main())
