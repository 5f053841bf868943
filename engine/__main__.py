from mlci.engine.cli.main import main

raise SystemExit(main())
