from fascore.cli import main

raise SystemExit(main())
