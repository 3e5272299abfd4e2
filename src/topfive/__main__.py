from topfive.cli import main

raise SystemExit(main())
